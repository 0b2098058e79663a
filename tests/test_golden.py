"""Golden snapshots (tests/golden/<tool>-<version>.csv): every number every installed tool prints on the reference
suite is pinned; a tool upgrade or a model change fails here with what changed, in convention terms, until the
goldens are regenerated on purpose with `reconcile check --update`.

Hand arithmetic used below (the document's LeNet): conv1 MACC 20*24*24 outputs * 25 = 288,000, bias adds
20*24*24 = 11,520; conv2 bias adds 50*8*8 = 3,200.
"""
import csv
import os
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, invoke_cli, run_cli

GOLDEN = ROOT / "tests" / "golden"
THOP = "0.1.1.post2209072238"
THOP_GOLDEN = f"thop-{THOP}.csv"


def edit(path: Path, model: str, layer: str, metric: str, value: int) -> None:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    hits = [r for r in rows if (r["model"], r["layer"], r["metric"]) == (model, layer, metric)]
    assert len(hits) == 1, hits
    hits[0]["value"] = str(value)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.slow
def test_installed_tools_match_their_goldens(default_run):
    """Fails with a readable reason for a number that changed or a tool version that has no golden. End to end
    (a fresh process); the session's default run has already put every job's records in the result cache."""
    result = run_cli("check", "--quiet")
    assert result.returncode == 0, "\n" + result.stdout + result.stderr
    assert f"ok       thop {THOP}" in result.stdout


def test_a_changed_golden_value_fails_naming_layer_version_and_convention(tmp_path):
    golden = tmp_path / "golden"
    shutil.copytree(GOLDEN, golden)
    edit(golden / THOP_GOLDEN, "lenet", "conv1", "macs", 288_000 + 11_520)  # as if thop still counted the bias
    result = invoke_cli("check", "--tools", "thop", "--models", "lenet", "--golden-dir", str(golden), "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert (f"thop {THOP} lenet conv1 macs: golden 299,520 (1*MACC + 1*BIAS) -> now 288,000 (1*MACC): "
            "conv bias adds no longer counted") in result.stdout
    assert f"DIFFERS  thop {THOP}: 1 of 14 rows differ" in result.stdout
    assert "reconcile check --update" in result.stdout


def test_a_tool_version_without_golden_is_reported_with_the_upgrade_diff(tmp_path):
    """The lock file moved thop from 0.0.31 (golden present) to 0.1.1 (none): say so, and what changed."""
    golden = tmp_path / "golden"
    golden.mkdir()
    old = golden / "thop-0.0.31.post2005241907.csv"
    shutil.copy(GOLDEN / THOP_GOLDEN, old)
    edit(old, "lenet", "conv1", "macs", 288_000 + 11_520)
    edit(old, "lenet", "conv2", "macs", 1_600_000 + 3_200)
    edit(old, "lenet", "__total__", "macs", 2_293_000 + 11_520 + 3_200)
    result = invoke_cli("check", "--tools", "thop", "--models", "lenet", "--golden-dir", str(golden), "--quiet")
    assert result.returncode == 1
    out = result.stdout
    assert f"MISSING  thop {THOP}: no golden file {golden / THOP_GOLDEN}" in out
    assert "the golden of thop 0.0.31.post2005241907 is there" in out
    assert ("thop 0.0.31.post2005241907 (golden) -> 0.1.1.post2209072238 lenet total macs: golden 2,307,720 -> "
            "now 2,293,000 (-14,720): conv bias adds no longer counted: -11,520 on conv1, -3,200 on conv2") in out
    assert f"reconcile check --update --golden-dir {golden}" in out


def test_no_golden_at_all_is_a_failure_not_a_pass(tmp_path):
    result = invoke_cli("check", "--tools", "thop", "--models", "lenet", "--golden-dir", str(tmp_path), "--quiet")
    assert result.returncode == 1 and f"MISSING  thop {THOP}: no golden file" in result.stdout


