"""The TF backend pinned to its eager and XLA modes, for running the suite on each."""

from __future__ import annotations

from regcore_adapters.tf import TFBackend


class TFEager(TFBackend):
    def __init__(self) -> None:
        super().__init__(mode="eager")


class TFJit(TFBackend):
    def __init__(self) -> None:
        super().__init__(mode="jit")
