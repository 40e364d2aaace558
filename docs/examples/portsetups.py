"""The README's "Is my port the same?" pair as setups the command line reads
(``regcore diff keras:portsetups:original torch:portsetups:port``, run from this folder): a
Keras model with L2(0.01) on its kernels, and its torch port with SGD's weight_decay=0.01."""

import keras
import torch


def original():
    l2 = keras.regularizers.L2(0.01)
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(8, name="hidden", kernel_regularizer=l2),
                              keras.layers.Dense(2, name="out", kernel_regularizer=l2)])
    return model, keras.optimizers.SGD(0.1)


def port():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.01)
