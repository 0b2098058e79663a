"""The tool-version matrix: thop 0.0.31.post2005241907 (2020, the document's 2,307,720) against 0.1.1 (2,293,000).

Hand arithmetic for the document's LeNet (1x28x28 input):
  conv1 20x24x24 outputs, 1*5*5 MACC each: 288,000; its bias adds, one per output element: 20*24*24 = 11,520
  conv2 50x8x8 outputs, 20*5*5 MACC each: 1,600,000; bias adds 50*8*8 = 3,200
  ip1 800*500 = 400,000, ip2 500*10 = 5,000; max pools and the functional ReLU: 0 in thop
  thop 0.1.1 (MACC only): 288,000 + 1,600,000 + 400,000 + 5,000 = 2,293,000
  thop 0.0.31 (conv MACC + bias adds): 2,293,000 + 11,520 + 3,200 = 2,307,720
The releases are installed from the package registry into .cache/tools (gitignored) once and reused.
"""
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

OLD, NEW = "0.0.31.post2005241907", "0.1.1.post2209072238"
CACHE = ROOT / ".cache" / "tools"
CONV1_BIAS, CONV2_BIAS = 20 * 24 * 24, 50 * 8 * 8
NEW_TOTAL = 288_000 + 1_600_000 + 400_000 + 5_000


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# Tests that pip-install thop releases into .cache/tools on their first run (later runs reuse the installs).
registry = pytest.mark.registry


