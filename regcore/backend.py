"""The backend protocol: what a framework author implements to run regcore's penalties.

A backend evaluates a resolved :class:`regcore.Plan` in its framework. The conformance suite
hands it NumPy data, converts with :meth:`Backend.asarray`, and compares :meth:`Backend.to_numpy`
of every result with the NumPy float64 reference. That, with :meth:`Backend.penalty`, is the
whole required core. Everything else a backend may offer (the scenario harness, proximal
training, native translations, data-parallel training, running exported snippets) is a
capability class of :mod:`regcore.capabilities` that the backend class inherits.

Nothing here imports a framework (or NumPy): backends import theirs, in their own modules.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from regcore.errors import SpecError, UnsupportedError
from regcore.selection import ParamInfo
from regcore.spec import Plan

FLOATING_PREFIXES = ("float", "bfloat")
"""Dtype names :func:`check_arrays` accepts by default (``float16`` ... ``float64``,
``bfloat16``; the float8 kinds too)."""


class UnknownDeviceError(SpecError):
    """A device name the backend does not declare in :attr:`Backend.devices`."""


class MissingCapabilityError(UnsupportedError, AttributeError):
    """A capability's method asked of a backend that does not inherit the capability (an
    :class:`AttributeError`, so ``hasattr`` is false, and a :class:`regcore.UnsupportedError`,
    so callers that skip unsupported work skip it)."""


CAPABILITY_OF: dict[str, str] = {}
"""Each capability method's capability class (filled by :mod:`regcore.capabilities`)."""


