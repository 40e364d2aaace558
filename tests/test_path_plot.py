"""`regcore_apps.path.plot`: the figures of two real path results (tests/data/path-*.json, written
by ``regcore path``), checked through the Figure's own artists rather than pixels, and the files
``save`` writes checked by their bytes."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SAMPLES = ("path-linear-l1", "path-iris-l2")


def _result(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def plot():
    pytest.importorskip("matplotlib")
    from regcore_apps.path import plot

    return plot


def _line(fig, gid: str):
    found = [a for ax in fig.axes for a in ax.get_lines() if a.get_gid() == gid]
    assert len(found) == 1, gid
    return found[0]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


# -- files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_save_writes_valid_png_and_svg(plot, tmp_path, name):
    result = _result(name)
    out = tmp_path / "new" / "dir"
    written = plot.save(result, out, prefix=f"{name}-")
    figures = ["loss", "coefficients"] if "coefficients" in result else ["loss"]
    assert written == [out / f"{name}-{f}.{fmt}" for f in figures for fmt in ("png", "svg")]
    sizes = {"loss": plot.LOSS_SIZE, "coefficients": plot.COEFFICIENT_SIZE}
    for path in written:
        assert path.stat().st_size > 1000, path
        if path.suffix == ".png":
            want = tuple(round(inches * plot.DPI) for inches in sizes[path.stem[len(name) + 1:]])
            assert _png_size(path) == want
        else:
            text = path.read_text()
            assert "<svg" in text
            assert ET.fromstring(text).tag.endswith("svg")


def test_save_rejects_an_unknown_format_before_writing(plot, tmp_path):
    with pytest.raises(ValueError, match="bogus"):
        plot.save(_result("path-iris-l2"), tmp_path / "out", formats=("png", "bogus"))
    assert not (tmp_path / "out").exists()


# -- the loss figure -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_loss_figure_marks_the_choices_on_the_mean_validation_curve(plot, name):
    result = _result(name)
    fig = plot.loss_figure(result)
    for rule in ("min", "1se"):
        chosen = result["choice"][rule]
        point = _line(fig, f"choice_{rule}")
        assert list(point.get_xdata()) == [chosen["value"]]
        assert list(point.get_ydata()) == [result["mean_val"][chosen["index"]]]
    mean = _line(fig, "mean_val")
    assert list(mean.get_xdata()) == result["grid"]
    assert list(mean.get_ydata()) == result["mean_val"]
    assert list(_line(fig, "mean_train").get_ydata()) == result["mean_train"]


@pytest.mark.parametrize(("name", "ylabel"), [("path-linear-l1", "mean squared error"),
                                              ("path-iris-l2", "cross-entropy")])
def test_loss_figure_labels_and_title(plot, name, ylabel):
    result = _result(name)
    fig = plot.loss_figure(result)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == result["axis"]["label"]
    assert ax.get_ylabel() == ylabel
    title = fig.get_suptitle()
    for word in (result["problem"], result["backend"], result["dtype"], "5-fold"):
        assert word in title
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"min: {plot._fmt(result['choice']['min']['value'])}" in legend


def test_loss_figure_folds_are_optional(plot):
    result = _result("path-iris-l2")
    with_folds = len(plot.loss_figure(result).axes[0].get_lines())
    without = len(plot.loss_figure(result, folds=False).axes[0].get_lines())
    assert with_folds - without == result["folds"]["k"]


# -- the coefficient figure ------------------------------------------------------------------------


def test_coefficient_figure_draws_each_coefficient_path(plot):
    result = _result("path-linear-l1")
    coefs = result["coefficients"]
    fig = plot.coefficient_figure(result)
    for c, name in enumerate(coefs["names"]):
        line = _line(fig, f"coef_{c}")
        assert line.get_label() == name
        assert list(line.get_xdata()) == result["grid"]
        assert list(line.get_ydata()) == [row[c] for row in coefs["path"]]
    ax = fig.axes[0]
    assert len([a for a in ax.get_lines() if str(a.get_gid()).startswith("coef_")]) == 5
    assert "zeros are exact (proximal step)" in fig.get_suptitle()


def test_coefficient_figure_counts_nonzero_coefficients_on_top(plot):
    result = _result("path-linear-l1")
    coefs = result["coefficients"]
    fig = plot.coefficient_figure(result)
    fig.canvas.draw()
    (top,) = fig.axes[0].child_axes
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert labels == [str(len(coefs["names"]) - z) for z in coefs["zeros"]]


def test_coefficient_figure_needs_a_linear_result(plot):
    with pytest.raises(ValueError, match="no 'coefficients'"):
        plot.coefficient_figure(_result("path-iris-l2"))


# -- imports ---------------------------------------------------------------------------------------


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_regcore_apps_path_does_not_import_matplotlib():
    out = _run("import sys, regcore_apps.path, regcore_apps.path.plot\n"
               "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_figures_never_touch_pyplot(plot):
    out = _run(f"import json, sys\nfrom regcore_apps.path import plot\n"
               f"plot.loss_figure(json.load(open({str(DATA / 'path-linear-l1.json')!r})))\n"
               "print('matplotlib.pyplot' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_missing_matplotlib_names_the_extra():
    out = _run("import json, sys\nsys.modules['matplotlib'] = None\n"
               "from regcore_apps.path import plot\n"
               f"result = json.load(open({str(DATA / 'path-linear-l1.json')!r}))\n"
               "for draw in (plot.loss_figure, plot.coefficient_figure, plot.save):\n"
               "    try:\n        draw(result) if draw is not plot.save else draw(result, '.')\n"
               "    except ImportError as e:\n        print(e)")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3
    assert all("pip install 'regcore[plot]'" in line for line in lines)
