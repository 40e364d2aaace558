"""Framework-free pieces every exporter shares, as Python source text.

An exporter (entry point group :data:`GROUP`, ``export(spec) -> str``) turns a spec into a
dependency-free snippet for one framework. The parts that do not depend on the framework are
written once here:

* :func:`header`: the comment block the snippet starts with, stating the spec in words: every
  term with its original convention and coefficients and the ``sum``-form coefficients the code
  uses, every decay rate, and every selection;
* :func:`data_source`: the spec's rules as literal data (``PENALTIES``, ``DECAY``), coefficients
  in the ``sum`` form as ``repr`` floats, which read back to the same double;
* :func:`selection_source`: the run-time selection (role, ``re.fullmatch`` on the dotted name,
  ``ndim``, ``min_ndim``) and resolution rules of :meth:`regcore.Spec.resolve`, raising
  ``ValueError`` where regcore raises :class:`regcore.SpecError`.

Each exporter adds its framework's parameter walk and one penalty function per term kind
(:func:`kinds` lists those a spec uses). Those functions are not written here, nor in the
exporter: they are the backend's live kernels (``penalties.py``: ``_<kind>(rule, w)``, ``rule``
being :func:`term_data`), copied as written by :func:`definitions`, with the constants they use
from regcore (:data:`regcore.ORTHOGONAL_EPSILON`) rendered from regcore's own values; so a fix to
a kernel lands in the backend and its snippets at once. Nothing here imports a framework, or
NumPy.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from regcore import activity
from regcore._version import __version__
from regcore.errors import SpecError
from regcore.selection import Select
from regcore.spec import Spec
from regcore.terms import ORTHOGONAL_EPSILON, TERMS, Term

GROUP = "regcore.exporters"
"""Entry point group of the exporters: ``name = "module:export"``, named as the backend whose
framework the snippets are written for."""

_BASE_FIELDS = {f.name for f in dataclasses.fields(Term)}

_FORMULAS: dict[str, Callable[[dict[str, object]], str]] = {
    "l2": lambda t: f"{t['coef']!r} * sum(w**2)",
    "l1": lambda t: f"{t['coef']!r} * sum(|w|)",
    "elastic_net": lambda t: f"{t['l1']!r} * sum(|w|) + {t['l2']!r} * sum(w**2)",
    "group_lasso": lambda t: (
        f"{t['coef']!r}{' * sqrt(group size)' if t['scale_by_size'] else ''} * sum over the "
        f"slices g along axis {t['axis']} of ||w_g||_2 (an all-zero group has subgradient 0)"
    ),
    "orthogonal": lambda t: (
        f"{t['coef']!r} * mean |cosine| between distinct {t['mode']} of w, each divided by "
        f"max(||v||, {ORTHOGONAL_EPSILON!r}) (Keras OrthogonalRegularizer)"
    ),
}
"""The penalty each term kind adds, in words, from its sum-form coefficients and options."""


def check_spec(spec: object) -> Spec:
    """``spec`` itself; anything but a :class:`regcore.Spec` is a :class:`regcore.SpecError`, and
    so is a spec with activity penalties, which no snippet writes."""
    if not isinstance(spec, Spec):
        raise SpecError(f"spec: expected a regcore.Spec, got {type(spec).__name__} {spec!r}")
    activity.refuse(spec.activity, "an exported snippet (penalties on parameters, decoupled "
                    "decay)", "it is not exported: apply it with PenaltyLoss(spec, model) in "
                    "torch (forward hooks) or apply_spec(spec, model) in Keras "
                    "(activity_regularizer)")
    return spec


def kinds(spec: Spec) -> tuple[str, ...]:
    """The term kinds ``spec`` uses, in :data:`regcore.TERMS` order."""
    used = {rule.term.kind for rule in spec.penalties}
    return tuple(kind for kind in TERMS if kind in used)


def term_data(term: Term) -> dict[str, object]:
    """``kind``, the ``sum``-form coefficients and the options (axis, mode...) of ``term``: the
    ``rule`` every backend's kernel ``_<kind>(rule, w)`` reads, live and in a snippet (where it is
    a literal of ``PENALTIES``)."""
    options = {name: getattr(term, name) for name in _options(type(term))}
    return {"kind": term.kind, **term.scaled(), **options}


_OPTIONS: dict[type[Term], tuple[str, ...]] = {}


def _options(cls: type[Term]) -> tuple[str, ...]:
    """The fields of a term class other than the convention's and the coefficients (the live
    kernels read :func:`term_data` on every call: the fields are listed once per class)."""
    if cls not in _OPTIONS:
        _OPTIONS[cls] = tuple(f.name for f in dataclasses.fields(cls)
                              if f.name not in _BASE_FIELDS and f.name not in cls.coefficients)
    return _OPTIONS[cls]


def term_structure(term: Term) -> tuple[object, ...]:
    """What a kernel's computation depends on besides the coefficients: the term's class and its
    options (:func:`term_data` less the coefficients). Terms of one structure compile to one
    graph when a backend passes the coefficients as inputs (:func:`term_kernel`'s ``coefs``)."""
    return (type(term), *((name, getattr(term, name)) for name in _options(type(term))))


def term_kernel(kernel: Callable[..., Any],
                prepare: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    """``kernel(rule, w)``, a backend's kernel on a term as data, as a function of the term
    itself: ``f(term, w, coefs=None) = kernel(term_data(term), prepare(w))`` (``prepare``: the
    backend's cast to the accumulation dtype, if it has its kernels do it), named as the term
    kind, with the kernel's docstring. ``coefs``, the values of ``term.scaled()`` in its order as
    the backend's arrays (the same numbers), replace the term's own: a compiled function then
    depends on :func:`term_structure` only and serves any coefficients."""

    def run(term: Term, w: Any, coefs: Any = None) -> Any:
        rule = term_data(term)
        if coefs is not None:
            rule.update(zip(term.scaled(), coefs, strict=True))
        return kernel(rule, w if prepare is None else prepare(w))

    run.__name__ = run.__qualname__ = kernel.__name__.lstrip("_")
    run.__doc__ = kernel.__doc__
    return run


def select_data(select: Select) -> dict[str, object]:
    """The criteria ``select`` sets (``roles``, ``name``, ``ndim``, ``min_ndim``)."""
    data = {"roles": select.roles, "name": select.name, "ndim": select.ndim,
            "min_ndim": select.min_ndim}
    return {key: value for key, value in data.items() if value is not None}


def describe_select(select: Select) -> str:
    """``select`` in words."""
    parts = []
    if select.roles is not None:
        parts.append(f"role {' or '.join(select.roles)}")
    if select.name is not None:
        shown = select.name if select.name.isprintable() else repr(select.name)
        parts.append(f"the whole dotted name matching the regex {shown}")
    if select.ndim is not None:
        parts.append(f"ndim {' or '.join(map(str, select.ndim))}")
    if select.min_ndim is not None:
        parts.append(f"ndim >= {select.min_ndim}")
    return "parameters with " + " and ".join(parts) if parts else "every parameter"


def header(spec: Spec, *, module: str, framework: str, contract: Iterable[str]) -> str:
    """The comment block a snippet starts with: provenance, the spec in words, the contract."""
    lines = [
        *textwrap.wrap(f"Exported by regcore {__version__} ({module}): plain {framework}, no "
                       "regcore import.", width=98),
        "",
        "The spec in words (the code uses the canonical sum-form coefficients):",
    ]
    for i, rule in enumerate(spec.penalties):
        data = term_data(rule.term)
        scaled = ", ".join(f"{k}={v!r}" for k, v in rule.term.scaled().items())
        lines += [f"  penalties[{i}]: {rule.term!r}",
                  *_wrap(f"adds {_FORMULAS[rule.term.kind](data)} [sum form: {scaled}]"),
                  *_wrap(f"on {describe_select(rule.select)}")]
    for i, item in enumerate(spec.weight_decay):
        lines += [f"  weight_decay[{i}]: DecoupledWeightDecay({item.rate!r})",
                  *_wrap(f"p <- p * (1 - lr * {item.rate!r}) before each update, not part of "
                         "the penalty"),
                  *_wrap(f"on {describe_select(item.select)}")]
    if not spec.penalties and not spec.weight_decay:
        lines.append("  (empty: no penalty, no decay)")
    lines += [
        "A rule that selects no parameter, or gives a parameter a second term of one kind, or a",
        "term on a parameter it is undefined for, raises ValueError when the code runs.",
        "",
        *contract,
    ]
    return "\n".join(f"# {line}".rstrip() for line in lines) + "\n"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=96, initial_indent="    ", subsequent_indent="      ",
                         break_long_words=False, break_on_hyphens=False)


def data_source(spec: Spec) -> str:
    """``PENALTIES`` and ``DECAY``: the spec's rules as literal data."""
    out = ["PENALTIES = ("]
    for i, rule in enumerate(spec.penalties):
        out += [f"    # penalties[{i}]: {rule.term!r}",
                f"    {{{_items(term_data(rule.term))},",
                f'     "select": {_literal(select_data(rule.select))}}},']
    out += [")", "DECAY = ("]
    for i, item in enumerate(spec.weight_decay):
        out += [f"    # weight_decay[{i}]: DecoupledWeightDecay({item.rate!r})",
                f'    {{"rate": {item.rate!r}, "select": {_literal(select_data(item.select))}}},']
    out.append(")")
    return "\n".join(out) + "\n"


def _items(data: dict[str, object]) -> str:
    return ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in data.items())


