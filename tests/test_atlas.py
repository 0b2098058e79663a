"""The atlas (reconcile/atlas.py, reconcile/atlas_report.py): a small sweep rendered; its numbers against hand
arithmetic; its HTML sorted and filtered in headless Chromium (tests/test_report_browser.py finds or skips it); a
release change of thop named in the release matrix's words (registry: installs thop 0.0.31)."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from test_report_browser import browse

NO_STORE = importlib.util.find_spec("duckdb") is None or importlib.util.find_spec("pyarrow") is None
pytestmark = pytest.mark.skipif(NO_STORE, reason="duckdb/pyarrow are not installed (the .[cluster] extra)")

# LeNet by hand (docs/document.md): MACC and params of conv1, conv2, ip1, ip2
LENET_MACC = 20 * 24 * 24 * 25 + 50 * 8 * 8 * 500 + 800 * 500 + 500 * 10
LENET_PARAMS = 520 + 25_050 + 400_500 + 5_010
LENET_CONV_BIAS_ADDS = 20 * 24 * 24 + 50 * 8 * 8  # thop 0.0.31 counts them, 0.1.1 does not


def _sweep(out: Path, releases: dict, tools=("document", "thop", "torchinfo"), models=("lenet", "gconv")):
    from reconcile import atlas, engines
    from reconcile.jobs import memory_cap

    specs = atlas.resolve_models(list(models))
    plan = atlas.plan(specs, list(tools), releases, 120.0, memory_cap())
    atlas.sweep(plan.jobs, out, engines.make("builtin"), plan.failed)
    return plan


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from reconcile import atlas_report

    folder = tmp_path_factory.mktemp("atlas")
    _sweep(folder / "sweep", {})
    atlas_report.render(folder / "sweep", folder / "atlas")
    return folder / "atlas"


@pytest.mark.slow  # a 6-job sweep, rendered
def test_atlas_rows_against_hand_arithmetic(rendered):
    import pandas as pd

    md = (rendered / "atlas.md").read_text()
    assert len(md.encode()) < 150_000
    rows = pd.read_csv(rendered / "atlas.csv", dtype={"value": object, "reference": object})
    lenet = rows[(rows.model == "lenet") & (rows.tool == "thop")].set_index("metric")
    assert int(lenet.loc["macs", "value"]) == LENET_MACC and int(lenet.loc["macs", "reference"]) == LENET_MACC
    assert lenet.loc["macs", "ratio"] == 1.0
    assert int(lenet.loc["params", "value"]) == LENET_PARAMS and lenet.loc["params", "ratio"] == 1.0
    assert lenet.loc["macs", "counts"].startswith("conv 1*MACC")  # thop 0.1.1: no conv bias adds
    doc = rows[(rows.model == "lenet") & (rows.tool == "document")].set_index("metric")
    # the document's FLOPs = 2*MACC + conv and FC bias adds + each pool's input elements (design.md: 4,615,950)
    flops = 2 * LENET_MACC + LENET_CONV_BIAS_ADDS + 500 + 10 + 20 * 24 * 24 + 50 * 8 * 8
    assert int(doc.loc["flops", "value"]) == flops, (doc.loc["flops", "value"], flops)
    assert "| cnn (LeNet) | thop |" in md and "| cnn (grouped conv) | thop |" in md


def test_verdicts_read_the_ratio_to_the_reference():
    from reconcile.atlas_report import verdict

    assert verdict(LENET_MACC / LENET_MACC, "ok") == "the reference"
    # thop 0.0.31 on LeNet: the conv bias adds on top of the multiply-accumulates, 14,720 / 2,293,000 = 0.64% more
    assert verdict((LENET_MACC + LENET_CONV_BIAS_ADDS) / LENET_MACC, "ok") == "0.6% above the reference"
    assert verdict(2 * LENET_MACC / LENET_MACC, "ok") == "twice the reference"
    assert verdict(0.8, "ok", 3) == "20.0% below the reference; 3 layer(s) at 0"
    assert verdict(0, "ok") == "0: counts nothing here"
    assert verdict(None, "error") == "did not count (error)"


@pytest.mark.slow  # the 6-job sweep of `rendered`
def test_matrix_and_counter_summary_read_every_model(rendered):
    import pandas as pd

    matrix = pd.read_csv(rendered / "atlas_matrix.csv", dtype=str).set_index("model")
    assert int(matrix.loc["lenet", "reference_macc"]) == LENET_MACC
    assert int(matrix.loc["lenet", "reference_params"]) == LENET_PARAMS
    # thop 0.1.1 counts LeNet's multiply-accumulates and parameters as the document does: both ratios 1
    assert matrix.loc["lenet", "thop macs"] == "1" and matrix.loc["lenet", "thop params"] == "1"
    assert list(matrix.index) == ["lenet", "gconv"] or set(matrix.index) == {"lenet", "gconv"}
    md = (rendered / "atlas.md").read_text()
    assert "## Every counter over every model" in md and "| thop | 0.1.1.post2209072238 | params | 2 |" in md


def test_counter_summary_classes_each_ratio_once():
    import pandas as pd

    from reconcile.atlas_report import counter_summary, release_models

    # five models, one tool metric: ratios 1 (at the reference), 2 (twice), 0.8, 1.3 and 0; a sixth crashed
    ratios = {"a": 1.0, "b": 2.0, "c": 0.8, "d": 1.3, "e": 0.0}
    release = "0.1.1.post2209072238"
    rows = [{"family": m, "model": m, "tool": "thop", "release": release, "releases": release, "metric": "m",
             "quantity": "compute", "ratio": r, "counts": "conv 1*MACC", "zero_layers": 1 if m == "c" else 0,
             "status": "ok"} for m, r in ratios.items()]
    rows.append({"family": "f", "model": "f", "tool": "thop", "release": release, "releases": release, "metric": "",
                 "quantity": "", "ratio": None, "counts": "", "zero_layers": 0, "status": "error"})
    table = counter_summary(pd.DataFrame(rows)).set_index("metric")
    got = table.loc["m", ["models", "at_reference", "twice_reference", "below", "above", "zero_total",
                          "models_with_zero_layers", "crashed"]].tolist()
    assert got == [5, 1, 1, 1, 1, 1, 1, 1]
    assert table.loc["m", "median_ratio"] == "1"  # of 0, 0.8, 1, 1.3, 2
    # the release history: the models a tool ran at more than one release on
    records = pd.DataFrame({"model": ["x", "x", "y", "y"], "tool": ["t", "t", "t", "u"],
                            "release": ["1", "2", "1", "1"]})
    assert release_models(records) == {"x"}


PROBE = """<script>
(function () {
  var tables = document.querySelectorAll('table');
  var table = tables[tables.length - 1];
  var heads = [].slice.call(table.tHead.rows[0].cells).map(function (h) { return h.textContent; });
  function visible(column) {
    return [].slice.call(table.tBodies[0].rows).filter(function (r) { return r.style.display !== 'none'; })
      .map(function (r) { return r.cells[column].textContent; });
  }
  var out = {heads: heads, all: visible(heads.indexOf('model')).length};
  var input = table.previousElementSibling;
  out.input = input ? input.tagName + ':' + input.type : null;
  input.value = 'gconv thop';
  input.dispatchEvent(new Event('input'));
  out.models = visible(heads.indexOf('model'));
  out.tools = visible(heads.indexOf('tool'));
  input.value = '';
  input.dispatchEvent(new Event('input'));
  var value = table.tHead.rows[0].cells[heads.indexOf('value')];
  value.click();
  out.ascending = visible(heads.indexOf('value'));
  value.click();
  out.descending = visible(heads.indexOf('value'));
  var pre = document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


@pytest.mark.slow  # Chromium
def test_atlas_html_sorts_and_filters_in_chromium(rendered, tmp_path):
    page = tmp_path / "probed.html"
    page.write_text((rendered / "atlas.html").read_text().replace("</body>", PROBE + "</body>"))
    result = browse(page, "--virtual-time-budget=5000", "--dump-dom")
    found = re.search(r"<pre id=\"probe-result\">(.*?)</pre>", result.stdout, re.S)
    assert found, result.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&quot;", '"'))
    assert probe["input"] == "INPUT:search"
    # document, thop (2 metrics each: params + compute) and torchinfo on 2 models, plus the document's flops
    assert probe["all"] >= 12
    assert probe["models"] and set(probe["models"]) == {"gconv"} and set(probe["tools"]) == {"thop"}
    numbers = [float(v.replace(",", "")) for v in probe["ascending"] if v.strip()]
    assert numbers == sorted(numbers) and len(numbers) >= 12
    back = [float(v.replace(",", "")) for v in probe["descending"] if v.strip()]
    assert back == sorted(numbers, reverse=True)


@pytest.mark.registry  # pip installs thop 0.0.31 into the tool cache
@pytest.mark.slow
def test_a_release_whose_numbers_changed_is_listed_with_why(tmp_path):
    from reconcile import atlas_report

    old, new = "0.0.31.post2005241907", "0.1.1.post2209072238"
    _sweep(tmp_path / "sweep", {"thop": [old, new]}, tools=("document", "thop"), models=("lenet",))
    atlas_report.render(tmp_path / "sweep", tmp_path / "atlas")
    md = (tmp_path / "atlas" / "atlas.md").read_text()
    # the runs table: 0.1.1 is a release whose numbers differ from the previous one swept, and why
    assert f"| thop | {new} | 2022-09-07 | 1/1 | 1 model(s): conv bias adds no longer counted |" in md, md
    old_total = LENET_MACC + LENET_CONV_BIAS_ADDS  # 2,307,720, design.md: thop's 2020 release on LeNet
    row = f"| thop | {old} | {new} | lenet | macs | {old_total:,} | {LENET_MACC:,} | {-LENET_CONV_BIAS_ADDS:,} |"
    assert row in md, md


def test_an_hf_spec_resolves_once_then_from_the_cache_which_shares(tmp_path, monkeypatch):
    from reconcile import atlas, jobs, which

    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(tmp_path))
    gpt2 = next(name for name in atlas.CORE_MODELS if name.startswith("hf:gpt2"))
    first = atlas.resolve_models([gpt2])[0]
    monkeypatch.setattr(jobs, "call_in_job", lambda *args, **kwargs: pytest.fail("resolved again"))
    again = atlas.resolve_models([gpt2])[0]
    assert again == first and again.config["n_embd"] == 64
    # `which` asks the same kept spec: no job either
    assert which._resolve(gpt2, None, None, None, trace=False) == first


def test_a_spec_that_cannot_be_resolved_is_one_line_naming_it(tmp_path, monkeypatch):
    from reconcile import atlas
    from reconcile.errors import UserError

    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(tmp_path))
    gpt2 = next(name for name in atlas.CORE_MODELS if name.startswith("hf:gpt2"))
    with pytest.raises(UserError) as caught:
        atlas.resolve_models([gpt2, "hf:no_such_type"])
    assert "no_such_type" in str(caught.value) and "\n" not in str(caught.value)


def test_architectures_are_the_hf_sweeps_traced_types(tmp_path):
    import re

    from reconcile import atlas
    from reconcile.errors import UserError

    specs = atlas.sweep_architectures()
    summary = (atlas.HF_SWEEP_TABLE.parent / "summary.md").read_text()
    traced = int(re.search(r"\| built and traced \| (\d+) \|", summary).group(1))
    assert len(specs) == len(set(specs)) == traced
    assert all(spec.startswith("hf:") and "sizes=" in spec for spec in specs)
    with pytest.raises(UserError, match="hf sweep's table"):
        atlas.sweep_architectures(tmp_path / "missing.csv")
