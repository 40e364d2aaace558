"""JAX backend for regcore: penalties and networks in ``jax.numpy``, gradients by ``jax.grad``,
run under ``jax.jit``. Registered by its entry point ``jax`` (see ``pyproject.toml``); regcore
finds it with ``load_backend("jax")``."""

from regcore_jax.backend import JaxBackend

__all__ = ["JaxBackend"]
__version__ = "0.1.0"
