"""Properties over random specs (tests/strategies.py), run by hypothesis.

* every installed backend's penalty value and gradients agree with the NumPy float64 reference
  within the derived tolerance (regcore_conformance.tolerance), for random specs — every term,
  every convention, coefficients from 0 to the dtype's extremes, every selection criterion — on
  random parameter shapes and values with exact zeros;
* ``to_dict``/``from_dict`` and ``to_json``/``from_json`` round-trip any spec exactly;
* convention conversions compose: there and back is the identity wherever the factor between two
  conventions is a power of two, and within one rounding (≤ 1 ulp) otherwise; converting in two
  hops is the direct conversion within one ulp; the canonical ``sum`` coefficients (what
  backends evaluate) are preserved the same way.

The default profile runs a few dozen examples per test; ``nox -s hypothesis`` runs the
``thorough`` profile (tests/conftest.py) and checks the total number of examples.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import regcore
from regcore import TERMS, Rule, Select, Spec, SpecError, convert
from regcore_conformance.tolerance import Tolerance, penalty_chain
from tests import strategies as rs
from tests.installed import backend_params

REFERENCE = regcore.load_backend("numpy")


@cache
def _backend(name: str) -> regcore.Backend:
    return regcore.load_backend(name)


def _backend_dtypes() -> list:
    """Every registered backend × dtype; one whose framework is not installed here is skipped
    with the loader's reason (each backend's nox session installs it)."""
    return [pytest.param(*p.values, dtype, marks=p.marks) for p in backend_params()
            for dtype in ("float64", "float32")]


BACKEND_DTYPES = _backend_dtypes()


def _error(got: np.ndarray, ref: np.ndarray, scale: float) -> float:
    """Normwise error ``max|got - ref| / scale``; with ``scale`` 0 only an exact 0 passes."""
    diff = float(np.max(np.abs(got.astype(np.float64) - ref), initial=0.0))
    if scale == 0:
        return 0.0 if diff == 0 else math.inf
    return diff / scale


def _orthogonal_scales(term: regcore.Orthogonal, w: np.ndarray) -> tuple[float, float]:
    """The scales an orthogonal term's value and gradient are judged against. Its value is
    ``coef`` times a mean of |cosines| that may all be near 0, each with an absolute (not
    relative) rounding error, so the value's scale is ``coef``. Its gradient for vector ``v_i``
    is ``coef/(s(s-1)/2) Σ_j ±(I - v̂_i v̂_iᵀ) v̂_j / ‖v_i‖``: a projection that cancels, bounded
    by ``2 coef / (s · min ‖v_i‖)`` over the nonzero vectors (a zero vector's subgradient is 0)."""
    coef = term.scaled()["coef"]
    vectors = w if term.mode == "rows" else w.T
    norms = np.linalg.norm(vectors, axis=1)
    norms = norms[norms > 0]
    grad = 0.0 if norms.size == 0 else 2 * coef / (len(vectors) * max(
        float(np.min(norms)), regcore.ORTHOGONAL_EPSILON))
    return coef, grad


def _scales(plan: regcore.Plan, arrays: dict[str, np.ndarray]) -> tuple[float, dict[str, float]]:
    """The scale the total penalty is judged against (Σ over terms of each term's value, or its
    bound where the value is a sum of cancelling-prone parts), and per parameter the scale of
    its gradient: Σ over its terms of the largest entry of that term's reference gradient (or
    its bound). Summing per-term scales keeps the check normwise: terms can cancel in a
    gradient (orthogonal against the rest), yet both terms' rounding errors count."""
    value_scale, grad_scale = 0.0, dict.fromkeys(arrays, 0.0)
    for a in plan.penalties:
        if isinstance(a.term, regcore.Orthogonal):
            v, g = _orthogonal_scales(a.term, arrays[a.param])
        else:
            one = dataclasses.replace(plan, penalties=(a,), decay={})
            value, grads = REFERENCE.penalty(one, {a.param: arrays[a.param]})
            v, g = float(value), float(np.max(np.abs(grads[a.param]), initial=0.0))
        value_scale += v
        grad_scale[a.param] += g
    return value_scale, grad_scale


# Backends that compile every new spec and shape (a tf.function trace, an XLA compile) cost
# 0.2-0.6 s per random example here against ~10 ms for NumPy and torch, so they get this fraction
# of the profile's examples; the fixed cases of the conformance suite cover them in full.
COMPILED_FRACTION = {"tf": 0.1, "jax": 0.05}


@pytest.mark.parametrize(("backend_name", "dtype"), BACKEND_DTYPES)
def test_every_backend_agrees_with_the_reference(backend_name, dtype):
    budget = max(10, int(settings().max_examples * COMPILED_FRACTION.get(backend_name, 1.0)))
    settings(max_examples=budget)(given(data=st.data())(_agrees))(backend_name, dtype)


def _agrees(backend_name, dtype, data):
    params = data.draw(rs.param_infos(), label="params")
    spec = data.draw(rs.resolvable_specs(params, dtype), label="spec")
    plan = spec.resolve(params)
    arrays = {p.name: data.draw(rs.values(), label=p.name).array(p.shape) for p in params}
    backend = _backend(backend_name)
    inputs = {k: backend.asarray(w, dtype=dtype, device="cpu") for k, w in arrays.items()}
    value, grads = backend.penalty(plan, inputs)
    ref_value, ref_grads = REFERENCE.penalty(plan, arrays)

    n_value = sum(penalty_chain(arrays[a.param].shape) for a in plan.penalties)
    tol = Tolerance(dtype, n_value + len(plan.penalties)).value
    value_scale, grad_scales = _scales(plan, arrays)
    err = _error(np.asarray(backend.to_numpy(value)), ref_value, value_scale)
    assert err <= tol, f"penalty: error {err:.3g} > tolerance {tol:.3g}"
    for name, ref in ref_grads.items():
        terms = len(plan.terms_for(name))
        tol = Tolerance(dtype, penalty_chain(ref.shape) + terms).value
        got = np.asarray(backend.to_numpy(grads[name]))
        assert got.shape == ref.shape and str(got.dtype) == dtype, (got.shape, got.dtype)
        err = _error(got, ref, grad_scales[name])
        assert err <= tol, f"grad:{name}: error {err:.3g} > tolerance {tol:.3g}"
    rs.count_example()


@given(rs.specs())
def test_dict_and_json_round_trip_exactly(spec):
    assert regcore.from_dict(regcore.to_dict(spec)) == spec
    assert regcore.from_json(regcore.to_json(spec)) == spec
    assert regcore.to_dict(regcore.from_dict(regcore.to_dict(spec))) == regcore.to_dict(spec)
    rs.count_example()


def _power_of_two(r: Fraction) -> bool:
    return r.numerator & (r.numerator - 1) == 0 and r.denominator & (r.denominator - 1) == 0


def _normal(x: float) -> bool:
    """0 or a normal float: below the normal range a rounding loses relative precision, which
    no conversion can give back (documented: "barring underflow")."""
    return x == 0 or abs(x) >= sys.float_info.min


def _close(got: float, want: float, exact: bool) -> bool:
    """Equal if ``exact``, else within one ulp (of the larger binade, if they straddle one)."""
    return got == want if exact else abs(got - want) <= max(math.ulp(got), math.ulp(want))


def _convert(term: regcore.Term, form: dict) -> regcore.Term | None:
    """``convert`` or ``None`` where the result leaves the float range (its documented
    SpecError)."""
    try:
        return convert(term, form["convention"],
                       **{k: v for k, v in form.items() if k != "convention"})
    except SpecError as exc:
        assert "float" in str(exc), exc
        return None


def _coefs(term: regcore.Term | None) -> tuple[float, ...]:
    return () if term is None else tuple(getattr(term, n) for n in term.coefficients)


@given(data=st.data())
def test_conversions_compose_to_identity(data):
    kind = data.draw(st.sampled_from(tuple(TERMS)), label="kind")
    term = data.draw(rs.terms((kind,), coefs=rs.any_coefficient()), label="term")
    home = {"convention": term.convention,
            **{k: getattr(term, k) for k in ("batch_size", "n_samples", "data_loss")
               if getattr(term, k) is not None}}
    a, b = data.draw(rs.conventions(kind), label="a"), data.draw(rs.conventions(kind), label="b")
    there = _convert(term, a)
    if there is None:
        return
    back, two_hops, direct = _convert(there, home), _convert(there, b), _convert(term, b)
    assume(all(_normal(c) for t in (term, there, back, two_hops, direct) for c in _coefs(t)))
    for i, name in enumerate(term.coefficients):
        start, mid = getattr(term, name), getattr(there, name)
        ratio = term._factors()[i] / there._factors()[i]
        exact = Fraction(mid) == Fraction(start) * ratio  # the one rounding there was exact
        if _power_of_two(ratio):  # documented: a power-of-two factor converts bit-for-bit
            assert exact, (name, term, there)
        if back is not None:
            assert _close(getattr(back, name), start, exact), (name, term, there, back)
        if two_hops is not None and direct is not None:
            assert _close(getattr(two_hops, name), getattr(direct, name), exact), \
                (name, term, there, two_hops, direct)
        assert _close(there.scaled()[name], term.scaled()[name], exact), (name, term, there)
    if back is not None and all(_power_of_two(f / g) for f, g in
                                zip(term._factors(), there._factors(), strict=True)):
        assert back == term
    rs.count_example()


def test_the_reference_agrees_with_itself_on_a_known_spec():
    """A fixed example through the same code path as the property (so a bug in the comparison
    itself, e.g. a scale of 0, shows up without hypothesis)."""
    params = (regcore.ParamInfo("layer_0.kernel", (3, 2), "weight"),)
    plan = Spec(penalties=(Rule(regcore.L2(0.5, convention="sum"), Select()),)).resolve(params)
    w = np.array([[1.0, -2.0], [0.0, 3.0], [0.5, 0.5]])
    value, grads = REFERENCE.penalty(plan, {"layer_0.kernel": w})
    assert float(value) == 0.5 * float(np.sum(w * w))
    np.testing.assert_array_equal(grads["layer_0.kernel"], w)