@pytest.fixture(scope="module")
def lenet_matrix(tmp_path_factory):
    from conftest import invoke_cli

    out = tmp_path_factory.mktemp("matrix")
    result = invoke_cli("matrix", "--tool", "thop", "--versions", f"{OLD},{NEW}", "--models", "lenet",
                        "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, result


@registry
def test_matrix_reproduces_both_thop_totals_and_explains_the_difference(lenet_matrix):
    out, result = lenet_matrix
    assert CONV1_BIAS == 11_520 and CONV2_BIAS == 3_200 and NEW_TOTAL == 2_293_000
    drift = rows(out / "drift.csv")
    total = next(r for r in drift if r["layer"] == "__total__" and r["metric"] == "macs")
    assert (total["from_version"], total["to_version"]) == (OLD, NEW)
    assert int(total["from_value"]) == NEW_TOTAL + CONV1_BIAS + CONV2_BIAS == 2_307_720  # the document's number
    assert int(total["to_value"]) == NEW_TOTAL
    assert int(total["delta"]) == -(CONV1_BIAS + CONV2_BIAS) == -14_720
    assert total["change"] == "conv bias adds no longer counted: -11,520 on conv1, -3,200 on conv2"
    by_layer = {r["layer"]: r for r in drift if r["metric"] == "macs"}
    for layer, bias in (("conv1", CONV1_BIAS), ("conv2", CONV2_BIAS)):
        row = by_layer[layer]
        assert int(row["delta"]) == -bias
        assert (row["from_decomposition"], row["to_decomposition"], row["term_change"]) == \
            ("1*MACC + 1*BIAS", "1*MACC", "-1*BIAS")
        assert row["change"] == "conv bias adds no longer counted"
        assert "basic_hooks.py: count_convNd" in row["sources"] and "calculate_conv2d_flops" in row["sources"]
    for layer in ("pool1", "pool2", "ip1", "ip2"):
        assert by_layer[layer]["change"] == "unchanged" and by_layer[layer]["delta"] == "0"
    params = next(r for r in drift if r["layer"] == "__total__" and r["metric"] == "params")
    assert params["from_value"] == params["to_value"] == "431080" and params["change"] == "unchanged"
    assert f"{OLD} -> {NEW}: 2,307,720 -> 2,293,000: conv bias adds no longer counted" in result.stdout


@registry
def test_each_version_reports_the_release_it_imported_and_the_shim(lenet_matrix):
    out, _ = lenet_matrix
    records = rows(out / "records.csv")
    assert {r["tool_version"] for r in records} == {OLD, NEW}
    old = [r for r in records if r["tool_version"] == OLD]
    new = [r for r in records if r["tool_version"] == NEW]
    # thop 0.0.31 thop/utils.py: `from collections import Iterable`, removed in Python 3.10
    assert all("shim used" in r["message"] and "collections.Iterable" in r["message"] and "thop/utils.py" in
               r["message"] for r in old)
    assert not any("shim" in r["message"] for r in new)
    assert {r["status"] for r in records} == {"ok"}
    report = (out / "report_drift.md").read_text()
    assert "conv bias adds no longer counted: -11,520 on conv1, -3,200 on conv2" in report
    assert "| 2,307,720 | 2,293,000 |" in report and "import shim" in report


@registry
def test_second_run_reuses_the_cached_installs(lenet_matrix, tmp_path):
    from conftest import invoke_cli

    folders = [CACHE / f"thop-{v}" for v in (OLD, NEW)]
    before = [f.stat().st_mtime_ns for f in folders]
    result = invoke_cli("matrix", "--tool", "thop", "--versions", f"{OLD},{NEW}", "--models", "lenet",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("reused cached install") == 2 and "installed .cache" not in result.stderr
    assert [f.stat().st_mtime_ns for f in folders] == before
    assert (tmp_path / "drift.csv").read_text() == (lenet_matrix[0] / "drift.csv").read_text()


@registry
def test_cached_install_never_calls_pip(lenet_matrix):
    from reconcile import drift

    def no_pip(*args, **kwargs):
        raise AssertionError(f"pip was called: {args}")

    inst = drift.install("thop", OLD, CACHE, run=no_pip)
    assert (inst.how, inst.folder) == ("reused", CACHE / f"thop-{OLD}")


@registry
def test_a_version_that_does_not_exist_is_an_error_row_and_the_rest_runs(tmp_path):
    from conftest import invoke_cli

    result = invoke_cli("matrix", "--tool", "thop", "--versions", f"{NEW},9.9.9", "--models", "lenet",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    records = rows(tmp_path / "records.csv")
    failed = [r for r in records if r["tool_version"] == "9.9.9"]
    assert [(r["layer"], r["status"]) for r in failed] == [("__model__", "error")]
    assert "pip could not install thop==9.9.9" in failed[0]["message"]
    assert any(r["tool_version"] == NEW and r["layer"] == "__total__" and r["value"] == "2293000" for r in records)
    drift = rows(tmp_path / "drift.csv")
    assert [(r["layer"], r["to_version"], r["change"]) for r in drift if r["to_status"] == "error"] == \
        [("__model__", "9.9.9", "did not run")]
    assert not (CACHE / "thop-9.9.9").exists()
    assert "9.9.9" in (tmp_path / "report_drift.md").read_text()


def test_an_invalid_version_string_fails_without_pip(tmp_path):
    from reconcile import drift

    inst = drift.install("thop", "../../etc", tmp_path, run=lambda *a, **k: pytest.fail("pip was called"))
    assert inst.how == "failed" and "not a valid version" in inst.error and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, says", [
    (["--tool", "document", "--versions", "1"], "not a pip-installable counter"),
    (["--tool", "nosuch", "--versions", "1"], "unknown tool"),
    (["--tool", "thop", "--versions", ","], "--versions needs at least one version"),
    (["--tool", "thop", "--versions", NEW, "--models", "nosuch"], "nosuch"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args, says):
    result = cli("matrix", *args)
    assert result.returncode == 2 and says in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_catalogue_keys_thop_conventions_by_release():
    from conventions import catalogue
    from conventions.ir import Layer
    from conventions.terms import BIAS, MACC, OUT

    conv = Layer("conv1", "conv", ((1, 1, 28, 28),), (1, 20, 24, 24), kernel=(5, 5), bias=True, op="Conv2d",
                 params=520)
    bn = Layer("bn1", "bn", ((1, 16, 32, 32),), (1, 16, 32, 32), op="BatchNorm2d", params=32)
    old, new = (catalogue.lookup("thop", v, "macs", conv) for v in (OLD, NEW))
    assert old.terms == {MACC: 1, BIAS: 1} and "basic_hooks.py: count_convNd" in old.source
    assert new.terms == {MACC: 1} and "calculate_conv2d_flops" in new.source
    assert catalogue.lookup("thop", OLD, "macs", bn).terms == {OUT: 2}
    assert catalogue.lookup("thop", NEW, "macs", bn).terms == {OUT: 4}
    # release-number ranges: a post-release of 0.0.31 is below 0.1, every 0.1.x post-release at or above it
    for version, before_01 in ((OLD, True), ("0.0.31.post1909230639", True), ("0.1.0.post2206102148", False),
                               (NEW, False)):
        assert catalogue.in_range(version, ("", "0.1")) is before_01
        assert catalogue.in_range(version, ("0.1", "")) is not before_01


def test_convention_change_phrases():
    from reconcile import drift

    assert drift.term_change({"MACC": 1, "BIAS": 1}, {"MACC": 1}) == {"BIAS": -1}
    assert drift.convention_change("conv", {"MACC": 1, "BIAS": 1}, {"MACC": 1}) == "conv bias adds no longer counted"
    assert drift.convention_change("conv", {"MACC": 1}, {"MACC": 1, "BIAS": 1}) == "conv bias adds now counted"
    assert drift.convention_change("bn", {"OUT": 2}, {"OUT": 4}) == "bn counts 4 ops per output element instead of 2"
    assert drift.convention_change("layer_norm", {}, {"OUT": 4}) == "layer_norm now counted (4*OUT)"
    assert drift.convention_change("conv", {"MACC": 1}, {"MACC": 2}) == \
        "conv counts 2 ops per multiply-accumulate instead of 1"
    # a subtracted term: thop's linear before 0.0.31.post1910280903 counted (2*in - 1) * out = 2*MACC - OUT
    # (thop 0.0.31.post1909230639 thop/count_hooks.py count_linear: (total_mul + total_add) * y.numel(), total_add =
    # in_features - 1); +OUT after
    assert drift.convention_change("linear", {"MACC": 2, "BIAS": -1}, {"MACC": 2}) == \
        "linear bias adds no longer subtracted"
    assert drift.convention_change("linear", {"MACC": 2}, {"MACC": 2, "OUT": -1}) == \
        "linear output elements now subtracted x1"
    assert drift.summarise([("conv1", -11520, "conv bias adds no longer counted"), ("ip1", 0, "unchanged"),
                            ("conv2", -3200, "conv bias adds no longer counted")]) == \
        "conv bias adds no longer counted: -11,520 on conv1, -3,200 on conv2"


def test_shim_serves_only_what_is_asked_and_records_it(tmp_path):
    (tmp_path / "oldtool.py").write_text("from collections import Iterable\nOK = isinstance([], Iterable)\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from reconcile import shims\n"
            "shims.apply(('collections_abc_aliases',))\n"
            "assert shims.used() == []\n"
            "import oldtool; assert oldtool.OK\n"
            "print(shims.note('m'))\n") % str(tmp_path)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("m; shim used on Python 3.11: collections.Iterable -> collections.abc.Iterable "
                                     f"(for {tmp_path.name}/oldtool.py)")
    import collections

    assert not hasattr(collections, "Iterable")  # the test process itself never gets the shim


@registry
def test_a_job_shadows_a_release_the_parent_already_imported(lenet_matrix):
    """In-process API use: the caller imported the venv's thop 0.1.1 before running a 0.0.31 job; the child
    forgets it (reconcile/shims.py `put_first`) and reads the cached release."""
    code = ("import thop\n"
            "from reconcile import models, runner\n"
            "job = runner.Job('thop', models.reference('lenet'), extra_path=(%r,),\n"
            "                 shims=('collections_abc_aliases',))\n"
            "total = [r for r in runner.run_jobs([job], 60) if r.layer == '__total__' and r.metric == 'macs'][0]\n"
            "print(total.tool_version, total.value, total.status)\n") % str((CACHE / f"thop-{OLD}").resolve())
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [OLD, "2307720", "ok"]
