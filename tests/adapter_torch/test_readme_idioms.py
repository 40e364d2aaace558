"""The README's torch examples, in the ``torch`` nox session: the recipe and its two
alternatives run and train to the same parameters; docs/path.md's "From Python" example runs;
every row of the idiom table names conformance checks that passed.

The table's check reads the report the session's conformance run just wrote (the session runs
this file after the suite); skipped when no torch report exists. Blocks are found by their
``<!-- tested: ... -->`` markers (tests/test_docs.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.test_docs import doc_blocks, run_python

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "reports" / "conformance-torch.json"


def _rows() -> list[tuple[str, list[str], list[str]]]:
    text = (ROOT / "README.md").read_text()
    table = re.search(r"\| torch idiom \|.*?\n\n", text, re.S).group(0)
    rows = []
    for line in filter(None, table.splitlines()[2:]):
        idiom, *_, backing = [cell.strip() for cell in line.strip("|").split(" | ")]
        checks = re.findall(r"`(native_[\w{},*]+)`", backing)
        specs = re.findall(r"\(`(\w+)`\)", backing)
        if checks:
            rows.append((idiom, checks, specs))
    return rows


def _pattern(check: str) -> re.Pattern:
    check = re.sub(r"\{([\w,]+)\}", lambda m: "(" + m.group(1).replace(",", "|") + ")", check)
    return re.compile(check.replace("*", r"\w+") + ":")


@pytest.mark.parametrize(("idiom", "checks", "specs"), _rows(), ids=lambda v: str(v)[:40])
def test_idiom_row_is_backed_by_passing_checks(idiom, checks, specs):
    if not REPORT.exists():
        pytest.skip(f"no torch conformance report at {REPORT} (run nox -s torch)")
    records = json.loads(REPORT.read_text())["records"]
    assert specs, f"row {idiom!r} names no spec"
    for check in checks:
        for spec in specs:
            found = [r for r in records
                     if _pattern(check).match(r["check"]) and r["case"] == spec]
            assert found, f"{idiom}: no {check} record for spec {spec}"
            assert all(r["outcome"] == "pass" for r in found), f"{idiom}: {check} {spec} failed"


def test_readme_torch_recipe_and_its_alternatives():
    """The recipe prints what it says, its penalty is ``0.01·Σw²`` over the two kernels; each
    alternative, run on the recipe's setup in place of its loop, ends at the recipe's parameters
    (float32 rounding apart: the three add the same gradient in different orders)."""
    torch = pytest.importorskip("torch")
    recipe, *alternatives = doc_blocks("README.md", "test_readme_torch_recipe_and_its_alternatives")
    assert len(alternatives) == 2 and all(b.fragment for b in alternatives)
    ns, _ = run_python(recipe)
    model = ns["model"]
    kernels = [model[0].weight, model[2].weight]
    with torch.no_grad():
        expected = 0.01 * sum(float(k.double().square().sum()) for k in kernels)
    assert abs(ns["penalty"]().item() - expected) <= 1e-6 * expected
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    setup, sep, _ = recipe.code.partition("\npenalty = PenaltyLoss(spec, model)\n")
    assert sep, "the recipe builds PenaltyLoss on its own line after the setup"
    for alternative in alternatives:
        alt_ns: dict = {}
        exec(compile(setup, recipe.where, "exec"), alt_ns)
        run_python(alternative, alt_ns)
        for name, value in alt_ns["model"].state_dict().items():
            torch.testing.assert_close(value, trained[name], rtol=1e-5, atol=1e-6,
                                       msg=f"{alternative.where}: {name}")


def test_path_doc_from_python_runs(tmp_path, monkeypatch):
    """docs/path.md's "From Python" block, as written, on a 1-value grid (the default 21 take a
    minute on the CPU): it runs k-fold on torch, chooses, and saves both plots."""
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    import regcore_apps.path

    full = regcore_apps.path.default_grid
    monkeypatch.setattr(regcore_apps.path, "default_grid", lambda spec: full(spec)[:1])
    monkeypatch.chdir(tmp_path)
    (block,) = doc_blocks("docs/path.md", "test_path_doc_from_python_runs")
    ns, _ = run_python(block)
    result = ns["result"]
    assert result["choice"]["1se"]["value"] in result["grid"]
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "loss.png", "loss.svg", "coefficients.png", "coefficients.svg"}
