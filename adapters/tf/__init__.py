"""TensorFlow backend: native TF penalties and networks, gradients by ``tf.GradientTape``.

``TFBackend`` is imported on first access (module ``__getattr__``), so importing a submodule
that needs no framework, such as ``regcore_adapters.tf.export``, imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regcore_adapters.tf.backend import TFBackend

__all__ = ["TFBackend"]


def __getattr__(name: str) -> Any:
    if name == "TFBackend":
        from regcore_adapters.tf.backend import TFBackend

        return TFBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
