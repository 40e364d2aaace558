"""The docs say what is true: every code block in README.md and docs/*.md runs in a test or says
it is a fragment; every ``test_...`` the bad-input table cites is defined; docs/mutations.md lists
every deliberately broken backend the suite is tested on; docs/spec-format.md documents every
field of the spec's JSON form and its errors.

The code-block rule. A fenced block is one of:

* **tested**: the line ``<!-- tested: tests/<file>.py::<test> -->`` stands somewhere between the
  previous block and this one (it marks the next block below it). The test named reads the block
  with :func:`doc_blocks` (``doc_blocks("README.md", "<test>")``), runs it and checks its numbers;
  a test that lives in another nox session (torch, tf, jax) skips, with the reason, where its
  framework is not installed.
* **a fragment**: the block's first line is a comment ``# Fragment: <why it does not run alone>``,
  visible to the reader (what it needs, or which alternatives it shows).

A block may be both (alternatives that a test still runs). A block that is neither fails
:func:`test_every_code_block_runs_in_a_test_or_says_it_is_a_fragment`; :data:`UNMARKED` lists the
blocks of README sections this change does not own, each with its reason, and an entry that no
longer matches an unmarked block fails too, so the list cannot rot.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import regcore

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
TESTED = re.compile(r"<!-- tested: (tests/[\w/]+\.py)::(test_\w+) -->")
FRAGMENT = re.compile(r"(?:#|//) Fragment: \S")

UNMARKED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a doc."""

    doc: str                 # "README.md", "docs/path.md"
    line: int                # the opening fence's line, 1-based
    lang: str                # "python", "sh", "json", ...
    code: str
    tested: tuple[str, str] | None   # (test file, test name) from its marker
    fragment: bool           # first line "# Fragment: ..."

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: str, root: Path = ROOT) -> list[Block]:
    """Every fenced block of ``doc`` (a path relative to ``root``), with its marker."""
    out, between, fence = [], [], None
    for number, line in enumerate((root / doc).read_text().splitlines(), 1):
        if fence is None:
            if m := re.fullmatch(r"```(\w*)", line):
                markers = [m2 for text in between for m2 in TESTED.finditer(text)]
                assert len(markers) <= 1, f"{doc}:{number}: two markers for one block"
                fence, start, lang, body = m, number, m.group(1), []
                tested = markers[0].groups() if markers else None
            else:
                assert "<!-- tested:" not in line or TESTED.search(line), \
                    f"{doc}:{number}: malformed marker {line!r}"
                between.append(line)
        elif line == "```":
            code = "\n".join(body) + "\n"
            out.append(Block(doc, start, lang, code, tested,
                             bool(body) and FRAGMENT.match(body[0]) is not None))
            fence, between = None, []
        else:
            body.append(line)
    assert fence is None, f"{doc}: unclosed code block"
    return out


def doc_blocks(doc: str, test: str) -> list[Block]:
    """The blocks of ``doc`` whose marker names ``test`` (a test function's name), in order."""
    found = [b for b in blocks(doc) if b.tested and b.tested[1] == test]
    assert found, f"no block in {doc} is marked <!-- tested: ...::{test} -->"
    return found


def run_python(block: Block, namespace: dict | None = None) -> tuple[dict, list[str]]:
    """Execute a python block (in ``namespace``, a fresh one by default); its namespace and the
    lines it printed, after checking them against the block's own comments:
    :func:`expected_prints`."""
    namespace = {} if namespace is None else namespace
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.code, block.where, "exec"), namespace)
    printed = out.getvalue().splitlines()
    check_printed(block, printed)
    return namespace, printed


def expected_prints(code: str) -> list[str]:
    """What a block says it prints: the comment after each top-level ``print(...)`` statement."""
    tree = ast.parse(code)
    lines = code.splitlines()
    expected = []
    for node in tree.body:
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "print"):
            comment = lines[node.end_lineno - 1].partition("#")[2].strip()
            assert comment, f"print on line {node.lineno} says nothing about what it prints"
            expected.append(comment)
    return expected


