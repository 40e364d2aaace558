"""matrix.html rendered by a real headless Chromium: the screenshot shows the heatmap cells in the
colours and at the places the SVG gives them (a pass at half the tolerance in green, only a
failure in red), a device where nothing ran as one grey bar, and the table below it."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from regcore_conformance import matrix, matrix_html
from regcore_conformance.report import Record, Report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)
# CI installs Chromium and sets REGCORE_REQUIRE_BROWSER=1: there a missing browser fails the run
# instead of skipping the one test that proves the page renders.
if CHROMIUM is None and os.environ.get("REGCORE_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"REGCORE_REQUIRE_BROWSER=1 but no Chromium on PATH ({', '.join(BROWSERS)})")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason=f"no Chromium binary on PATH (looked for {', '.join(BROWSERS)}); "
                             "Debian: apt-get install -y chromium")
SIZE = (1200, 900)
TOLERANCE = 3  # per channel, for colour matching


def read_png(path: Path) -> tuple[int, int, list[bytearray]]:
    """Width, height and RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG (stdlib only)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    assert header is not None, "no IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    assert len(raw) == height * (stride + 1)
    prev, rows = bytearray(stride), []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 255
        elif kind == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        rows.append(line)
        prev = line
    if bpp == 4:
        rows = [bytearray(b for i, b in enumerate(r) if i % 4 != 3) for r in rows]
    return width, height, rows


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


