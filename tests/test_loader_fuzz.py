"""Safe loading: a spec loads from JSON only, and nothing but :class:`regcore.SpecError` ever
escapes the loader.

Random bytes, random text, random JSON values, random JSON shaped like a spec and random JSON up
to four edits away from a valid spec go to :func:`regcore.from_json` and
:func:`regcore.from_dict`: each either gives a :class:`regcore.Spec` that round-trips exactly
through :func:`regcore.to_json`, or raises exactly ``SpecError`` with a message rooted at a field
path (``spec``, ``schema_version``, ``penalties[0].term.coef``...). Any other exception —
``TypeError``, ``KeyError``, ``RecursionError``, ``OverflowError``... — is a failure. Inputs that
once escaped are pinned in :data:`ESCAPES`, a few edge cases with ``@example``.

Examples per test: at least :data:`MIN_EXAMPLES`; a Hypothesis profile that asks for more (a
dedicated fuzzing session) gets more.

Then the negative guarantee: YAML object tags, pickle payloads and Python expressions give
``SpecError`` and run nothing, and an AST scan of ``regcore/`` proves no module imports a
deserializer that can run code (pickle, marshal, shelve, yaml...) or calls
``eval``/``exec``/``compile``/``__import__`` outside one allow-listed function.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import pickle
import random
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from regcore import (
    L1,
    L2,
    ROLES,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    ModelSpec,
    Orthogonal,
    Rule,
    Select,
    Spec,
    SpecError,
    from_dict,
    from_json,
    to_dict,
    to_json,
)
from tests.strategies import counted

ROOT = Path(__file__).resolve().parent.parent

MIN_EXAMPLES = 300
FUZZ = settings(max_examples=max(MIN_EXAMPLES, settings.default.max_examples), deadline=None)

# A message names where in the spec the bad value sits: the whole spec, a top-level key, or a
# dotted path below one (``penalties[0].term.coef``, ``weight_decay[1].select.name``).
FIELD_PATH = re.compile(r"^(spec|schema_version|penalties|weight_decay)(\[\d+\])?[.:]")


def load(loader, value) -> Spec | None:
    """``loader(value)``: a Spec that round-trips exactly, or ``None`` after exactly a SpecError
    naming a field path. Any other exception propagates and fails the test."""
    try:
        spec = loader(value)
    except SpecError as exc:
        assert type(exc) is SpecError, f"a subclass escaped: {type(exc).__name__}: {exc}"
        assert FIELD_PATH.match(str(exc)), f"the message names no field path: {exc}"
        event(f"{loader.__name__}: SpecError at {FIELD_PATH.match(str(exc)).group(1)}")
        return None
    event(f"{loader.__name__}: a Spec")
    assert isinstance(spec, Spec)
    text = to_json(spec)
    assert from_json(text) == spec
    assert to_json(from_json(text)) == text
    assert from_dict(to_dict(spec)) == spec
    return spec


# -- what the fuzzers draw -------------------------------------------------------------------------

EXAMPLE_SPECS = [
    Spec(),
    Spec(penalties=[Rule(L2(0.01, convention="sum"))]),
    Spec(
        penalties=[
            Rule(L2(0.1, convention="batch_mean", batch_size=32)),
            Rule(L1(0.5, convention="sklearn_lasso", data_loss="half_mse"),
                 Select(roles=("bias",), ndim=(1,))),
            Rule(Orthogonal(0.01, convention="sum", mode="columns"),
                 Select(name=r"dense_[01]\..*", min_ndim=2)),
        ],
        weight_decay=[DecoupledWeightDecay(1e-3, Select(roles=("norm_scale", "bias")))],
    ),
    Spec(
        penalties=[
            Rule(L2(1.0, convention="sklearn_ridge", n_samples=100, data_loss="mse")),
            Rule(ElasticNet.from_sklearn(0.1, 0.3, data_loss="mse"), Select(name="w")),
            Rule(GroupLasso(0.05, convention="sum", axis=1, scale_by_size=True), Select()),
        ],
        weight_decay=[DecoupledWeightDecay(0.01)],
    ),
]
VALID_DICTS = [to_dict(s) for s in EXAMPLE_SPECS]

# Strings the loader gives meaning to, so random JSON reaches the deeper checks too.
VOCABULARY = sorted({
    "schema_version", "penalties", "weight_decay", "term", "select", "rate", "kind", "coef",
    "l1", "l2", "convention", "batch_size", "n_samples", "data_loss", "axis", "scale_by_size",
    "mode", "roles", "name", "ndim", "min_ndim", "elastic_net", "group_lasso", "orthogonal",
    "sum", "half", "torch_weight_decay", "batch_mean", "sklearn_ridge", "sklearn_lasso",
    "sklearn_elasticnet", "mse", "half_mse", "rows", "columns", "weight", "bias", "norm_scale",
    "embedding", "other", ".*", "(", "a{4294967296}",
})
texts = st.sampled_from(VOCABULARY) | st.text(max_size=20)
HUGE_INTS = [2**63, -(2**63), 10**400, -(10**400), 10**700, 10**4299]  # JSON can carry these
numbers = (st.integers() | st.sampled_from(HUGE_INTS)
           | st.floats(allow_nan=True, allow_infinity=True))
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(texts, children, max_size=4)),
    max_leaves=12,
)


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


# Values at the edges of what Python and `re` handle: past the int-to-str digit limit (from_dict
# only: JSON text cannot carry them), nested past the repr recursion limit, regexes that make
# re.compile raise RecursionError or OverflowError, a string too long to quote whole.
NASTY = [10**5000, -(10**5000), _nested(5000), "(" * 2000 + ")" * 2000, "a{4294967296}",
         "x" * 5000]


# Random JSON shaped like a spec (the right keys at the right depths, values mostly of the right
# kind, any of them possibly random JSON instead), so the fuzz reaches every field's checks.
def mostly(good, bad=json_values):
    """``good`` in three branches of four, ``bad`` in the fourth (Hypothesis weighs branches by
    what it has not tried yet, so this is a tilt, not a ratio)."""
    return st.one_of(good, good, good, bad)


def _term_shaped(cls, **optional):
    required = {"kind": mostly(st.just(cls.kind), texts),
                "convention": mostly(st.sampled_from(cls.conventions), texts)}
    required |= {name: mostly(st.floats(0, 10), numbers) for name in cls.coefficients}
    return st.fixed_dictionaries(required, optional=optional)  # unknown keys: near_specs


sizes = mostly(st.integers(1, 200), numbers)
losses = mostly(st.sampled_from(["mse", "half_mse"]), texts)
term_shaped = st.one_of(
    _term_shaped(L2, batch_size=sizes, n_samples=sizes, data_loss=losses),
    _term_shaped(L1, data_loss=losses),
    _term_shaped(ElasticNet, data_loss=losses),
    _term_shaped(GroupLasso, axis=mostly(st.integers(-2, 2), numbers),
                 scale_by_size=mostly(st.booleans(), scalars)),
    _term_shaped(Orthogonal, mode=mostly(st.sampled_from(["rows", "columns"]), texts)),
)
select_shaped = st.fixed_dictionaries({}, optional={
    "roles": mostly(st.lists(mostly(st.sampled_from(ROLES), texts), min_size=1, max_size=3)),
    "name": mostly(st.sampled_from([".*", "w", r"dense_\d\..*", "(", "a{4294967296}"])),
    "ndim": mostly(st.lists(st.integers(-1, 4), min_size=1, max_size=3)),
    "min_ndim": mostly(st.integers(-1, 4)),
})
spec_shaped = st.fixed_dictionaries(
    {"schema_version": st.just(1)},  # bad versions: the other fuzzers
    optional={
        "penalties": mostly(st.lists(st.fixed_dictionaries(
            {"term": mostly(term_shaped)}, optional={"select": mostly(select_shaped)}),
            max_size=3)),
        "weight_decay": mostly(st.lists(st.fixed_dictionaries(
            {"rate": mostly(st.floats(0, 1), numbers)},
            optional={"select": mostly(select_shaped)}), max_size=3)),
    },
)


def _slots(node, out):
    """Every (container, key) pair under ``node``: where a value can be dropped or replaced."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        out.append((node, key))
        if isinstance(value, (dict, list)):
            _slots(value, out)
    return out


