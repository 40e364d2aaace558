"""What the adapter protocol promises about returned values, checked in one place.

The docstrings of :class:`regcore.Backend` and its capabilities promise, for every method that
returns parameters or gradients (``penalty``, ``loss_and_grads``, ``train``, ``proximal_train``,
``native_train``, ``native_penalty``, ``distributed_*``, ``exported_*``): a ``{name: array}`` dict
with exactly the parameters' names (a gradient for every parameter, zeros where no term applies),
each array of its parameter's shape, dtype and device. A returned value (penalty, loss) is a 0-dim
array of the parameters' dtype (float32 or wider for float16/bfloat16 parameters) on their device.

:func:`returned` records all of it as one check, ``returns:<call>`` (error 0 or inf against
tolerance 0, like :meth:`~regcore_conformance.checker.Checker.holds`), whose detail names every
broken promise and the parameters concerned. The numeric checks beside it compare only the
entries the reference has, so without it an extra or missing name, a gradient on the CPU for a
CUDA parameter, or a float64 gradient of a float32 parameter in a dict no check reads would
pass.

:func:`plan_differences` compares the plan a native translation resolved on the framework's own
model (:meth:`regcore.NativeTranslations.native_plan`) with the reference's.

Devices are read the array API way, the array's ``device`` attribute (NumPy 2, torch,
TensorFlow's device string, JAX; called where it is a method), and compared only where both the
parameter and the result have one. Dtypes by name: ``dtype.name`` (NumPy, JAX, TensorFlow), else
the last dotted part of ``str(dtype)`` (``torch.float32``), since :meth:`~regcore.Backend.to_numpy`
may widen bfloat16, which NumPy lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from regcore import Plan


def dtype_name(x: Any) -> str:
    """The dtype of a backend array by name (see the module docstring)."""
    dtype = getattr(x, "dtype", None)
    name = getattr(dtype, "name", None)
    return name if isinstance(name, str) else str(dtype).rpartition(".")[2]


def device_of(x: Any) -> str | None:
    """The array's ``device`` as a string (``None`` where it has none)."""
    device = getattr(x, "device", None)
    if callable(device):
        device = device()
    return None if device is None else str(device)


def _value_dtypes(params: Mapping[str, Any]) -> tuple[str, ...]:
    names = {dtype_name(p) for p in params.values()}
    if names <= {"float32", "float64"}:
        return ("float64",) if "float64" in names else ("float32",)
    return ("float32", "float64")  # low precision: accumulated in float32 at least


def returned(check: Any, backend: Any, call: str, got: Mapping[str, Any],
             params: Mapping[str, Any], *, value: Any = None) -> None:
    """Record ``returns:<call>``: ``got`` is keyed by exactly ``params``' names, each array of
    its parameter's shape, dtype and device; ``value``, if given, is 0-dim, of the parameters'
    dtype (float32 or wider where they are float16/bfloat16) and on their device."""
    broken: list[str] = []
    if not isinstance(got, Mapping):
        check.holds(f"returns:{call}", False, f"returned a {type(got).__name__}, not a dict "
                    "keyed by parameter name")
        return
    missing = [n for n in params if n not in got]
    extra = [n for n in got if n not in params]
    if missing:
        broken.append(f"no entry for {', '.join(missing)} (promised: every parameter, zeros "
                      "where no term applies)")
    if extra:
        broken.append(f"entries for {', '.join(map(str, extra))}, which are not parameters")
    shapes, dtypes, devices = [], [], []
    for name in (n for n in params if n in got):
        want, have = params[name], got[name]
        shape, want_shape = np.shape(backend.to_numpy(have)), np.shape(backend.to_numpy(want))
        if shape != want_shape:
            shapes.append(f"{name} {shape}, not {want_shape}")
        if dtype_name(have) != dtype_name(want):
            dtypes.append(f"{name} {dtype_name(have)}, not {dtype_name(want)}")
        if None not in (device_of(want), device_of(have)) and device_of(have) != device_of(want):
            devices.append(f"{name} on {device_of(have)}, not {device_of(want)}")
    if value is not None:
        first = next(iter(params.values()), None)
        if np.shape(backend.to_numpy(value)) != ():
            shapes.append(f"value {np.shape(backend.to_numpy(value))}, not ()")
        allowed = _value_dtypes(params)
        if dtype_name(value) not in allowed:
            dtypes.append(f"value {dtype_name(value)}, not {' or '.join(allowed)}")
        if (first is not None and None not in (device_of(first), device_of(value))
                and device_of(value) != device_of(first)):
            devices.append(f"value on {device_of(value)}, not {device_of(first)}")
    for promise, found in (("shapes", shapes), ("dtypes", dtypes), ("devices", devices)):
        if found:
            broken.append(f"{promise}: {'; '.join(found)}")
    check.holds(f"returns:{call}", not broken, " | ".join(broken))


def plan_differences(got: Plan, want: Plan) -> list[str]:
    """What differs between the plan a native translation resolved (``got``) and the reference's
    (``want``) for the same spec: parameters (name, shape, role, and any other field of
    :class:`regcore.ParamInfo`), the terms each parameter gets (and from which rule), decay
    rates, the activity terms on each layer's output. Empty when they are the same plan (order
    aside)."""
    out: list[str] = []
    have = {p.name: p for p in got.params}
    need = {p.name: p for p in want.params}
    if missing := [n for n in need if n not in have]:
        out.append(f"parameters missing: {', '.join(missing)}")
    if extra := [n for n in have if n not in need]:
        out.append(f"parameters not in the model: {', '.join(extra)}")
    out += [f"{n}: {have[n]} where the reference has {need[n]}"
            for n in need if n in have and have[n] != need[n]]
    terms_got = _terms(got)
    terms_want = _terms(want)
    for name in sorted(terms_got.keys() | terms_want.keys()):
        if terms_got.get(name, []) != terms_want.get(name, []):
            out.append(f"{name} gets {_show(terms_got.get(name))} where the reference gives "
                       f"{_show(terms_want.get(name))}")
    for name in sorted(got.decay.keys() | want.decay.keys()):
        if got.decay.get(name) != want.decay.get(name):
            out.append(f"{name} decays at {got.decay.get(name)} where the reference decays at "
                       f"{want.decay.get(name)}")
    if sorted(map(repr, got.activity)) != sorted(map(repr, want.activity)):
        out.append(f"activity terms {list(got.activity)} where the reference has "
                   f"{list(want.activity)}")
    return out


def _terms(plan: Plan) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for a in plan.penalties:
        out.setdefault(a.param, []).append((a.rule, repr(a.term)))
    return {k: sorted(v) for k, v in out.items()}


def _show(terms: list[tuple[int, str]] | None) -> str:
    return ", ".join(f"{t} (rule {r})" for r, t in terms) if terms else "no term"
