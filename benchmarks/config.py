"""What a run measures: options, model shapes, coefficients, and the defaults per device."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

BACKENDS = ("numpy", "torch", "tf", "jax")

LAM = 1e-4
"""L2 coefficient in the ``sum`` convention: the penalty is ``LAM·Σp²``; coupled weight decay
(torch ``weight_decay``, decay folded into a hand-written update) is ``2·LAM``, and so is the
decoupled rate used where decoupled decay is the same maths as the penalty (plain SGD)."""

LR = 1e-3
"""SGD learning rate (no momentum)."""

CPU_SHAPES = ("4x1024", "64x256")
GPU_SHAPES = ("4x1024", "64x256", "200x128", "24x4096")
CPU_BATCH = 256
GPU_BATCH = 1024
QUICK_SHAPES = ("2x32",)
QUICK_BATCH = 16


@dataclass(frozen=True)
class Shape:
    """An MLP of ``layers`` ``Linear(width, width)`` layers (ReLU between them, none after the
    last): ``2·layers`` tensors, ``layers·(width² + width)`` parameters."""

    layers: int
    width: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
        if not match or int(match[1]) < 1 or int(match[2]) < 1:
            raise ValueError(f"shape: expected LAYERSxWIDTH such as 4x1024, got {text!r}")
        return cls(int(match[1]), int(match[2]))

    @property
    def label(self) -> str:
        return f"{self.layers}x{self.width}"

    @property
    def params(self) -> int:
        return self.layers * (self.width * self.width + self.width)

    @property
    def tensors(self) -> int:
        return 2 * self.layers


@dataclass
class Options:
    """Everything a worker needs, passed to it as JSON.

    ``shapes``/``batch`` left empty mean the per-device defaults (:func:`shapes_for`,
    :func:`batch_for`). ``select`` is which parameters every idiom penalizes: ``all`` (torch's
    default, ``model.parameters()``) or ``weights`` (kernels only, regcore's default selection).
    """

    backends: list[str] = field(default_factory=lambda: list(BACKENDS))
    devices: list[str] = field(default_factory=list)  # empty: every device a backend has
    shapes: list[str] = field(default_factory=list)
    batch: int = 0
    repeats: int = 30
    warmup: int = 3
    target_ms: float = 100.0
    threads: int = 2
    select: str = "all"
    tf_modes: list[str] = field(default_factory=lambda: ["function", "xla"])
    bandwidth_mib: int = 0  # 0: 256 MiB on CPU, 1 GiB on GPUs
    quick: bool = False
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Options:
        return cls(**data)


def is_gpu(device: str) -> bool:
    return device not in ("cpu",)


def shapes_for(options: Options, device: str) -> list[Shape]:
    if options.shapes:
        return [Shape.parse(s) for s in options.shapes]
    if options.quick:
        return [Shape.parse(s) for s in QUICK_SHAPES]
    return [Shape.parse(s) for s in (GPU_SHAPES if is_gpu(device) else CPU_SHAPES)]


def batch_for(options: Options, device: str) -> int:
    if options.batch:
        return options.batch
    if options.quick:
        return QUICK_BATCH
    return GPU_BATCH if is_gpu(device) else CPU_BATCH


def bandwidth_bytes(options: Options, device: str) -> int:
    if options.bandwidth_mib:
        return options.bandwidth_mib << 20
    if options.quick:
        return 8 << 20
    return (1 << 30) if is_gpu(device) else (256 << 20)


def selected(names: list[str], select: str) -> list[str]:
    """The parameter names (``dense_{i}.kernel``/``dense_{i}.bias``) every idiom penalizes."""
    if select == "all":
        return list(names)
    return [n for n in names if n.endswith(".kernel")]


def regcore_spec(select: str, decay: bool = False):
    """The spec every regcore idiom applies: ``L2(LAM, "sum")`` on the selected parameters, or
    with ``decay`` the same maths under plain SGD as ``DecoupledWeightDecay(2·LAM)``."""
    import regcore

    chosen = regcore.Select() if select == "all" else regcore.DEFAULT_SELECT
    if decay:
        return regcore.Spec(weight_decay=[regcore.DecoupledWeightDecay(2 * LAM, chosen)])
    return regcore.Spec([regcore.Rule(regcore.L2(LAM, convention="sum"), chosen)])
