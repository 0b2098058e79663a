"""report.html in a real browser: headless Chromium lays it out at 1400x900 and takes a screenshot of the first
screen; the chart of every counter's total and the published numbers' verdicts must be on it. The same page is
checked for what a browser makes of it: element ids unique, no table row of empty cells, no row of mostly empty
cells taller than MAX_SPARSE_ROW_PX (a long cell beside empty ones made rows ~370 px tall).

How positions are read: a copy of report.html gets a small script at its end; Chromium runs it with
`--dump-dom` (after `--virtual-time-budget`, so layout is done) and the script writes what it measured as JSON
into the DOM, which `--dump-dom` prints. Positions are document coordinates (getBoundingClientRect + scroll),
so they do not depend on the height of the window Chromium gives --dump-dom; the page's CSS has no
viewport-height units, so the layout at width 1400 is the screenshot's. The screenshot itself (--screenshot,
--window-size=1400,900) must show the chart's colours inside the chart's box.

Chromium is the Debian package `chromium` (.ci/run installs it when missing); without it the test is skipped
and says so.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

WIDTH, HEIGHT = 1400, 900
MAX_SPARSE_ROW_PX = 150
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--window-size={WIDTH},{HEIGHT}"]
# reconcile/render.py PALETTE[1], the colour of a dot that differs from the document's FLOPs
DOT_RGB = (0xdd, 0x84, 0x52)

PROBE = """<script>
(function () {
  function box(el) {
    if (!el) return null;
    var r = el.getBoundingClientRect();
    return {top: r.top + window.scrollY, bottom: r.bottom + window.scrollY, left: r.left, right: r.right};
  }
  var out = {width: window.innerWidth};
  var chart = document.querySelector('figure svg');
  out.chart = box(chart);
  out.chart_rows = chart ? chart.querySelectorAll('circle').length : 0;
  var heading = [].slice.call(document.querySelectorAll('h2')).filter(function (h) {
    return h.textContent.indexOf('Published numbers: which convention') === 0; })[0];
  out.published_heading = box(heading);
  var table = heading ? heading.nextElementSibling.querySelector('table') : null;
  out.published_rows = table ? [].slice.call(table.querySelectorAll('tbody tr')).map(box) : [];
  var ids = [].slice.call(document.querySelectorAll('[id]')).map(function (e) { return e.id; });
  out.ids = ids;
  [].slice.call(document.querySelectorAll('details')).forEach(function (d) { d.open = true; });
  out.rows = [].slice.call(document.querySelectorAll('tbody tr')).map(function (r) {
    var cells = [].slice.call(r.children);
    return {height: r.getBoundingClientRect().height, first: cells[0].textContent.slice(0, 60),
            empty: cells.slice(1).filter(function (c) { return !c.textContent.trim(); }).length,
            data: cells.length - 1};
  });
  var pre = document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium is not installed here (Debian: apt-get install -y chromium; .ci/run installs it)")


def browse(html: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="reconcile-chromium-")
    try:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args, html.as_uri()],
                              capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def measure(report: Path, tmp_path: Path) -> dict:
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = browse(probed, "--virtual-time-budget=5000", "--dump-dom")
    found = re.search(r"<pre id=\"probe-result\">(.*?)</pre>", result.stdout, re.S)
    assert found, result.stderr[-2000:]
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&quot;", '"'))


def screenshot(report: Path, tmp_path: Path) -> Path:
    """The first screen as Chromium shows it; kept in $RECONCILE_SCREENSHOT_DIR too when that is set (CI)."""
    png = tmp_path / "report-first-screen.png"
    result = browse(report, f"--screenshot={png}")
    assert png.is_file(), result.stderr[-2000:]
    keep = os.environ.get("RECONCILE_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, Path(keep) / png.name)
    return png


@pytest.fixture(scope="module")
def default_report(default_run, tmp_path_factory):
    """The default suite's report.html, measured and photographed once."""
    folder = tmp_path_factory.mktemp("browser")
    report = default_run / "report.html"
    return measure(report, folder), screenshot(report, folder)


def test_first_screen_shows_the_chart_and_the_verdicts(default_report):
    probe, png = default_report
    assert probe["width"] == WIDTH
    chart, heading, rows = probe["chart"], probe["published_heading"], probe["published_rows"]
    # the default suite has 10 models with 15-22 totals each: more than 100 dots
    assert chart is not None and probe["chart_rows"] > 100
    assert 0 <= chart["top"] and chart["bottom"] <= HEIGHT, chart
    assert heading is not None and rows, "no published numbers section"
    assert heading["bottom"] <= HEIGHT and rows[0]["bottom"] <= HEIGHT, (heading, rows[0])
    assert chart["bottom"] <= heading["top"]  # the chart first, then the verdicts

    from PIL import Image

    image = Image.open(png).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    left, top, right, bottom = (int(chart["left"]), int(chart["top"]), int(chart["right"]), int(chart["bottom"]))
    pixels = image.crop((left, top, right, bottom)).getdata()
    dots = sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, DOT_RGB)) < 60)
    assert dots > 200, f"the chart's dots are not on the screenshot {png} ({dots} pixels of their colour)"


def test_html_ids_are_unique_and_no_row_is_empty(default_report):
    probe, _ = default_report
    repeated = sorted({i for i in probe["ids"] if probe["ids"].count(i) > 1})
    assert not repeated, repeated
    empty = [r["first"] for r in probe["rows"] if r["data"] and r["empty"] == r["data"]]
    assert not empty, empty
    sparse = [(round(r["height"]), r["first"]) for r in probe["rows"]
              if r["height"] > MAX_SPARSE_ROW_PX and r["empty"] * 2 > r["data"]]
    assert not sparse, sparse