def _literal(value: object) -> str:
    """A Python literal for ``value``: strings double-quoted (``json.dumps`` writes only escapes
    Python reads the same), floats as ``repr`` (which reads back to the same double)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_literal, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + _items(value) + "}"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    raise TypeError(f"no literal for {type(value).__name__} {value!r}")


_SELECTION = '''\
def _describe(select):
    parts = [f"{key}={value!r}" for key, value in select.items()]
    return f"Select({', '.join(parts)})"


def _matches(select, name, role, shape):
    """Every criterion given holds: roles (any of), name (re.fullmatch), ndim (any of),
    min_ndim; a criterion left out matches everything."""
    return (("roles" not in select or role in select["roles"])
            and ("name" not in select or re.fullmatch(select["name"], name) is not None)
            and ("ndim" not in select or len(shape) in select["ndim"])
            and ("min_ndim" not in select or len(shape) >= select["min_ndim"]))


def _select(where, select, infos):
    """Names of the parameters ``select`` matches, in order; ValueError if there are none."""
    chosen = [name for name, role, shape in infos if _matches(select, name, role, shape)]
    if not chosen:
        available = ", ".join(f"{n} ({r}, ndim {len(s)})" for n, r, s in infos) or "none"
        raise ValueError(
            f"{where}: {_describe(select)} selects no parameter; available: {available}")
    return chosen
{check_shape}

def _penalty_plan(infos, noncanonical=None):
    """(name, rule) pairs in rule order; ``infos`` are (name, role, canonical shape) triples,
    ``noncanonical`` {name: why} for the parameters with no canonical layout."""
    {shapes}plan, first = [], {}
    for i, rule in enumerate(PENALTIES):
        for name in _select(f"penalties[{i}]", rule["select"], infos):
            {layout_call}{check_call}other = first.setdefault((name, rule["kind"]), i)
            if other != i:
                raise ValueError(
                    f"penalties[{i}]: parameter {name!r} already gets a {rule['kind']} term "
                    f"from penalties[{other}]; narrow one selection or merge the rules")
            plan.append((name, rule))
    return plan


def _decay_plan(infos):
    """{name: rate} of the decoupled weight decay."""
    rates, owner = {}, {}
    for i, item in enumerate(DECAY):
        for name in _select(f"weight_decay[{i}]", item["select"], infos):
            if name in owner:
                raise ValueError(f"weight_decay[{i}]: parameter {name!r} is already decayed "
                                 f"by weight_decay[{owner[name]}]")
            owner[name], rates[name] = i, item["rate"]
    return rates
'''

_SHAPE_CHECKS = {
    "group_lasso": '''\
    if rule["kind"] == "group_lasso" and not -len(shape) <= rule["axis"] < len(shape):
        raise ValueError(f"group_lasso.axis: axis {rule['axis']} is out of range for parameter "
                         f"{name!r} of shape {shape}")
''',
    "orthogonal": '''\
    if rule["kind"] == "orthogonal":
        if len(shape) != 2:
            raise ValueError(f"orthogonal: parameter {name!r} has shape {shape}; needs a 2-D "
                             "parameter")
        size = shape[0] if rule["mode"] == "rows" else shape[1]
        if size < 2:
            raise ValueError(f"orthogonal.mode: parameter {name!r} of shape {shape} has {size} "
                             f"{rule['mode']}; needs at least 2")
''',
}


def selection_source(spec: Spec) -> str:
    """The run-time selection and resolution functions (they read ``PENALTIES``/``DECAY``), with
    shape checks for the term kinds ``spec`` uses that are undefined for some shapes."""
    checks = [_SHAPE_CHECKS[kind] for kind in kinds(spec) if kind in _SHAPE_CHECKS]
    check_shape = ("\n\ndef _check_shape(rule, name, shape):\n"
                   '    """ValueError where the term is undefined for a parameter of `shape`."""\n'
                   + "".join(checks)) if checks else ""
    shapes = "shapes = {name: shape for name, _, shape in infos}\n    " if checks else ""
    check_call = "_check_shape(rule, name, shapes[name])\n            " if checks else ""
    layout = [kind for kind in kinds(spec) if TERMS[kind].layout_dependent]
    layout_call = _LAYOUT_CHECK.replace("{kinds}", repr(tuple(layout))) if layout else ""
    return (_SELECTION.replace("{check_shape}", check_shape).replace("{shapes}", shapes)
            .replace("{check_call}", check_call).replace("{layout_call}", layout_call))


# Spec.resolve's refusal of a layout-dependent term on a parameter with no canonical layout.
_LAYOUT_CHECK = """\
if rule["kind"] in {kinds} and (noncanonical or {}).get(name):
                raise ValueError(
                    f"penalties[{i}]: {rule['kind']} on {name!r}: the parameter has no canonical "
                    f"(fan_in, fan_out) layout ({noncanonical[name]}), and this term depends on "
                    "which axis holds the rows")
            """


def dispatch(spec: Spec) -> str:
    """``_KERNELS``: term kind -> the snippet's function ``_<kind>``, for the kinds ``spec``
    uses."""
    items = [f'"{kind}": _{kind}' for kind in kinds(spec)]
    line = f"_KERNELS = {{{', '.join(items)}}}"
    if len(line) <= 100:
        return line + "\n"
    return "_KERNELS = {\n" + "".join(f"    {item},\n" for item in items) + "}\n"


def assemble(header_text: str, *parts: str) -> str:
    """The header, a blank line, then the source parts joined by two blank lines (PEP 8's
    between top-level definitions)."""
    body = "\n\n\n".join(part.strip("\n") for part in parts if part.strip())
    return f"{header_text.rstrip()}\n\n{body}\n"


def definitions(path: str | Path, names: Iterable[str]) -> str:
    """The source text, as written, of the top-level definitions ``names`` of the Python file
    ``path`` and of every top-level definition they use, in the file's order, separated by two
    blank lines: functions with their decorators (and the functions one of them decorates, such
    as ``@_abs0.defjvp``), classes, assignments. A name the file imports from ``regcore`` is a
    constant: it comes first, as ``NAME = <repr of regcore's value>``. The file is parsed, never
    imported, so an exporter that reads its backend's kernels imports no framework.

    Raises :class:`ValueError` for a name the file does not define, and :class:`TypeError` for
    a regcore name used that is not a number or a string."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines, tree = text.splitlines(), ast.parse(text, str(path))
    defined: dict[str, ast.stmt] = {}
    for node in tree.body:
        for name in _defined_names(node):
            defined.setdefault(name, node)
    from_regcore = {alias.asname or alias.name: (node.module, alias.name)
                    for node in tree.body if isinstance(node, ast.ImportFrom)
                    and node.module and node.module.partition(".")[0] == "regcore"
                    for alias in node.names}
    names = list(names)
    missing = [name for name in names if name not in defined]
    if missing:
        raise ValueError(f"{path.name}: no top-level definition of {', '.join(missing)}")
    chosen: dict[str, ast.stmt] = {}  # every name a chosen node defines -> the node
    constants: set[str] = set()
    todo = set(names)
    while todo:
        for name in todo:
            if name in from_regcore:
                constants.add(name)
            else:
                chosen.update(dict.fromkeys(_defined_names(defined[name]), defined[name]))
        used = {n for node in chosen.values() for n in _used_names(node)}
        decorated = {name for node in tree.body
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                     and any(_used_names(d) & chosen.keys() for d in node.decorator_list)
                     for name in _defined_names(node)}
        todo = {n for n in used | decorated if n not in chosen and n not in constants
                and (n in defined or n in from_regcore)}
    out = "".join(f"{name} = {_constant(*from_regcore[name])}\n" for name in sorted(constants))
    assigned = bool(out)
    for node in sorted({id(n): n for n in chosen.values()}.values(), key=lambda n: n.lineno):
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        is_assignment = isinstance(node, ast.Assign | ast.AnnAssign)
        # consecutive assignments one a line, as a module writes its constants; PEP 8's two
        # blank lines around each definition
        out += ("" if not out or assigned and is_assignment else "\n\n")
        out += "\n".join(lines[start - 1:node.end_lineno]) + "\n"
        assigned = is_assignment
    return out


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _constant(module: str, name: str) -> str:
    value = getattr(importlib.import_module(module), name)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{module}.{name}: a kernel may use regcore's numbers and strings only, "
                        f"not {type(value).__name__}")
    return repr(value)


