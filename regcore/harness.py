"""The scenario harness's descriptions: the network and the optimizer every backend that offers
:class:`regcore.capabilities.Harness` builds the same way.

:class:`ModelSpec` names the parameters ``dense_{i}.kernel`` (shape ``(fan_in, fan_out)``) and
``dense_{i}.bias``, whatever a framework's native layout; :class:`Optimizer` is full-batch SGD or
torch's Adam. Neither is part of the penalty protocol (:class:`regcore.Backend`): a backend that
only evaluates penalties never sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from regcore import _validate
from regcore.errors import SpecError
from regcore.selection import ParamInfo

ACTIVATIONS = ("tanh", "relu")
LOSSES = ("mse", "half_mse", "softmax_xent")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Optimizer:
    """Full-batch training steps as torch defines them (no momentum, no amsgrad).

    ``sgd``: ``p ← p − lr·g``. ``adam``: torch's Adam with ``betas`` and ``eps`` (``m̂/(√v̂ + ε)``
    with bias correction). ``g`` is the gradient of data loss plus penalty, so a coupled L2 term is
    Adam's ``weight_decay``; the plan's decoupled decay ``p ← p − lr·rate·p`` is applied before
    each update, AdamW's order, so Adam plus decoupled decay is AdamW.
    """

    name: str
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _validate.choice("optimizer.name", self.name, OPTIMIZERS)
        _validate.coefficient("optimizer.lr", self.lr)
        for beta in self.betas:
            _validate.fraction("optimizer.betas", beta)
        _validate.coefficient("optimizer.eps", self.eps)


@dataclass(frozen=True)
class ModelSpec:
    """A dense network ``sizes = (d_in, h_1, ..., d_out)`` with ``activation`` after each hidden
    layer and a linear output, trained on ``loss``:

    * ``mse``: ``mean((ŷ - y)²)`` over all entries (torch ``MSELoss()``, Keras ``"mse"``);
    * ``half_mse``: ``1/(2m) Σ (ŷ - y)²`` over the batch of ``m`` rows (the linear-regression
      tutorials' objective);
    * ``softmax_xent``: mean over the batch of ``-log softmax(ŷ)[label]`` with integer labels.

    ``sizes = (d, 1)`` with no activation is linear regression.
    """

    sizes: tuple[int, ...]
    activation: str | None
    loss: str

    def __post_init__(self) -> None:
        if isinstance(self.sizes, (str, bytes)) or not isinstance(self.sizes, Sequence):
            raise SpecError(f"model.sizes: expected a list of layer sizes, got {self.sizes!r}")
        sizes = tuple(_validate.positive_int(f"model.sizes[{i}]", size)
                      for i, size in enumerate(self.sizes))
        if len(sizes) < 2:
            raise SpecError(f"model.sizes: need at least input and output sizes, got {sizes!r}")
        object.__setattr__(self, "sizes", sizes)
        if len(sizes) > 2:
            _validate.choice("model.activation", self.activation, ACTIVATIONS)
        elif self.activation is not None:
            raise SpecError("model.activation: a network without hidden layers has none")
        _validate.choice("model.loss", self.loss, LOSSES)

    @property
    def outputs(self) -> int:
        return self.sizes[-1]

    @property
    def layers(self) -> int:
        return len(self.sizes) - 1

    def layer_names(self) -> tuple[str, ...]:
        """The layers an activity item may name: ``dense_i``, each output after its activation
        (Keras's ``Dense(activation=...)``)."""
        return tuple(f"dense_{i}" for i in range(self.layers))

    def params(self) -> tuple[ParamInfo, ...]:
        """Parameter names, shapes and roles, in layer order."""
        out = []
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes, self.sizes[1:], strict=False)):
            out.append(ParamInfo(f"dense_{i}.kernel", (fan_in, fan_out), "weight"))
            out.append(ParamInfo(f"dense_{i}.bias", (fan_out,), "bias"))
        return tuple(out)
