"""NumPy backend: analytic gradients by hand; at float64 it is the reference for every backend."""

from regcore_adapters.numpy.backend import NumpyBackend

__all__ = ["NumpyBackend"]
