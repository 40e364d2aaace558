"""Keras 3 translations that run on every Keras backend (tensorflow, jax, torch): a spec as the
layers' regularizers and an optimizer's ``weight_decay`` (:mod:`.native`), the regularizer
objects (:mod:`.regularizers`, on ``keras.ops`` kernels: :mod:`.kernels`), the variables' names
and roles (:mod:`.params`), a :class:`regcore.Network` as Keras layers (:mod:`.layers`), and a
Keras setup read back into a spec (:mod:`.reading`).

These modules import ``keras`` and never ``tensorflow``; the TensorFlow backend
(:mod:`regcore_adapters.tf`) builds on them. Importing this package imports nothing.
"""
