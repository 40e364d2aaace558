"""Tolerances derived from the dtype's unit roundoff and the size of the computation.

Every check compares a backend result ``a`` with the NumPy float64 reference ``r`` normwise::

    error = max|a - r| / S        S = max(max|r|, scale floor of the check)

and passes when ``error <= tol`` with::

    tol = 2 · γ(n) · (K + 1),     γ(n) = n·u / (1 - n·u)

* ``u`` is the unit roundoff of the backend's dtype (2⁻⁵³ for float64, 2⁻²⁴ for float32);
* ``γ(n)`` is Higham's bound on the relative error of an ``n``-term sum or dot product
  (Accuracy and Stability of Numerical Algorithms, §3.1), and ``n`` is the length of the longest
  chain of roundings in the check: the parameter size for a penalty; for a network
  ``m·d_out + Σ_layers (fan_in + fan_out) + largest parameter`` (the forward reductions, the loss
  mean over the batch, the backward reductions and the penalty sum); for a conv or sequence
  network (:class:`regcore.Network`) the same sum, with each layer's own longest reductions
  (:data:`LAYER_CHAINS`);
* the factor 2 covers rounding the float64 inputs to the dtype once plus the computation (a
  well-conditioned problem is assumed: the scenarios are built that way, the oracles use their
  own derived bounds);
* ``K`` is the number of optimizer steps in a trajectory check. For the linear scenarios plain SGD
  with step <= 2/L is non-expansive, so per-step errors add up at most linearly; for the MLPs
  and for Adam the ``K + 1`` factor is a heuristic (few steps with small learning rates), not a
  proof, and the report's observed/tolerance ratios are what show it holds.

The scale floor keeps a check normwise over a whole case: a gradient entry is compared against
the largest gradient of the case (all its entries come from the same backpropagated errors), so a
parameter whose gradient happens to cancel to nearly 0 is not judged by its own tiny norm.

float64 against the float64 reference gets ``n·u``-sized tolerances (about 1e-13 here); float32
gets ``n·2⁻²⁴``-sized ones (about 1e-4). Nothing is tuned per backend.

Low-precision parameters (float16, bfloat16; :func:`low_precision_value`, :func:`stored`): the
numbers they store are float32 numbers exactly, and the penalty accumulates in float32, so the
value is a float32 computation on exact inputs and gets the float32 tolerance of its chain,
``t = 2·γ(n)`` with ``u = 2⁻²⁴`` (the factor 2 covering the coefficient's rounding to float32),
against the float64 reference on the same stored numbers. A gradient is that computation rounded
once more, to the parameter's dtype (unit roundoff ``u_p``), and is compared with the reference
gradient rounded to that dtype too: two more roundings of at most ``u_p`` relative (or ``η_p``
absolute below the normal range), so ``(t + u_p·(2 + t) + 2·η_p/scale) / (1 − u_p)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod

from regcore import ModelSpec, Network
from regcore import network as layers

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11,
                 "bfloat16": 2.0**-8}
#: ``η``: half the spacing of the dtype's subnormal numbers, the absolute error of rounding a
#: number below its normal range (bfloat16 has float32's exponent range).
UNDERFLOW = {"float64": 2.0**-1075, "float32": 2.0**-150, "float16": 2.0**-25,
             "bfloat16": 2.0**-134}


def gamma(n: int, u: float) -> float:
    """Higham's γ_n = n u / (1 - n u)."""
    if n * u >= 1:
        raise ValueError(f"γ_n undefined: n·u = {n * u} >= 1")
    return n * u / (1 - n * u)


@dataclass(frozen=True)
class Tolerance:
    """A derived tolerance, with the numbers it came from for the report."""

    dtype: str
    n: int
    steps: int = 0

    @property
    def value(self) -> float:
        return 2 * gamma(self.n, UNIT_ROUNDOFF[self.dtype]) * (self.steps + 1)

    def describe(self) -> str:
        return f"2*gamma({self.n}, u_{self.dtype})*({self.steps}+1)"


def network_chain(sizes: tuple[int, ...], batch: int) -> int:
    """``n`` for a dense network of ``sizes`` on a batch of ``batch`` rows."""
    layers = list(zip(sizes, sizes[1:], strict=False))
    largest = max(fan_in * fan_out for fan_in, fan_out in layers)
    return batch * sizes[-1] + sum(fan_in + fan_out for fan_in, fan_out in layers) + largest


def _positions(shape: tuple[int, ...]) -> int:
    """The positions a layer's parameters are shared over: steps, pixels (1 for a vector)."""
    return prod(shape[:-1])