class Backend(abc.ABC):
    """The required core of a backend; everything is named by parameter name.

    Implement :attr:`name`, :meth:`asarray`, :meth:`to_numpy` and :meth:`penalty`; declare
    :attr:`devices`, :attr:`dtypes`, :attr:`low_precision_dtypes` and :attr:`array_types` where
    the defaults are not yours; override :meth:`device_available`, :meth:`supports` and
    :meth:`versions` where they differ. Optional capabilities are the classes of
    :mod:`regcore.capabilities`, inherited beside this one; :meth:`capabilities` lists them.

    The base checks the arguments once, for every backend (a subclass's methods are wrapped
    when the class is created): a device not in :attr:`devices` given to :meth:`asarray` or
    :meth:`device_available` is an :class:`UnknownDeviceError` (a :class:`regcore.SpecError`);
    parameters that are not floating-point arrays of :attr:`array_types` are a
    :class:`TypeError` (:func:`check_arrays`), and names or shapes that are not the plan's a
    :class:`regcore.SpecError` (:func:`check_shapes`), before the method runs.

    Arrays are the backend's own. ``params`` and returned gradients are ``{name: array}`` dicts
    with the names of :class:`regcore.ParamInfo`.

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
    #: accumulating in float32; the suite's low-precision checks run over them.
    low_precision_dtypes: ClassVar[tuple[str, ...]] = ()
    #: The framework's array types; a parameter of another type is a :class:`TypeError`
    #: (empty: any value with a floating ``dtype``).
    array_types: ClassVar[tuple[type, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for old, new in _RENAMED.items():
            if old in cls.__dict__:
                raise TypeError(f"{cls.__qualname__}.{old}: renamed to {new}")
        for method, check in _CHECKS.items():
            _wrap(cls, method, check)

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        """What the backend declares, as plain data (for reports and ``regcore`` listings):
        devices, dtypes, the capability classes it inherits (by name) and what each declares."""
        offered = [c for c in cls.__mro__ if vars(c).get("_defines_capability")]
        out: dict[str, Any] = {
            "devices": list(cls.devices), "dtypes": list(cls.dtypes),
            "low_precision_dtypes": list(cls.low_precision_dtypes),
            "capabilities": [c.__name__ for c in offered],
        }
        for capability in offered:
            out.update({k: list(getattr(cls, k)) for k in vars(capability).get("declared", ())})
        return out

    def device_available(self, device: str) -> bool:
        """Whether ``device`` (one of :attr:`devices`) can be used in this process (default:
        ``cpu`` only)."""
        _available(self, device)  # overrides are checked by the wrapper (__init_subclass__)
        return device == "cpu"

    def supports(self, device: str, dtype: str) -> bool:
        """Whether ``dtype`` runs on ``device`` (default: every declared dtype on every device)."""
        return dtype in self.dtypes

    def versions(self) -> dict[str, str]:
        """The framework's package versions, ``{package: version}``, for reports (default:
        none)."""
        return {}

    @abc.abstractmethod
    def asarray(self, array: Any, *, dtype: str, device: str) -> Any:
        """A NumPy array as a backend array of ``dtype`` (a NumPy dtype name) on ``device``
        (one of :attr:`devices`)."""

    @abc.abstractmethod
    def to_numpy(self, x: Any) -> Any:
        """A backend array (or scalar) as a NumPy array."""

    @abc.abstractmethod
    def penalty(self, plan: Plan, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The plan's total penalty value and its (sub)gradient for every parameter given (the
        plan's parameters, at least those it penalizes or decays)."""

    def __getattr__(self, name: str) -> Any:
        if name in _RENAMED:
            raise AttributeError(f"{type(self).__name__}.{name}: renamed to {_RENAMED[name]}")
        if name in CAPABILITY_OF:
            cap = CAPABILITY_OF[name]
            raise MissingCapabilityError(f"{self.name}: does not offer the {cap} capability "
                                         f"(regcore.capabilities.{cap}), so has no {name}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


_RENAMED = {
    "native_paths": "native_translations (regcore.capabilities.NativeTranslations)",
    "native_penalty_paths": "native_penalty_translations "
                            "(regcore.capabilities.NativeTranslations)",
    "distributed_paths": "distributed_translations (regcore.capabilities.DataParallel)",
}
"""Old protocol names: defining one is a :class:`TypeError`, reading one an
:class:`AttributeError`, each naming the new one."""


def _device(self: Backend, array: Any = None, *, device: str, **_: Any) -> None:
    if device not in type(self).devices:
        raise UnknownDeviceError(f"{self.name}: unknown device {device!r}; the backend declares "
                                 f"{', '.join(map(repr, type(self).devices))}")


def _available(self: Backend, device: str) -> None:
    _device(self, device=device)


def _penalty_args(self: Backend, plan: Plan, params: Mapping[str, Any]) -> None:
    check_arrays(self.name, params, type(self).array_types)
    check_shapes(self.name, plan, params)


_CHECKS: dict[str, Callable[..., None]] = {
    "asarray": _device, "device_available": _available, "penalty": _penalty_args}
"""Per method of :class:`Backend`, the check its implementations run first."""


def _wrap(cls: type, method: str, check: Callable[..., None]) -> None:
    """Make ``cls``'s own ``method`` (if it defines one) run ``check`` on its arguments first."""
    fn = cls.__dict__.get(method)
    if not callable(fn) or getattr(fn, "__isabstractmethod__", False) or getattr(
            fn, "_regcore_checked", False):
        return

    @functools.wraps(fn)
    def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
        check(self, *args, **kwargs)
        return fn(self, *args, **kwargs)

    checked._regcore_checked = True  # type: ignore[attr-defined]
    setattr(cls, method, checked)


def floating(array: Any) -> bool:
    """Whether ``array``'s dtype is a floating one, by name (``dtype.name``, else the last
    dotted part of ``str(dtype)``: ``torch.float32``)."""
    dtype = getattr(array, "dtype", None)
    if dtype is None:
        return False
    name = getattr(dtype, "name", None)
    name = name if isinstance(name, str) else str(dtype).rpartition(".")[2]
    return name.startswith(FLOATING_PREFIXES)


def check_arrays(backend: str, params: Mapping[str, Any],
                 array_types: type | tuple[type, ...] = (),
                 is_floating: Callable[[Any], bool] = floating) -> None:
    """:class:`TypeError` naming the parameter for a value that is not one of the backend's
    ``array_types`` (a torch tensor handed to the tf backend, a list; any type where empty) or
    not of a floating dtype (integer parameters would round the coefficient to an integer: a
    silent wrong penalty). :class:`Backend` runs it before every method given parameters."""
    for name, value in params.items():
        if array_types and not isinstance(value, array_types):
            kind = type(value)
            raise TypeError(f"{backend}: param {name!r} is a {kind.__module__}."
                            f"{kind.__qualname__}, not one of this backend's arrays")
        if not is_floating(value):
            raise TypeError(f"{backend}: param {name!r} has dtype "
                            f"{getattr(value, 'dtype', None)}; penalties need floating-point "
                            "parameters")


def __getattr__(name: str) -> Any:
    if name == "check_params":
        raise AttributeError("regcore.backend.check_params: renamed to "
                             "regcore.backend.check_arrays (regcore.conventions.check_params is "
                             "the coefficient check)")
    if name in ("ModelSpec", "Optimizer", "OPTIMIZERS", "ACTIVATIONS", "LOSSES"):
        raise AttributeError(f"regcore.backend.{name}: moved to regcore.harness.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    infos: Sequence[ParamInfo]
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
