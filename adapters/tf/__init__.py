"""TensorFlow backend: native TF penalties and networks, gradients by ``tf.GradientTape``."""

from regcore_adapters.tf.backend import TFBackend

__all__ = ["TFBackend"]
