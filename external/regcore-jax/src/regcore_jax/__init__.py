"""JAX backend for regcore: penalties and networks in ``jax.numpy``, gradients by ``jax.grad``,
run under ``jax.jit``. Registered by its entry point ``jax`` (see ``pyproject.toml``); regcore
finds it with ``load_backend("jax")``.

``JaxBackend`` is imported on first access (module ``__getattr__``), so importing a submodule
that needs no JAX, such as the exporter ``regcore_jax.export``, imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regcore_jax.backend import JaxBackend

__all__ = ["JaxBackend"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "JaxBackend":
        from regcore_jax.backend import JaxBackend

        return JaxBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
