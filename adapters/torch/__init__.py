"""PyTorch backend: native torch penalties and networks, gradients by autograd."""

from regcore_adapters.torch.backend import TorchBackend

__all__ = ["TorchBackend"]
