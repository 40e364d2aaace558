"""What a backend implements: the adapter protocol the conformance suite drives.

A backend translates a resolved :class:`regcore.Plan` into its framework's own code. The suite
hands it NumPy data, converts with :meth:`Backend.asarray`, and compares
:meth:`Backend.to_numpy` of every result with the NumPy float64 reference. Nothing here imports
a framework (or NumPy): backends import theirs lazily, inside their own modules.

The scenario models are described by :class:`ModelSpec` so every backend builds the same network
with the same parameter names (``dense_{i}.kernel`` of shape ``(fan_in, fan_out)`` and
``dense_{i}.bias``), whatever its native layout.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from regcore import _validate
from regcore.errors import SpecError, UnsupportedError
from regcore.selection import ParamInfo
from regcore.spec import Plan, Spec

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
    * ``half_mse``: ``1/(2m) Σ (ŷ - y)²`` over the batch of ``m`` rows (the seeds' objective);
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
    def layers(self) -> int:
        return len(self.sizes) - 1

    def params(self) -> tuple[ParamInfo, ...]:
        """Parameter names, shapes and roles, in layer order."""
        out = []
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes, self.sizes[1:], strict=False)):
            out.append(ParamInfo(f"dense_{i}.kernel", (fan_in, fan_out), "weight"))
            out.append(ParamInfo(f"dense_{i}.bias", (fan_out,), "bias"))
        return tuple(out)


class Backend(abc.ABC):
    """The adapter protocol; everything is named by parameter name.

    Required (abstract): :attr:`name`, :meth:`asarray`, :meth:`to_numpy`, :meth:`penalty` and
    :meth:`loss_and_grads`. Declared capabilities (class attributes, with defaults):
    :attr:`devices`, :attr:`dtypes`, :attr:`low_precision_dtypes`, :attr:`native_paths`,
    :attr:`native_penalty_paths`, :attr:`distributed_paths`, :attr:`distributed_world_sizes`.
    Optional methods: :meth:`train`, :meth:`proximal_train`, :meth:`native_train`,
    :meth:`native_penalty`, :meth:`native_plan`,
    :meth:`distributed_train`, :meth:`distributed_loss_and_grads`,
    :meth:`exported_penalty`, :meth:`exported_decay`, :meth:`device_available`, :meth:`supports`,
    :meth:`versions`. An optional method a backend does not implement raises
    :class:`regcore.UnsupportedError`, which the conformance suite turns into skips whose reason
    names the backend. :meth:`capabilities` summarizes all of it.

    Arrays are the backend's own. ``params`` and returned gradients are ``{name: array}`` dicts
    with the names of :class:`regcore.ParamInfo`/:meth:`ModelSpec.params`.

    Low precision: for a dtype in :attr:`low_precision_dtypes` (``float16``, ``bfloat16``),
    :meth:`asarray` converts to it (exactly for numbers the dtype holds), and :meth:`penalty` on
    parameters of it returns the value in float32 at least, accumulated in float32 (never in the
    parameter's dtype: a float16 sum overflows above 65504, a bfloat16 one stops growing near
    256), with every gradient in its parameter's own dtype. :meth:`to_numpy` of such an array
    is a NumPy array holding the same numbers (``float16``; ``bfloat16`` where ``ml_dtypes`` is
    what the framework returns, ``float32`` otherwise).
    """

    #: Registered name (the entry point's name in group ``regcore.backends``).
    name: ClassVar[str]
    #: Devices the backend can run on; the suite parametrizes over them.
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    #: Floating dtypes the backend supports.
    dtypes: ClassVar[tuple[str, ...]] = ("float64", "float32")
    #: Low-precision parameter dtypes (``float16``, ``bfloat16``) :meth:`penalty` accepts,
    #: accumulating in float32; the suite's low-precision checks run over them (optional).
    low_precision_dtypes: ClassVar[tuple[str, ...]] = ()
    #: Native translations :meth:`native_train` can train through (optional capability).
    native_paths: ClassVar[tuple[str, ...]] = ()
    #: Native translations :meth:`native_penalty` can evaluate the penalty through (optional).
    native_penalty_paths: ClassVar[tuple[str, ...]] = ()
    #: Native translations :meth:`distributed_train` trains data-parallel through (optional).
    distributed_paths: ClassVar[tuple[str, ...]] = ()
    #: Replica counts :meth:`distributed_train` runs (optional; the suite runs each).
    distributed_world_sizes: ClassVar[tuple[int, ...]] = ()

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        """What the backend declares, as plain data (for reports and ``regcore`` listings):
        devices, dtypes, low-precision dtypes, native paths, and which optional methods it
        overrides."""
        optional = ("train", "proximal_train", "native_train", "native_penalty", "native_plan",
                    "distributed_train",
                    "distributed_loss_and_grads", "exported_penalty", "exported_decay")
        return {
            "devices": list(cls.devices), "dtypes": list(cls.dtypes),
            "low_precision_dtypes": list(cls.low_precision_dtypes),
            "native_paths": list(cls.native_paths),
            "native_penalty_paths": list(cls.native_penalty_paths),
            "distributed_paths": list(cls.distributed_paths),
            "distributed_world_sizes": list(cls.distributed_world_sizes),
            "implements": [m for m in optional if getattr(cls, m) is not getattr(Backend, m)],
        }

    def device_available(self, device: str) -> bool:
        """Whether ``device`` can be used in this process (``cpu`` always)."""
        return device == "cpu"

    def supports(self, device: str, dtype: str) -> bool:
        """Whether ``dtype`` runs on ``device`` (default: every declared dtype on every device)."""
        return dtype in self.dtypes

    @abc.abstractmethod
    def asarray(self, array: Any, *, dtype: str, device: str) -> Any:
        """A NumPy array as a backend array of ``dtype`` (a NumPy dtype name) on ``device``."""

    @abc.abstractmethod
    def to_numpy(self, x: Any) -> Any:
        """A backend array (or scalar) as a NumPy array."""

    @abc.abstractmethod
    def penalty(self, plan: Plan, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The plan's total penalty value and its (sub)gradient for every parameter."""

    @abc.abstractmethod
    def loss_and_grads(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, Any], x: Any, y: Any
    ) -> tuple[Any, dict[str, Any]]:
        """Data loss plus penalty on ``(x, y)``, and its gradient for every parameter."""

    def train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, Any], x: Any, y: Any,
        *, optimizer: Optimizer, steps: int,
    ) -> dict[str, Any]:
        """Optional: parameters after ``steps`` full-batch steps of ``optimizer`` on
        ``loss_and_grads``, with the plan's decoupled decay ``p ← p − lr·rate·p`` applied before
        each update (gradients taken at the parameters before the decay, as AdamW)."""
        raise UnsupportedError(f"{self.name} does not implement train")

    def proximal_train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, Any], x: Any, y: Any,
        *, lr: float, steps: int,
    ) -> dict[str, Any]:
        """Optional: parameters after ``steps`` full-batch proximal gradient (ISTA) steps of size
        ``lr``, as :mod:`regcore.proximal` defines them: with ``smooth, ops =
        regcore.proximal.split(plan)``, each step decays (``p ← p − lr·rate·p``), takes a plain
        SGD step on ``loss_and_grads(model, smooth, ...)`` at the parameters before the decay,
        then applies :func:`regcore.proximal.merged_shrinks` ``(ops)`` in order with step ``lr``.
        L1, elastic-net and group-lasso terms end at exact zeros (a regularization path's
        coefficient paths rely on it)."""
        raise UnsupportedError(f"{self.name} does not implement proximal_train")

    def native_train(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, Any], x: Any, y: Any,
        *, optimizer: Optimizer, steps: int,
    ) -> dict[str, Any]:
        """Optional: :meth:`train`, but with ``spec`` applied through the native translation
        ``path`` (one of :attr:`native_paths`) on the framework's own model object. Returns the
        parameters under their canonical names and layout. Raise :class:`regcore.SpecError` where
        the translation cannot express ``spec``, :class:`regcore.UnsupportedError` where it does
        not offer ``optimizer`` (the suite skips the check with the message)."""
        raise UnsupportedError(f"{self.name} declares no native translations")

    def native_penalty(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Optional: :meth:`penalty`, but evaluated through the native translation ``path`` (one
        of :attr:`native_penalty_paths`) on the framework's own model object built from
        ``model`` with ``params``; the gradient is keyed by canonical name, in canonical
        layout. Errors as in :meth:`native_train`."""
        raise UnsupportedError(f"{self.name} declares no native penalty translations")

    def native_plan(self, path: str, model: ModelSpec, spec: Spec) -> Plan:
        """Optional: the plan the native translation ``path`` (one of :attr:`native_paths` or
        :attr:`native_penalty_paths`) resolves ``spec`` to on the framework's own model object
        built from ``model``, by the same resolution its training and penalty use, with the
        parameters renamed to their canonical names (shapes in canonical layout, roles as the
        translation derived them). The suite requires it to equal ``spec.resolve(model.params())``
        and fails a native check where it does not: a translation that sees other roles, names or
        shapes quietly runs another spec, or skips one it could run. Raise
        :class:`regcore.SpecError` where that resolution fails, as :meth:`native_train` would.
        A backend whose native methods raise :class:`regcore.SpecError` needs this method to show
        the suite that the refusal is the translation's limit, not a plan mismatch."""
        raise UnsupportedError(f"{self.name} does not report its native translations' plans")

    def distributed_train(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, Any], x: Any, y: Any,
        *, optimizer: Optimizer, steps: int, world_size: int,
    ) -> dict[str, Any]:
        """Optional: :meth:`native_train` data-parallel over ``world_size`` replicas (one of
        :attr:`distributed_world_sizes`): ``(x, y)`` is the global batch, split across the
        replicas; each step must equal one full-batch step of the single-process reference, so
        the penalty counts once per global step, whatever the replica count. ``path`` is one of
        :attr:`distributed_paths`. Returns the parameters after ``steps`` (canonical names and
        layout), after checking that every replica holds the same ones. Errors as in
        :meth:`native_train`; a replica that fails or hangs is a :class:`RuntimeError` within a
        bounded time, never a hang."""
        raise UnsupportedError(f"{self.name} declares no data-parallel training")

    def distributed_loss_and_grads(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, Any], x: Any, y: Any,
        *, world_size: int,
    ) -> tuple[Any, dict[str, Any]]:
        """Optional: one data-parallel forward and backward of :meth:`distributed_train`'s
        ``path``: the global loss (the data loss over the whole batch plus the penalty, as
        :meth:`loss_and_grads`) and the gradient the optimizer sees on every replica (canonical).
        Raise :class:`regcore.UnsupportedError` for a path whose penalty is applied by the
        optimizer rather than through the loss or the gradient."""
        raise UnsupportedError(f"{self.name} declares no data-parallel training")

    def exported_penalty(
        self, code: str, model: ModelSpec, params: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Optional: run ``code``, the snippet this backend's exporter (entry point group
        ``regcore.exporters``, same name) wrote for a spec, in a fresh namespace: call its
        ``regularization`` on the framework's own model object built from ``model`` with
        ``params``, differentiate natively, and return the value and the gradient keyed by
        canonical name, in canonical layout."""
        raise UnsupportedError(f"{self.name} cannot run exported snippets")

    def exported_decay(
        self, code: str, model: ModelSpec, params: Mapping[str, Any], lr: float
    ) -> dict[str, Any]:
        """Optional: as :meth:`exported_penalty`, but call the snippet's decoupled-decay function
        once with learning rate ``lr`` and return the parameters after it by canonical name, in
        canonical layout (the caller's ``params`` untouched)."""
        raise UnsupportedError(f"{self.name} cannot run exported snippets")


def check_params(backend: str, params: Mapping[str, Any],
                 array_type: type | tuple[type, ...], floating: Callable[[Any], bool]) -> None:
    """For adapters: :class:`TypeError` naming the parameter for a value that is not one of the
    backend's arrays (a torch tensor handed to the tf backend, a list) or not of a floating dtype
    (integer parameters would round the coefficient to an integer: a silent wrong penalty)."""
    for name, value in params.items():
        if not isinstance(value, array_type):
            kind = type(value)
            raise TypeError(f"{backend}: param {name!r} is a {kind.__module__}."
                            f"{kind.__qualname__}, not one of this backend's arrays")
        if not floating(value):
            raise TypeError(f"{backend}: param {name!r} has dtype {value.dtype}; penalties need "
                            "floating-point parameters")


def check_shapes(backend: str, plan: Plan | Sequence[ParamInfo], params: Mapping[str, Any], *,
                 what: str = "param", complete: bool = False) -> None:
    """For adapters: :class:`SpecError` unless every array in ``params`` has the shape the plan
    was resolved with for its name (``.shape``, compared as a tuple), no name is one the plan
    lacks, and every parameter the plan penalizes or decays is there (every one of the plan's
    with ``complete=True``: methods that run the model need them all). ``plan`` may instead be
    the parameters themselves (``ModelSpec.params()``), for methods given no plan; then all are
    needed.

    The message names the parameter, the expected and the given shape; a 2-D shape that is the
    expected one transposed (a torch ``(out, in)`` kernel for a plan in ``(in, out)``, or the
    other way round), or an n-D one with the same sizes reordered, adds a layout hint. A missing
    or unknown name is named with the plan's parameters. ``what`` names the dict in messages
    (``"grad"`` for gradients). Cheap: one dict lookup and one tuple comparison per parameter,
    so it runs on every penalty call.
    """
    if isinstance(plan, Plan):
        infos = plan.params
    else:
        infos, complete = plan, True
    found = 0
    for info in infos:
        value = params.get(info.name)
        if value is None:
            if complete or _uses(plan, info.name):
                _shape_error(backend, plan, params, what, complete)
            continue
        found += 1
        if tuple(value.shape) != info.shape:
            _shape_error(backend, plan, params, what, complete)
    if found != len(params):
        _shape_error(backend, plan, params, what, complete)


def _uses(plan: Plan | Sequence[ParamInfo], name: str) -> bool:
    """Whether ``plan`` penalizes or decays ``name`` (all parameters count for a list)."""
    if not isinstance(plan, Plan):
        return True
    return name in plan.decay or any(a.param == name for a in plan.penalties)


def _shape_error(backend: str, plan: Plan | Sequence[ParamInfo], params: Mapping[str, Any],
                 what: str, complete: bool) -> None:
    infos = plan.params if isinstance(plan, Plan) else plan
    expected = {info.name: info.shape for info in infos}
    missing = [name for name in expected
               if name not in params and (complete or _uses(plan, name))]
    unknown = [name for name in params if name not in expected]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no {what} {', '.join(map(repr, missing))}")
        if unknown:
            parts.append(f"{what} {', '.join(map(repr, unknown))} not in the plan")
        raise SpecError(f"{backend}: {'; '.join(parts)} (the plan's parameters: "
                        f"{', '.join(expected) or 'none'}; resolve the spec against the "
                        f"parameters you pass)")
    for name, shape in expected.items():
        given = tuple(params[name].shape) if name in params else shape
        if given != shape:
            raise SpecError(f"{backend}: {what} {name!r} has shape {given}, the plan expects "
                            f"{shape}{_layout_hint(given, shape)}")
    raise AssertionError("check_shapes found no problem to report")  # pragma: no cover


def _layout_hint(given: tuple, expected: tuple) -> str:
    if len(given) < 2 or sorted(given) != sorted(expected):
        return ""
    if len(given) == 2:
        return (" (its transpose: an array in the other layout — torch's nn.Linear weight is "
                "(out, in), a Keras Dense kernel and ModelSpec's dense_i.kernel are (in, out); "
                "pass its transpose, e.g. weight.T)")
    return (" (the same sizes in another order: an array in another framework's layout, e.g. "
            "a torch conv weight (out, in, kh, kw) for a Keras kernel (kh, kw, in, out); "
            "permute its axes)")