NUMBER = re.compile(r"-?\d+(?:\.(\d+))?(?:e-?\d+)?")


def check_printed(block: Block, printed: list[str]) -> None:
    """Each printed line is what its print's comment says: the same text, and every number equal
    to the number shown within one unit of its last shown decimal."""
    expected = expected_prints(block.code)
    assert len(printed) == len(expected), (block.where, printed, expected)
    for got, want in zip(printed, expected, strict=True):
        assert NUMBER.sub("N", got) == NUMBER.sub("N", want), (block.where, got, want)
        for g, w in zip(NUMBER.finditer(got), NUMBER.finditer(want), strict=True):
            step = 10.0 ** -len(w.group(1) or "") if "e" not in w.group(0) else 0.0
            assert math.isclose(float(g.group(0)), float(w.group(0)), rel_tol=1e-12,
                                abs_tol=step), (block.where, got, want)


# --- the code-block rule -------------------------------------------------------------------


def unmarked_blocks(docs: tuple[str, ...], root: Path = ROOT) -> tuple[list[str], set]:
    """Blocks neither tested nor fragments, outside :data:`UNMARKED`; and the entries of
    :data:`UNMARKED` that matched one."""
    unmarked, seen = [], set()
    for doc in docs:
        for b in blocks(doc, root):
            key = (doc, b.code.splitlines()[0] if b.code.strip() else "")
            if b.tested or b.fragment:
                continue
            if key in UNMARKED:
                seen.add(key)
                continue
            unmarked.append(f"{b.where} ```{b.lang} {key[1][:60]!r}")
    return unmarked, seen


def test_every_code_block_runs_in_a_test_or_says_it_is_a_fragment():
    unmarked, seen = unmarked_blocks(DOCS)
    assert not unmarked, (
        "code blocks neither marked <!-- tested: tests/...::test_... --> before them nor starting "
        "with '# Fragment: ...':\n" + "\n".join(unmarked))
    stale = set(UNMARKED) - seen
    assert not stale, f"UNMARKED entries that match no unmarked block (remove them): {stale}"


def test_tested_markers_name_tests_that_read_their_doc():
    """A marker names a test that exists and reads that doc: a block cannot claim a test that does
    not run it."""
    for doc in DOCS:
        for b in blocks(doc):
            if not b.tested:
                continue
            path, name = b.tested
            source = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
            assert re.search(rf"^def {name}\(", source, re.M), f"{b.where}: no {path}::{name}"
            assert Path(doc).name in source, f"{b.where}: {path} never reads {doc}"


# --- bad input and mutations ---------------------------------------------------------------


def test_bad_input_table_cites_existing_tests():
    cited = set(re.findall(r"::(test_\w+)", (ROOT / "docs" / "bad-input.md").read_text()))
    assert len(cited) >= 15
    defined = {m for path in [*ROOT.joinpath("tests").rglob("*.py"),
                              *ROOT.joinpath("conformance").glob("*.py"),
                              *ROOT.joinpath("external", "regcore-jax", "tests").glob("*.py")]
               for m in re.findall(r"^def (test_\w+)", path.read_text(), re.M)}
    assert cited <= defined, sorted(cited - defined)