class Image:
    def __init__(self, path: Path) -> None:
        self.width, self.height, self.rows = read_png(path)

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        return tuple(self.rows[y][3 * x:3 * x + 3])

    def near(self, x: int, y: int, colour: tuple[int, int, int]) -> bool:
        if not (0 <= x < self.width and 0 <= y < self.height):
            return False
        return all(abs(a - b) <= TOLERANCE for a, b in zip(self.pixel(x, y), colour, strict=True))

    def rect_corners(self, colour: tuple[int, int, int], w: int, h: int) -> list[tuple[int, int]]:
        """Top-left corners of solid w×h rectangles of ``colour`` (checked at the corners and
        edge midpoints; text inside the cell may cover the centre)."""
        found = []
        for y in range(self.height - h + 1):
            row = self.rows[y]
            for x in range(self.width - w + 1):
                if all(abs(row[3 * x + k] - colour[k]) <= TOLERANCE for k in range(3)) and \
                        not self.near(x - 1, y, colour) and not self.near(x, y - 1, colour) and \
                        all(self.near(x + dx, y + dy, colour) for dx, dy in (
                            (w - 1, 0), (0, h - 1), (w - 1, h - 1), (w // 2, 0),
                            (w // 2, h - 1), (0, h // 2), (w - 1, h // 2))) and \
                        not self.near(x + w, y, colour) and not self.near(x, y + h, colour):
                    found.append((x, y))
        return found


def write_reports(directory: Path) -> None:
    """alpha passes s_a exactly (ratio 0) and s_b at 1e-3; beta skips s_a and fails s_b; gamma
    passes s_a at 0.5, fails s_b at 1.5, and has no cuda (every cuda test skipped)."""
    def rec(backend, scenario, outcome, error, device="cpu", dtype="float64"):
        return Record(backend=backend, device=device, dtype=dtype, scenario=scenario,
                      case="l2_sum", check="loss", error=error, max_abs_error=error, scale=1.0,
                      tolerance=1e-6, tolerance_formula="2 gamma(n)", outcome=outcome,
                      test=f"t[{device}-{dtype}-{scenario}]",
                      detail=f"{backend}: device {device!r} not available here"
                      if device != "cpu" else "skipped" if outcome == "skip" else "")

    for backend, records in {
        "alpha": [rec("alpha", "s_a", "pass", 0.0), rec("alpha", "s_b", "pass", 1e-9)],
        "beta": [rec("beta", "s_a", "skip", 0.0), rec("beta", "s_b", "fail", 5e-6)],
        "gamma": [rec("gamma", "s_a", "pass", 5e-7), rec("gamma", "s_b", "fail", 1.5e-6),
                  *(rec("gamma", s, "skip", 0.0, "cuda", dt) for s in ("s_a", "s_b")
                    for dt in ("float64", "float32"))],
    }.items():
        report = Report(backend)
        for r in records:
            report.add(r)
        report.write(directory / f"conformance-{backend}.json", {"regcore": "0.1.0"})


def svg_cells(page: str) -> dict[tuple[int, int], tuple[int, int, int, int, str]]:
    cells = re.findall(r'class="cell" data-row="(\d+)" data-col="(\d+)" x="(\d+)" y="(\d+)" '
                       r'width="(\d+)" height="(\d+)" fill="(#\w+)"', page)
    return {(int(i), int(j)): (int(x), int(y), int(w), int(h), fill)
            for i, j, x, y, w, h, fill in cells}


def test_screenshot_shows_heatmap_and_table(tmp_path):
    write_reports(tmp_path)
    assert matrix.main([str(tmp_path), "--expect", "alpha,beta,gamma,delta"]) == 1  # s_b fails
    page = (tmp_path / "matrix.html").read_text()
    cells = svg_cells(page)
    # what the page asks for: rows alpha, beta, gamma cpu, gamma cuda; columns s_a, s_b
    half = matrix_html.ratio_colour(0.5)
    assert {k: v[4] for k, v in cells.items()} == {
        (0, 0): matrix_html.GREEN, (0, 1): matrix_html.MID,
        (1, 0): matrix_html.GREY, (1, 1): matrix_html.RED,
        (2, 0): half, (2, 1): matrix_html.RED}
    r, g, b = rgb(half)
    assert g > r + 20 and g > b + 20, half  # a pass at half the tolerance reads as a pass
    bar = re.findall(r'class="not-run" data-row="3" x="(\d+)" y="(\d+)" width="(\d+)" '
                     r'height="(\d+)" fill="(#\w+)"', page)
    assert len(bar) == 1 and bar[0][4] == matrix_html.GREY

    shot = tmp_path / "out.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         "--force-device-scale-factor=1", "--force-color-profile=srgb",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         f"--window-size={SIZE[0]},{SIZE[1]}", (tmp_path / "matrix.html").as_uri()],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-3000:]
    image = Image(shot)
    assert (image.width, image.height) == SIZE

    colours = {bytes(r[x:x + 3]) for r in image.rows for x in range(0, len(r), 3)}
    assert len(colours) > 50, f"only {len(colours)} distinct colours: blank page?"

    # the green cell is found by its colour and size alone, and anchors the SVG on the screen
    x0, y0, w, h, _ = cells[(0, 0)]
    greens = image.rect_corners(rgb(matrix_html.GREEN), w, h)
    assert len(greens) == 1, greens  # the legend's green is too small to count
    origin = (greens[0][0] - x0, greens[0][1] - y0)
    for (i, j), (x, y, w, h, fill) in cells.items():
        sx, sy = origin[0] + x, origin[1] + y
        for dx, dy in ((2, 2), (w - 3, 2), (2, h - 3), (w - 3, h - 3), (w // 2, 2)):
            assert image.near(sx + dx, sy + dy, rgb(fill)), (
                f"cell ({i}, {j}) at ({sx + dx}, {sy + dy}): {image.pixel(sx + dx, sy + dy)}, "
                f"expected {fill}")
    reds = image.rect_corners(rgb(matrix_html.RED), w, h)
    assert reds == [(origin[0] + cells[k][0], origin[1] + cells[k][1]) for k in ((1, 1), (2, 1))]
    assert reds[0][0] > greens[0][0] and reds[0][1] > greens[0][1]  # right of, below the green

    # gamma's cuda: one grey bar across the scenario columns, under gamma's cpu row
    bx, by, bw, bh = (int(v) for v in bar[0][:4])
    assert bx == cells[(2, 0)][0] and by > cells[(2, 0)][1]
    assert bw >= cells[(2, 1)][0] + w - cells[(2, 0)][0]  # wider if its text needs it
    assert image.rect_corners(rgb(matrix_html.GREY), bw, bh) == [
        (origin[0] + bx, origin[1] + by)]

    # the table's header row (#f2f2f2, a band several hundred pixels wide) below the heatmap
    grid_bottom = origin[1] + by + bh
    band = [y for y in range(image.height)
            if sum(image.pixel(x, y) == (0xF2, 0xF2, 0xF2) for x in range(image.width)) > 300]
    assert len(band) >= 10, band
    assert min(band) > grid_bottom
