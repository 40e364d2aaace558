"""PyTorch backend: native torch penalties and networks, gradients by autograd.

``TorchBackend`` is imported on first access (module ``__getattr__``), so importing a submodule
that needs no framework, such as ``regcore_adapters.torch.export``, imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regcore_adapters.torch.backend import TorchBackend

__all__ = ["TorchBackend"]


def __getattr__(name: str) -> Any:
    if name == "TorchBackend":
        from regcore_adapters.torch.backend import TorchBackend

        return TorchBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