def test_update_rewrites_only_the_run_models_then_check_passes(tmp_path):
    golden = tmp_path / "golden"
    shutil.copytree(GOLDEN, golden)
    edit(golden / THOP_GOLDEN, "lenet", "conv1", "macs", 1)
    result = invoke_cli("check", "--update", "--tools", "thop", "--models", "lenet", "--golden-dir", str(golden),
                     "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"updated  thop {THOP}: 1 rows changed" in result.stdout
    assert (golden / THOP_GOLDEN).read_text() == (GOLDEN / THOP_GOLDEN).read_text()  # other models' rows kept
    again = invoke_cli("check", "--tools", "thop", "--models", "lenet", "--golden-dir", str(golden), "--quiet")
    assert again.returncode == 0 and f"ok       thop {THOP}: 14 rows match" in again.stdout


def test_bad_input_is_one_line_and_exit_2(cli):
    result = cli("check", "--tools", "nosuch")
    assert result.returncode == 2 and "unknown tool" in result.stderr


@pytest.mark.slow
def test_assert_counts_pins_a_users_own_model(tmp_path):
    import torch.nn as nn

    from reconcile import golden as gold
    from reconcile.golden import assert_counts

    def net(width):
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Flatten(), nn.Linear(width * 6 * 6, 10))

    golden = tmp_path / "counts"
    with pytest.raises(AssertionError, match="(?s)no golden file.*RECONCILE_UPDATE_GOLDEN=1 pytest"):
        assert_counts(net(4), (1, 3, 8, 8), tools=("thop",), golden=golden, name="mynet")
    assert_counts(net(4), (1, 3, 8, 8), tools=("thop",), golden=golden, name="mynet", update=True)
    assert_counts(net(4), (1, 3, 8, 8), tools=("thop",), golden=golden, name="mynet")
    # someone widens the conv: 4 -> 5 channels, 6*6 outputs each, 3*3*3 MACC per output: +36*27 = +972 on "0"
    with pytest.raises(AssertionError) as failure:
        assert_counts(net(5), (1, 3, 8, 8), tools=("thop",), golden=golden, name="mynet")
    text = failure.value.report.text()  # every row
    # 4*6*6 outputs * 27 = 3,888 -> 5*6*6 * 27 = 4,860: thop's convention is the same, the network is not; the
    # golden is read on the layer it was taken on (golden/layers/mynet-<hash>.csv: the name's safe stem), so both
    # sides decompose exactly
    assert (f"thop {THOP} mynet 0 macs: golden 3,888 (1*MACC) -> now 4,860 (1*MACC): the layer itself changed "
            "(MACC 3,888 -> 4,860, BIAS 144 -> 180") in text and "same convention (1*MACC)" in text
    # the message is the short diff: the layer's change once, the totals golden -> now. thop macs total: conv
    # 3,888 + linear 4*36*10 = 1,440 -> 4,860 + 5*36*10 = 1,800, i.e. 5,328 -> 6,660 (+1,332); params: conv
    # 4*27 + 4 = 112 -> 5*27 + 5 = 140, linear 1,440 + 10 = 1,450 -> 1,800 + 10 = 1,810: 1,562 -> 1,950 (+388)
    short = str(failure.value)
    assert short.startswith("mynet: 6 numbers of 1 tool(s) differ from their goldens"), short
    assert "layer 0: MACC 3,888 -> 4,860, BIAS 144 -> 180" in short and "moved: thop macs, thop params" in short
    assert "thop: macs 5,328 -> 6,660 (+1,332); params 1,562 -> 1,950 (+388)" in short
    assert max(len(line) for line in short.splitlines() if str(golden) not in line) < 120, short
    assert len(short.splitlines()) < 15, short
    assert gold.layers_path(golden, "mynet").is_file() and gold.layers_path(golden, "mynet").name.startswith("mynet-")


def _conv_net(bias: bool, stride: int):
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=stride, bias=bias), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * (6 // stride) ** 2, 10))


@pytest.mark.parametrize("change, expected", [
    # a bias added to the conv: torchstat's Flops counts conv bias adds (4*6*6 = 144 more); its convention did
    # not move, the layer gained BIAS terms
    ("bias", "the layer itself changed (BIAS 0 -> 144, BIAS_CH 0 -> 4, BIAS_PARAMS 0 -> 4); same convention "
             "(1*MACC + 1*BIAS)"),
    # stride 1 -> 2: 36 -> 9 positions; the BN after it sees 4*3*3 elements instead of 4*6*6
    # (batch 1: no "per sample"; the conv has no bias, so the convention's BIAS term is 0 and not printed)
    ("stride", "net 0 Flops: golden 3,888 (1*MACC) -> now 972 (1*MACC): "
               "the layer itself changed (MACC 3,888 -> 972, OUT 144 -> 36); same convention (1*MACC + 1*BIAS)"),
])
def test_a_network_change_is_not_read_as_a_convention_change(tmp_path, change, expected):
    from reconcile.golden import assert_counts

    golden = tmp_path / "counts"
    assert_counts(_conv_net(False, 1), (1, 3, 8, 8), tools=("torchstat",), golden=golden, name="net", update=True)
    with pytest.raises(AssertionError) as failure:
        assert_counts(_conv_net(change == "bias", 2 if change == "stride" else 1), (1, 3, 8, 8),
                      tools=("torchstat",), golden=golden, name="net")
    text = failure.value.report.text()
    assert expected in text, text
    assert "instead of" not in text and "now counted" not in text and "no longer counted" not in text, text


@pytest.mark.slow  # a pytest session in a subprocess (~10 s)
def test_assert_counts_failure_in_pytest_shows_the_diff_not_the_library(tmp_path):
    """What a user's CI log shows when their model changed: their test's line and the short diff; no source of
    reconcile/golden.py (its frame is hidden with __tracebackhide__)."""
    import subprocess
    import sys

    import torch.nn as nn

    from reconcile.golden import assert_counts

    def net(width: int):
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Flatten(), nn.Linear(width * 36, 10))

    # the golden of the 4-channel net, taken here; the user's test (a file, its own pytest) has 5 channels
    assert_counts(net(4), (1, 3, 8, 8), tools=("thop",), golden=tmp_path / "counts", name="mynet", update=True)
    (tmp_path / "test_mine.py").write_text(
        "import torch.nn as nn\n"
        "from reconcile.golden import assert_counts\n\n"
        "def test_mynet_counts():\n"
        "    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 36, 10))\n"
        "    assert_counts(net, (1, 3, 8, 8), tools=('thop',), golden='counts', name='mynet')\n")
    # a terminal's view: on CI (CI or BUILD_NUMBER set) pytest repeats the whole message in its short summary
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "BUILD_NUMBER")}
    env["RECONCILE_UPDATE_GOLDEN"] = ""
    failed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    out = failed.stdout
    assert failed.returncode == 1, out
    assert "CountsChanged: mynet: 6 numbers of 1 tool(s) differ from their goldens" in out, out
    assert "assert_counts(net, (1, 3, 8, 8)" in out  # the user's own line
    assert "golden.py" not in out and "def assert_counts" not in out and "report = check(" not in out, out
    assert len(out.splitlines()) < 30, out