def _mutant_cases() -> list[tuple[str, str, str]]:
    """``MUTANT_CASES`` from tests/test_plugin.py, read as a literal (no import of the module)."""
    tree = ast.parse((ROOT / "tests" / "test_plugin.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["MUTANT_CASES"]:
            return ast.literal_eval(node.value)
    raise AssertionError("tests/test_plugin.py defines no MUTANT_CASES")


def test_every_mutant_is_documented_and_exercised():
    """Every class in tests/broken_backends.py (torch-based ones too, built in a function) has a
    row in docs/mutations.md and a case the suite must fail in test_plugin.py; every case's
    selection and failing check are in its row; the page names no class that does not exist."""
    classes = {node.name for node in ast.walk(ast.parse(
        (ROOT / "tests" / "broken_backends.py").read_text())) if isinstance(node, ast.ClassDef)}
    assert len(classes) >= 13
    rows = {m.group(1): m.group(0) for m in re.finditer(
        r"^\| `(\w+)` \|.*$", (ROOT / "docs" / "mutations.md").read_text(), re.M)}
    assert set(rows) == classes, (sorted(classes - set(rows)), sorted(set(rows) - classes))
    cases = _mutant_cases()
    exercised = {backend.removeprefix("tests.broken_backends:") for backend, _, _ in cases}
    assert exercised == classes, (sorted(classes - exercised), sorted(exercised - classes))
    for backend, selection, check in cases:
        row = rows[backend.removeprefix("tests.broken_backends:")]
        assert f"`{check}` (`{selection}`)" in row, (backend, selection, check)


def test_the_rule_reports_an_unmarked_block_and_accepts_marked_ones(tmp_path):
    (tmp_path / "doc.md").write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- tested: tests/t.py::test_x -->\nprose\n\n"
        "```sh\nls\n```\n```python\n# Fragment: needs y\nprint(y)\n```\n")
    found = blocks("doc.md", tmp_path)
    assert [(b.line, b.tested, b.fragment) for b in found] == [
        (3, None, False), (10, ("tests/t.py", "test_x"), False), (13, None, True)]
    unmarked, _ = unmarked_blocks(("doc.md",), tmp_path)
    assert unmarked == ["doc.md:3 ```python 'x = 1'"]


def test_a_print_comment_is_checked_to_its_last_digit():
    block = Block("doc.md", 1, "python", "print(0.12344)   # 0.1234\nprint('a', 2)  # a 2\n",
                  None, False)
    check_printed(block, ["0.12344", "a 2"])
    with pytest.raises(AssertionError):
        check_printed(block, ["0.1236", "a 2"])
    with pytest.raises(AssertionError):
        check_printed(block, ["0.1234", "b 2"])


# --- docs/adding-a-backend.md: its excerpts are the files --------------------------------


def test_backend_guide_excerpts_are_in_the_files(tmp_path):
    """The guide's pyproject excerpt is lines of external/regcore-jax/pyproject.toml, and its
    expectations file is one the suite loads, with the three kinds and their reasons."""
    from regcore_conformance import expectations

    pyproject, expect = doc_blocks("docs/adding-a-backend.md",
                                   "test_backend_guide_excerpts_are_in_the_files")
    real = set((ROOT / "external" / "regcore-jax" / "pyproject.toml").read_text().splitlines())
    assert pyproject.lang == "toml" and expect.lang == "toml"
    missing = [line for line in pyproject.code.splitlines() if line and line not in real]
    assert not missing, missing
    path = tmp_path / "expect.toml"
    path.write_text(expect.code)
    loaded = expectations.load(path)
    assert [(e.kind, e.factor) for e in loaded.entries] == [
        ("skip", 1.0), ("xfail", 1.0), ("tolerance", 4.0)]
    assert all(e.reason for e in loaded.entries)


# --- docs/spec-format.md -----------------------------------------------------------------

SPEC_FORMAT = "docs/spec-format.md"


def test_spec_format_example_round_trips():
    """The example JSON reads into the spec the Python block builds, writes back to the same
    JSON, and resolves on the MLP as the page says."""
    text, python = doc_blocks(SPEC_FORMAT, "test_spec_format_example_round_trips")
    spec = regcore.from_json(text.code)
    ns, _ = run_python(python)
    assert spec == ns["spec"]
    assert regcore.to_dict(spec) == json.loads(text.code)  # every field written as in the file
    assert regcore.from_json(regcore.to_json(spec)) == spec
    plan = ns["plan"]
    assert sorted((a.param, a.term.kind) for a in plan.penalties) == [
        ("dense_0.kernel", "group_lasso"), ("dense_0.kernel", "l1"), ("dense_0.kernel", "l2"),
        ("dense_1.kernel", "elastic_net"), ("dense_1.kernel", "l2"),
        ("dense_1.kernel", "orthogonal")]
    assert plan.decay == {"dense_0.bias": 1e-4, "dense_1.bias": 1e-4}


def test_spec_format_errors_are_the_ones_raised():
    rows = re.findall(r"^\| `(\{.*\})` \| `(.*)` \|$", (ROOT / SPEC_FORMAT).read_text(), re.M)
    assert len(rows) >= 12
    for text, message in rows:
        with pytest.raises(regcore.SpecError) as raised:
            regcore.from_json(text)
        assert str(raised.value) == message, text


# Fields that exist in the code but that someone else is documenting; an entry whose field the
# page documents is stale and fails.
UNDOCUMENTED_FIELDS: dict[str, str] = {}


def _documented(name: str, text: str) -> bool:
    return f"`{name}`" in text


def test_spec_format_documents_every_field():
    """Every key the loader accepts, every term kind, convention, data loss and role is named on
    the page: a field added to the spec fails here until it is documented."""
    import dataclasses

    from regcore import serialize
    from regcore.conventions import CONVENTIONS, DATA_LOSSES
    from regcore.selection import ROLES
    from regcore.terms import TERMS

    text = (ROOT / SPEC_FORMAT).read_text()
    names = {"schema_version", "penalties", "weight_decay", "term", "select", "rate",
             *CONVENTIONS, *DATA_LOSSES, *ROLES, *TERMS}
    names |= {f.name for cls in TERMS.values() for f in dataclasses.fields(cls)}
    names |= {f.name for f in dataclasses.fields(regcore.Select)}
    names |= {f.name for f in dataclasses.fields(regcore.DecoupledWeightDecay)}
    names |= {"activity", *(f.name for f in dataclasses.fields(regcore.Activity))}
    missing = sorted(n for n in names if not _documented(n, text) and n not in UNDOCUMENTED_FIELDS)
    assert not missing, f"fields not documented in {SPEC_FORMAT}: {missing}"
    stale = sorted(n for n in UNDOCUMENTED_FIELDS if _documented(n, text))
    assert not stale, f"UNDOCUMENTED_FIELDS entries now documented (remove them): {stale}"
    assert f'"schema_version": {serialize.SCHEMA_VERSION}' in text


PER_MODEL = {"PenaltyLoss", "GradientPenalty", "build_optimizer", "param_groups", "InPlacePenalty",
             "DecoupledDecay", "apply_spec", "penalty"}


def test_no_example_builds_its_penalty_inside_the_training_loop():
    """Building ``PenaltyLoss(spec, model)`` resolves the spec against the model: inside the loop
    it costs more than the penalty itself (3.7× the step, issue 17). No python block builds a
    translation in a loop body or calls one as it builds it (``PenaltyLoss(spec, model)()``)."""
    for doc in DOCS:
        for b in blocks(doc):
            if b.lang != "python" or (doc, b.code.splitlines()[0]) in UNMARKED:
                continue
            for node in ast.walk(ast.parse(b.code)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Call):
                    inner = node.func.func
                    name = inner.id if isinstance(inner, ast.Name) else getattr(inner, "attr", "")
                    assert name not in PER_MODEL, \
                        f"{b.where}: {name}(...)() builds it for one use (line {node.lineno})"
            for loop in ast.walk(ast.parse(b.code)):
                if not isinstance(loop, (ast.For, ast.While)):
                    continue
                for node in ast.walk(loop):
                    if isinstance(node, ast.Call):
                        f = node.func
                        name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
                        assert name not in PER_MODEL or name == "penalty" and not node.args, \
                            f"{b.where}: {name}(...) built inside a loop (line {node.lineno})"