def _retyped(value, pick: int):
    """``value`` as a different JSON type (numbers: one of five confusions, by ``pick``), the
    mistakes a hand-written spec makes."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return [str(value), -value, value * 10**300, None, True][pick % 5]
    if isinstance(value, str):
        return [value] if value else 0
    if isinstance(value, list):
        return dict(enumerate(map(str, value))) if value else {}
    if isinstance(value, dict):
        return list(value.values())
    return "null"


@st.composite
def near_specs(draw):
    """A valid spec dict with up to four edits: a key dropped, a value replaced by random JSON,
    by another type or by another number, an unknown or known key added, a list item
    duplicated; sometimes, last, a value from :data:`NASTY`."""
    data = copy.deepcopy(draw(st.sampled_from(VALID_DICTS)))
    for _ in range(draw(st.integers(0, 4))):
        slots = _slots(data, [])
        edit = draw(st.sampled_from(["drop", "replace", "retype", "renumber", "add",
                                     "duplicate"]))
        if not slots:
            edit = "add"
        if edit == "add":
            dicts = [data] + [c[k] for c, k in slots if isinstance(c[k], dict)]
            draw(st.sampled_from(dicts))[draw(texts)] = draw(json_values)
            continue
        container, key = draw(st.sampled_from(slots))
        if edit == "drop":
            del container[key]
        elif edit == "replace":
            container[key] = draw(json_values)
        elif edit == "retype":
            container[key] = _retyped(container[key], draw(st.integers(0, 4)))
        elif edit == "renumber":  # often still valid: another coefficient, size or axis
            container[key] = draw(st.floats(0, 1e6) | st.integers(-1, 1000))
        elif isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
        else:
            container[key] = [container[key], copy.deepcopy(container[key])]
    slots = _slots(data, [])
    if slots and draw(st.integers(0, 4)) == 0:  # last, as the helpers above do not descend it
        container, key = draw(st.sampled_from(slots))
        container[key] = draw(st.sampled_from(NASTY))
    return data


def _dumps(value) -> str | None:
    """``json.dumps(value)``, or ``None`` where Python itself cannot write the value (its
    ``from_json`` rejections are pinned with the JSON-writable inputs)."""
    try:
        return json.dumps(value)
    except (ValueError, RecursionError):  # past the int-to-str digit limit; nested too deep
        return None


# -- the fuzzers ---------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=200))
@example(b"\xff\xfe{")
@example(b"\x80\x04\x95")  # the start of a pickle
@example('{"schema_version": 1}'.encode("utf-16"))
@example(b'{"schema_version": 1, "penalties": [{"term": {"kind": "l2"\xff}}]}')
@counted
def test_random_bytes(data):
    load(from_json, data)
    load(from_json, bytearray(data))


@FUZZ
@given(st.text(max_size=200) | st.sampled_from(VOCABULARY))
@example("\ud800")
@example("[" * 40 + "]" * 40)
@example('{"schema_version": 1e400}')
@example('{"schema_version": 1, "weight_decay": [{"rate": -0.0}]}')
@counted
def test_random_text(text):
    load(from_json, text)


@FUZZ
@given(json_values | st.sampled_from(NASTY))
@example({"schema_version": 10**4299})
@example({"schema_version": [[[[1]]]]})
@counted
def test_random_json_values(value):
    load(from_dict, value)
    text = _dumps(value)
    if text is not None:
        load(from_json, text)


@FUZZ
@given(spec_shaped)
@counted
def test_spec_shaped_json(value):
    load(from_dict, value)
    text = _dumps(value)
    if text is not None:
        load(from_json, text)


def _wd_name(name: str) -> dict:
    return {"schema_version": 1, "weight_decay": [{"rate": 0.1, "select": {"name": name}}]}


def _term(**term) -> dict:
    return {"schema_version": 1, "penalties": [{"term": term}]}


# Regexes for select.name: metacharacter soup, repeat counts past re's limit, deep nesting.
regexes = (st.text(alphabet="()[]{}?*+|\\^$.a0,:<>=!#P-", max_size=40)
           | st.integers(0, 2**70).map(lambda n: f"a{{{n}}}")
           | st.integers(0, 3000).map(lambda n: "(" * n + ")" * n))


@FUZZ
@given(regexes)
@counted
def test_random_select_names(name):
    load(from_json, json.dumps(_wd_name(name)))


# Inputs that once escaped as something other than SpecError (the fix is in the comment).
ESCAPES = {
    # re.compile's RecursionError and OverflowError: select.name is compiled inside try
    "regex nested 2000 deep": _wd_name("(" * 2000 + ")" * 2000),
    "regex repeat past 2**32": _wd_name("a{4294967296}"),
    # ints that to_json could not write back (past Python's int-to-str digit limit); from_dict
    # built the Spec, to_json raised ValueError: integers in a spec now have at most 640 digits
    "batch_size 10**5000 with coef 0": _term(kind="l2", coef=0, convention="batch_mean",
                                             batch_size=10**5000),
    "n_samples 10**5000 with coef 0": _term(kind="l2", coef=0, convention="sklearn_ridge",
                                            n_samples=10**5000, data_loss="mse"),
    "group_lasso axis 10**5000": _term(kind="group_lasso", coef=0.1, convention="sum",
                                       axis=-(10**5000)),
    "select ndim 10**5000": {"schema_version": 1, "weight_decay": [
        {"rate": 0.1, "select": {"ndim": [10**5000]}}]},
    "select min_ndim 10**5000": {"schema_version": 1, "weight_decay": [
        {"rate": 0.1, "select": {"min_ndim": 10**5000}}]},
    # messages that quoted the value with repr(): ValueError for an int past the digit limit,
    # RecursionError for a deeply nested list; they use regcore._validate.show now
    "schema_version 10**5000": {"schema_version": 10**5000},
    "schema_version -10**5000": {"schema_version": -(10**5000)},
    "kind 10**5000": _term(kind=10**5000),
    "role 10**5000": {"schema_version": 1, "weight_decay": [
        {"rate": 0.1, "select": {"roles": [10**5000]}}]},
    "ndim -10**5000": {"schema_version": 1, "weight_decay": [
        {"rate": 0.1, "select": {"ndim": [-(10**5000)]}}]},
    "scale_by_size 10**5000": _term(kind="group_lasso", coef=0.1, convention="sum",
                                    scale_by_size=10**5000),
    "convention 10**5000": _term(kind="l2", coef=0.1, convention=10**5000),
    "key 10**5000": {"schema_version": 1, 10**5000: 1},
    "kind nested 100000 deep": _term(kind=_nested(100_000)),
    "schema_version nested 100000 deep": {"schema_version": _nested(100_000)},
    "select name nested 100000 deep": {"schema_version": 1, "weight_decay": [
        {"rate": 0.1, "select": {"name": _nested(100_000)}}]},
}


@pytest.mark.parametrize("case", ESCAPES)
def test_inputs_that_once_escaped_are_a_spec_error(case):
    data = ESCAPES[case]
    with pytest.raises(SpecError) as info:
        from_dict(data)
    assert type(info.value) is SpecError and FIELD_PATH.match(str(info.value)), info.value
    assert len(str(info.value)) < 1000  # a value too long or too deep to print is described
    text = _dumps(data) if "nested" not in case else None
    if text is not None:
        with pytest.raises(SpecError):
            from_json(text)


def test_regex_warning_is_a_spec_error_where_warnings_are_errors():
    """re.compile warns (FutureWarning) on ``[[a]``; under ``-W error`` the warning is raised,
    and it comes out as SpecError too. Otherwise the regex loads, with the warning shown."""
    re.purge()  # a pattern in re's cache compiles without warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SpecError, match=r"^weight_decay\[0\]\.select\.name: invalid regular "
                                            r"expression '\[\[a\]': Possible nested set"):
            from_dict(_wd_name("[[a]"))
    re.purge()
    with pytest.warns(FutureWarning):
        assert from_dict(_wd_name("[[a]")).weight_decay[0].select.name == "[[a]"


@pytest.mark.parametrize(
    "make",
    [lambda n: _term(kind="l2", coef=0, convention="batch_mean", batch_size=n),
     lambda n: _term(kind="group_lasso", coef=0.1, convention="sum", axis=-n),
     lambda n: {"schema_version": 1, "weight_decay": [{"rate": 0.1, "select": {"ndim": [n]}}]}],
    ids=["batch_size", "axis", "ndim"],
)
def test_integers_in_a_spec_have_at_most_640_digits(make):
    """640 digits is the lowest int-to-str limit Python can be set to, so a spec that loads can
    always be written back, whatever the process's limit."""
    spec = from_dict(make(10**640 - 1))
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        assert from_json(to_json(spec)) == spec
    finally:
        sys.set_int_max_str_digits(limit)
    with pytest.raises(SpecError, match=r"has more than 640 digits, more than a spec can write"):
        from_dict(make(10**640))


@FUZZ
@given(near_specs())
@counted
def test_near_valid_specs(data):
    load(from_dict, data)
    text = _dumps(data)
    if text is not None:
        load(from_json, text)


def test_near_valid_specs_reach_both_outcomes():
    """The edits are not so wild that every input is rejected at the top level: one retyped
    value gives valid specs, rejections at the top and rejections deep inside a rule."""
    rng = random.Random(0)
    outcomes = set()
    for _ in range(300):
        data = copy.deepcopy(rng.choice(VALID_DICTS))
        container, key = rng.choice(_slots(data, []))
        container[key] = _retyped(container[key], rng.randrange(5))
        try:
            from_dict(data)
            outcomes.add("spec")
        except SpecError as exc:
            outcomes.add("deep" if re.match(r"^(penalties|weight_decay)\[\d+\]\.", str(exc))
                         else "shallow")
    assert outcomes == {"spec", "deep", "shallow"}


# -- JSON only: nothing in a spec's text is ever run -----------------------------------------------


class _RunsWhenUnpickled:
    """A pickle payload: unpickling it runs ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _attacks(sentinel: Path) -> dict[str, str | bytes]:
    """Texts that would create ``sentinel`` if the loader ran YAML tags, unpickled or
    evaluated them."""
    touch = f"touch {sentinel}"
    expression = f"__import__('os').system({touch!r})"
    attacks: dict[str, str | bytes] = {
        "yaml apply tag": f"!!python/object/apply:os.system [{touch!r}]",
        "yaml tag in a spec": ("schema_version: 1\npenalties:\n  - term: "
                               f"!!python/object/apply:os.system [{touch!r}]\n"),
        "yaml tag as a JSON string": json.dumps(
            {"schema_version": 1, "penalties": [{"term": {
                "kind": f"!!python/object/apply:os.system [{touch!r}]"}}]}),
        "python expression": expression,
        "python expression as the coefficient": json.dumps(_term(
            kind="l2", coef=expression, convention="sum")),
        "python expression as the kind": json.dumps(_term(kind=expression)),
        "python expression as the convention": json.dumps(_term(
            kind="l2", coef=0.1, convention=expression)),
        "python expression as schema_version": json.dumps({"schema_version": expression}),
        "python expression as a key": json.dumps({"schema_version": 1, expression: 1}),
    }
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        attacks[f"pickle protocol {protocol}"] = pickle.dumps(_RunsWhenUnpickled(touch), protocol)
    return attacks


@pytest.mark.skipif(os.name != "posix", reason="the payloads run `touch`")
def test_yaml_pickle_and_python_expressions_are_refused_and_never_run(tmp_path):
    sentinel = tmp_path / "ran"
    attacks = _attacks(sentinel)
    pickle.loads(attacks["pickle protocol 0"])  # the payload works: it runs when unpickled
    assert sentinel.exists()
    sentinel.unlink()
    for name, text in attacks.items():
        with pytest.raises(SpecError) as info:
            from_json(text)
        assert FIELD_PATH.match(str(info.value)), (name, str(info.value))
        assert not sentinel.exists(), f"{name} ran"


def test_code_in_a_regex_is_only_ever_a_regex(tmp_path):
    """A select.name holding Python code is a valid regex: the spec loads, resolves, round-trips
    and runs nothing."""
    sentinel = tmp_path / "ran"
    code = f"__import__('os').system('touch {sentinel}')"
    spec = from_json(json.dumps(_wd_name(code)))
    assert spec.weight_decay[0].select.name == code
    assert from_json(to_json(spec)) == spec
    with pytest.raises(SpecError, match="selects no parameter"):
        spec.resolve(ModelSpec((2, 1), None, "mse").params())
    assert not sentinel.exists()


def test_loading_a_spec_imports_no_code_running_deserializer():
    # marshal is left out: the import system itself loads it into every process
    code = ("import sys, regcore\n"
            "regcore.from_json('{\"schema_version\": 1}')\n"
            "for text in ('!!python/object/apply:os.system [\"true\"]', b'\\x80\\x04K\\x01.'):\n"
            "    try:\n"
            "        regcore.from_json(text)\n"
            "    except regcore.SpecError:\n"
            "        pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{sorted(UNSAFE_MODULES - {'marshal'})!r}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


# -- an AST scan of the core: no code-running deserializer, no eval --------------------------------

UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "pickletools", "marshal", "shelve", "dill",
                  "cloudpickle", "joblib", "jsonpickle", "yaml", "ruamel"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
ALLOWED = {
    ("export_support.py", "load_snippet", "exec"):
        "runs code regcore's own exporters wrote from a validated Spec (the conformance suite "
        "checks exported snippets); nothing in regcore calls it on loaded text",
    ("export_support.py", "load_snippet", "compile"): "the same line: exec(compile(...))",
}
LOADER_MODULES = ("serialize.py", "_validate.py", "selection.py", "spec.py", "terms.py",
                  "decay.py", "conventions.py", "errors.py")


def unsafe_uses(source: str) -> list[tuple[str, str, int]]:
    """``(enclosing function, what, line)`` for every import of an :data:`UNSAFE_MODULES` module
    and every call of an :data:`UNSAFE_CALLS` builtin — by name, through ``builtins.`` or
    ``__builtins__``, or fetched with ``getattr(..., "eval")``."""
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.Import):
            found.extend((function, alias.name, node.lineno) for alias in node.names
                         if alias.name.split(".")[0] in UNSAFE_MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                found.append((function, node.module, node.lineno))
            found.extend((function, alias.name, node.lineno) for alias in node.names
                         if node.module == "builtins" and alias.name in UNSAFE_CALLS)
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in UNSAFE_CALLS:
                found.append((function, f.id, node.lineno))
            elif (isinstance(f, ast.Attribute) and f.attr in UNSAFE_CALLS
                  and isinstance(f.value, ast.Name)
                  and f.value.id in ("builtins", "__builtins__")):
                found.append((function, f.attr, node.lineno))
            elif (isinstance(f, ast.Name) and f.id == "getattr" and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant)
                  and node.args[1].value in UNSAFE_CALLS):
                found.append((function, node.args[1].value, node.lineno))
            for arg in node.args:  # importlib.import_module("pickle"), __import__("yaml")
                if (isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                        and arg.value.split(".")[0] in UNSAFE_MODULES):
                    found.append((function, arg.value, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


@pytest.mark.parametrize(
    "source",
    ["import pickle", "import pickle as p", "from pickle import loads", "import yaml",
     "from yaml import safe_load", "import marshal", "import shelve", "import _pickle",
     "from ruamel.yaml import YAML", "import dill", "def f(s):\n    return eval(s)",
     "exec(code)", "compile(text, 'f', 'exec')", "__import__('os')", "builtins.eval(s)",
     "__builtins__.exec(s)", "getattr(builtins, 'eval')(s)", "from builtins import exec",
     "importlib.import_module('pickle')", "import_module('yaml.constructor')"],
)
def test_the_scan_catches(source):
    assert unsafe_uses(source)


@pytest.mark.parametrize(
    "source", ["import json", "re.compile(pattern)", "evaluate(x)", "json.loads(text)",
               "self.compile()", "import pickleball", "importlib.import_module(name)",
               "SpecError('yaml is not supported')"],
)
def test_the_scan_passes(source):
    assert not unsafe_uses(source)


def test_the_core_imports_no_unsafe_deserializer_and_calls_no_eval():
    """Every ``regcore/*.py``: no pickle/marshal/shelve/yaml... import anywhere, no
    eval/exec/compile/__import__ outside :data:`ALLOWED` (each with its reason, none stale), and
    none at all in the modules a spec is loaded by."""
    sources = {path.name: path.read_text(encoding="utf-8")
               for path in sorted((ROOT / "regcore").rglob("*.py"))}
    assert "serialize.py" in sources and len(sources) > 10
    seen = set()
    for name, source in sources.items():
        for function, what, line in unsafe_uses(source):
            key = (name, function, what)
            assert key in ALLOWED, f"regcore/{name}:{line}: {what} in {function}"
            assert name not in LOADER_MODULES, f"regcore/{name}:{line}: {what}"
            seen.add(key)
    assert seen == set(ALLOWED), f"stale allow-list entries: {set(ALLOWED) - seen}"
    callers = [name for name, source in sources.items()
               if name != "export_support.py" and "load_snippet" in source]
    assert not callers, f"regcore modules that run snippets: {callers}"