LAYER_CHAINS: dict[type, Callable[..., int]] = {
    # (description, input sample shape, output sample shape, batch) -> its longest reductions:
    # forward dot products, the input gradient's, and the parameter gradient's sum over the
    # batch and the positions the parameter is shared over
    layers.Dense: lambda d, i, o, m: d.fan_in + d.fan_out + m * _positions(i),
    layers.Conv2D: lambda d, i, o, m: (prod(d.kernel_size) * (d.in_channels + d.filters)
                                        + m * _positions(o)),
    # mean, variance and the two sums of the backward pass over a group; gamma's over the batch
    layers.GroupNorm: lambda d, i, o, m: 4 * _positions(i) * d.channels // d.groups
    + m * _positions(i),
    layers.LayerNorm: lambda d, i, o, m: 4 * d.dim + m * _positions(i),
    layers.Embedding: lambda d, i, o, m: m * prod(i),  # a row's gradient sums every use
    # four projections; scores (head_dim), softmax and mixing (steps), their backward passes
    layers.SelfAttention: lambda d, i, o, m: (2 * d.dim + m * i[0]
                                              + 3 * (d.dim // d.heads + i[0])),
    layers.Activation: lambda d, i, o, m: 0,
    layers.AvgPool2D: lambda d, i, o, m: d.size * d.size,
    layers.GlobalAvgPool: lambda d, i, o, m: _positions(i),
}


def model_chain(model: ModelSpec | Network, batch: int) -> int:
    """``n`` for a scenario model on a batch of ``batch`` samples: :func:`network_chain` for a
    dense :class:`regcore.ModelSpec`; for a :class:`regcore.Network`, the loss over the batch,
    every layer's :data:`LAYER_CHAINS` entry and the largest parameter (its penalty sum)."""
    if isinstance(model, ModelSpec):
        return network_chain(model.sizes, batch)
    shapes = model.shapes()
    largest = max(prod(p.shape) for p in model.params())
    return (batch * model.outputs + largest
            + sum(LAYER_CHAINS[type(layer)](layer, shape_in, shape_out, batch)
                  for layer, shape_in, shape_out in zip(model.stack, shapes, shapes[1:],
                                                        strict=False)))


def penalty_chain(shape: tuple[int, ...]) -> int:
    """``n`` for a penalty on a parameter of ``shape``: its size, plus a Gram matrix's worth
    (rows² + row length) for the orthogonal term."""
    size = 1
    for d in shape:
        size *= d
    extra = max(shape) ** 2 + max(shape) if len(shape) == 2 else 0
    return size + extra


@dataclass(frozen=True)
class Bound:
    """A tolerance derived by an oracle's own error analysis (see the oracle's docstring)."""

    value: float
    formula: str

    def describe(self) -> str:
        return self.formula


@dataclass(frozen=True)
class Overridden:
    """A tolerance scaled by a backend author's override (``--regcore-expect``), with the
    reason, so the report shows both the derived value and the override."""

    base: Tolerance | Bound
    factor: float
    reason: str

    @property
    def value(self) -> float:
        return self.base.value * self.factor

    def describe(self) -> str:
        return f"{self.factor:g}*[{self.base.describe()}] (override: {self.reason})"


def low_precision_value(shape: tuple[int, ...]) -> Tolerance:
    """The tolerance of a penalty on float16/bfloat16 parameters of ``shape``, accumulated in
    float32, against the float64 reference on the same stored numbers: those are float32 numbers
    exactly, so the computation is a float32 one with a float32 parameter's chain,
    ``2·γ(penalty_chain(shape))`` with ``u = 2⁻²⁴``."""
    return Tolerance("float32", penalty_chain(shape))


def stored(dtype: str, base: Tolerance | Bound, scale: float) -> Bound:
    """A result computed to within ``base`` (normwise, ``t``) and then rounded to ``dtype`` (a
    float16/bfloat16 gradient of a float32 computation), compared with the reference rounded to
    ``dtype`` as well, normwise against ``scale`` (the largest rounded reference entry):

        (t + u·(2 + t) + 2·η/scale) / (1 − u)        u, η: the dtype's UNIT_ROUNDOFF, UNDERFLOW

    With ``r`` the reference, ``M = max|r|``, ``g₃₂`` the computed result (``|g₃₂ − r| ≤ t·M``) and
    ``g``, ``r̃`` both rounded to ``dtype``: ``|g − g₃₂| ≤ u·(1 + t)·M + η``, ``|r̃ − r| ≤ u·M + η``,
    and ``scale = max|r̃| ≥ (1 − u)·M``.
    """
    if scale <= 0:
        raise ValueError(f"stored: scale must be positive, got {scale}")
    t, u, eta = base.value, UNIT_ROUNDOFF[dtype], UNDERFLOW[dtype]
    return Bound((t + u * (2 + t) + 2 * eta / scale) / (1 - u),
                 f"(t + u_{dtype}*(2+t) + 2*eta_{dtype}/{scale:.4g})/(1-u_{dtype}), "
                 f"t = {base.describe()}")