def snippet(spec: object, *, module: str, framework: str, contract: Iterable[str], imports: str,
            runtime: str, helpers: Iterable[str] = (), kernels: str | Path | None = None) -> str:
    """A whole snippet for ``spec`` (checked by :func:`check_spec`), written by the exporter
    ``module``: the :func:`header`; ``import re`` (the selection's) and the framework's
    ``imports``, with the rules as data; the run-time selection; the backend's kernels, copied
    by :func:`definitions` from ``kernels`` (by default the ``penalties.py`` beside ``module``):
    ``_<kind>`` for each kind the spec uses and ``_accumulate``, the cast to the accumulation
    dtype the runtime calls; the ``_KERNELS`` dispatch; then ``helpers`` (more source) and the
    ``runtime`` (the framework's parameter walk and the public functions)."""
    spec = check_spec(spec)
    if kernels is None:
        kernels = Path(str(importlib.import_module(module).__file__)).with_name("penalties.py")
    return assemble(
        header(spec, module=module, framework=framework, contract=contract),
        "import re\n\n" + imports + "\n" + data_source(spec),
        selection_source(spec),
        definitions(kernels, ["_accumulate", *(f"_{kind}" for kind in kinds(spec))]),
        dispatch(spec),
        *helpers,
        runtime,
    )


def load_snippet(code: str) -> dict[str, object]:
    """The namespace after running ``code`` (a snippet) in a fresh one, as a module would."""
    namespace: dict[str, object] = {"__name__": "regcore_exported_snippet"}
    exec(compile(code, "<regcore exported snippet>", "exec"), namespace)
    return namespace
