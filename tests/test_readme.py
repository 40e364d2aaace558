"""The README's NumPy examples run and print what they say, and CI runs the README's quickstart
commands. Blocks are found by their ``<!-- tested: ... -->`` markers (tests/test_docs.py); the
torch and Keras examples run in their own sessions (tests/adapter_torch/test_readme_idioms.py,
tests/adapter_tf/test_readme_keras.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tests.test_docs import doc_blocks, run_python

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_example_runs():
    """The Example converts, resolves, evaluates and round-trips; its penalty value is Keras's
    ``0.01·Σw²`` on both kernels plus the orthogonal term on ``dense_0.kernel``, computed here."""
    (block,) = doc_blocks("README.md", "test_readme_example_runs")
    ns, printed = run_python(block)
    assert printed[0] == "0.02"
    assert ns["regcore"].from_json(ns["text"]) == ns["spec"]
    params = ns["params"]
    l2 = 0.01 * sum(np.sum(params[k] ** 2) for k in ("dense_0.kernel", "dense_1.kernel"))
    rows = params["dense_0.kernel"]
    v = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-7)
    gram = np.abs(v @ v.T)
    s = len(rows)
    orthogonal = 0.1 * 0.5 * (gram.sum() - np.trace(gram)) / (s * (s - 1) / 2)
    assert np.isclose(ns["value"], l2 + orthogonal, rtol=1e-12)
    for name in ("dense_0.bias", "dense_1.bias"):  # the default selection: kernels only
        assert not np.any(ns["grads"][name])
    assert np.allclose(ns["grads"]["dense_1.kernel"], 0.02 * params["dense_1.kernel"], rtol=1e-12)


def test_readme_numpy_example_is_ridge():
    """``InPlacePenalty.sgd_step_`` trains the by-hand linear regression to the closed-form ridge
    solution of ``mean(r²) + 0.1·Σw²`` with an unpenalized intercept."""
    (block,) = doc_blocks("README.md", "test_readme_numpy_example_is_ridge")
    ns, _ = run_python(block)
    x, y, lam = ns["x"], ns["y"], 0.1
    n = len(x)
    z = np.hstack([x, np.ones((n, 1))])
    reg = np.diag([lam] * 4 + [0.0])
    solution = np.linalg.solve(z.T @ z / n + reg, z.T @ y / n)  # ∇(mean r² + λΣw²) = 0
    assert np.allclose(ns["params"]["w"], solution[:4], rtol=0, atol=1e-10)
    assert np.allclose(ns["params"]["b"], solution[4], rtol=0, atol=1e-10)
    assert np.isclose(ns["penalty"].value(ns["params"]), lam * np.sum(solution[:4] ** 2),
                      rtol=1e-8)


def test_ci_runs_the_readme_quickstart_commands():
    block = re.search(r"## Quickstart.*?```sh\n(.*?)```", README, re.S).group(1)
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    tests_command = commands[1]
    assert tests_command.endswith("nox -s tests") and tests_command in ci
    main = (".venv/bin/nox -s numpy torch tf jax array_api-strict array_api-numpy array_api-torch "
            "keras-jax keras-torch distributed path report")
    assert commands[0].endswith(main) and main in ci


def _markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A GitHub markdown table; the first column in code font, ``|`` escaped in every cell."""
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |"

    body = [line((f"`{row[0]}`", *row[1:])) for row in rows]
    return "\n".join([line(header), "|" + "---|" * len(header), *body])


def test_readme_conventions_table_is_rendered_from_the_conventions():
    """The README's table of scaling conventions is ``regcore.conventions.table_rows()`` as
    markdown, so it cannot drift from ``CONVENTIONS``, the one place each convention is written."""
    from regcore.conventions import TABLE_HEADER, table_rows

    table = _markdown_table(TABLE_HEADER, table_rows())
    assert table + "\n" in README, "README's conventions table differs from table_rows():\n" + table
