"""`reconcile which` and the published numbers: ranking, printed precision, the run cache, the report section.

Numbers are derived by hand per layer type (LeNet: seed/000's own table; ResNet-50 v1 from its architecture table,
the same arithmetic as tests/test_published.py) or taken from reference_models/published.csv as printed."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

import reference_models
from reconcile import which
from reconcile.errors import UserError

# LeNet (seed/000): MACC 288,000 + 1,600,000 + 400,000 + 5,000; conv bias adds 20*24*24 + 50*8*8; FC bias 500 + 10
LENET_MACC, LENET_CONV_BIAS, LENET_FC_BIAS = 2_293_000, 11_520 + 3_200, 510
R50_V1_MACC, R50_FC = 3_857_973_248, 2048 * 1000  # the must-show; FC 2048 -> 1000


def rows(csv_text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(csv_text)))


# ------------------------------------------------------------------------------------------------ printed numbers
@pytest.mark.parametrize("text, value, half", [
    ("3.8e9", "3.8e9", "5e7"), ("3.8x10^9", "3.8e9", "5e7"), ("1.8×10^9", "1.8e9", "5e7"),
    ("300M", "3e8", "5e7"), ("15.3G", "1.53e10", "5e7"), ("2,307,720", "2307720", "5"), ("4.20M", "4.2e6", "5e3"),
    ("25557032", "25557032", "0.5")])
def test_parse_value_keeps_the_printed_precision(text, value, half):
    printed = which.parse_value(text)
    assert printed.value == Decimal(value) and printed.half_unit == Decimal(half)


@pytest.mark.parametrize("text", ["", "abc", "-3", "0", "3.8e", "1.2.3"])
def test_parse_value_refuses_non_numbers(text):
    with pytest.raises(UserError):
        which.parse_value(text)


# ------------------------------------------------------------------------------------------------ the must-shows
def test_lenet_2307720_is_thop_before_0_1(cli):
    result = cli("which", "lenet", "2307720", "--tools", "", "--format", "csv")
    assert result.returncode == 0, result.stderr
    ranking = rows(result.stdout)
    assert list(ranking[0])[:7] == ["rank", "tool", "metric", "convention", "family", "value", "relative_error"]
    first = ranking[0]
    assert first["match"] == "exact" and int(first["value"]) == LENET_MACC + LENET_CONV_BIAS == 2_307_720
    assert first["convention"].startswith("MACC plus conv bias adds, FC bias not counted (thop before 0.1)")
    assert float(first["relative_error"]) == 0.0 and "conv bias adds (FC bias not counted)" in first["explanation"]
    # the ambiguity is shown, not hidden: LeNet's pools read exactly the conv outputs (conv1 20x24x24 -> pool1,
    # conv2 50x8x8 -> pool2), so "MACC + pool input elements" is exact too
    exact = [r["convention"] for r in ranking if r["match"] == "exact"]
    assert "MACC + IN[maxpool]" in exact
    # the document's own numbers are listed where they fall: MACC + all biases is 510 more
    assert any(int(r["value"]) == LENET_MACC + LENET_CONV_BIAS + LENET_FC_BIAS for r in ranking)


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_resnet50_v1_3_8e9_is_a_multiply_accumulate_count():
    result = which.which("resnet50_v1", "3.8e9", tools=[])
    first = result.ranked[0]
    assert first.candidate.family == "1 op per MACC"
    # the closest: conv MACC without the FC layer (3,855,925,248), 1.47% above the printed 3.8e9
    assert first.candidate.value == R50_V1_MACC - R50_FC == 3_855_925_248
    assert first.match == which.WITHIN and abs(first.relative_error - 0.01472) < 1e-4
    # nothing counted at 2 FLOPs per MACC comes anywhere near
    assert all(r.candidate.family != "2 FLOPs per MACC" for r in result.ranked)


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_resnet50_v1_7_7e9_is_two_flops_per_macc():
    result = which.which("resnet50_v1", "7.7e9", tools=[])
    first = result.ranked[0]
    assert first.candidate.family == "2 FLOPs per MACC" and first.candidate.convention.startswith("2 FLOPs per MACC")
    assert first.candidate.value == 2 * R50_V1_MACC == 7_715_946_496 and first.match == which.AS_PRINTED
    # the document's FLOPs (2*MACC + FC bias + pools as input elements) also rounds to 7.7e9; it is listed
    doc = next(r for r in result.ranked if r.candidate.convention.startswith("document FLOPs"))
    # max pool input 64x112x112, global avg pool input 2048x7x7
    assert doc.candidate.value == 2 * R50_V1_MACC + 1000 + 64 * 112 * 112 + 2048 * 7 * 7
    assert doc.match == which.AS_PRINTED


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_cli_table_and_errors(cli):
    result = cli("which", "resnet50_v1", "7.7e9", "--tools", "", "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert "2 FLOPs per MACC" in result.stdout.splitlines()[2] and "more (--limit 0 shows all)" in result.stdout
    for args, says in ((("which", "lenet", "lots"), "cannot read 'lots'"),
                       (("which", "nosuchmodel", "1e9"), "unknown model"),
                       (("which", "lenet", "1e6", "--tolerance", "-1"), "tolerance"),
                       (("which", "lenet", "1e6", "--tools", "nosuchtool"), "unknown tool")):
        bad = cli(*args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and says in bad.stderr, (args, bad.stderr)


# ------------------------------------------------------------------------------------------------ params, batch
@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_params_conventions():
    result = which.which("resnet50_v15", "25557032", quantity="params", tools=[])
    assert result.ranked[0].match == which.EXACT and result.ranked[0].candidate.convention.startswith("all parameters")
    # Keras counts BN moving mean and variance too: + 2 x (sum of BN channels)
    keras = next(r for r in which.which("resnet50_v15", "25.6M", quantity="params", tools=[]).ranked
                 if r.candidate.convention.startswith("Keras total params"))
    assert keras.candidate.value == 25_557_032 + 53_120  # keras.applications.ResNet50: 53,120 non-trainable
    # MobileNetV2's printed 3.4M is reproduced by no convention: the nearest leaves out biases and BN (2% above)
    mnv2 = which.which("mobilenet_v2", "3.4M", quantity="params", tools=[])
    assert mnv2.ranked[0].match == which.WITHIN and mnv2.ranked[0].candidate.value == 3_469_760


def test_per_sample_conventions_appear_with_a_batch():
    per_batch = which.which("lenet", "2293000", tools=[], batch=4)
    first = per_batch.ranked[0]
    # at batch 4 the MACC is 4 x 2,293,000; a tool that printed 2,293,000 counted per sample
    assert first.match == which.EXACT and first.candidate.convention == "per sample: MACC"
    assert "per sample (the batch of 4 divided out)" in first.candidate.explanation


def test_outside_tolerance_keeps_the_closest():
    result = which.which("gconv", "1e9", tools=[], tolerance=0.01)
    assert result.ranked and all(r.match == which.OUTSIDE for r in result.ranked) and len(result.ranked) <= 5


# ------------------------------------------------------------------------------------------------ tools and caching
def test_tool_runs_are_cached_and_named(tmp_path, cli):
    cache = str(tmp_path / "runs")
    args = ("which", "gconv", "18432", "--tools", "thop,torchstat", "--cache-dir", cache, "--records", "",
            "--format", "csv")
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    ranking = rows(first.stdout)
    thop = next(r for r in ranking if r["tool"].startswith("thop "))
    # gconv: 16 outputs x 8x8 positions x 3*3*(8/4) weights = 18,432 MACC; thop 0.1.1 counts MACC only
    assert thop["match"] == "exact" and thop["convention"] == "= MACC (the document's macc)"
    torchstat = next(r for r in ranking if r["tool"].startswith("torchstat ") and r["metric"] == "Flops")
    assert int(torchstat["value"]) == 18_432 + 16 * 8 * 8  # + one bias add per output element
    folder = next((tmp_path / "runs").iterdir())
    assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["thop", "torchstat"]
    again = cli(*args[:-2])  # table form: the note says where the numbers came from
    assert again.returncode == 0 and "cached runs from" in again.stdout and "ran " not in again.stdout
    offline = cli("which", "gconv", "18432", "--tools", "fvcore", "--cache-dir", cache, "--no-run", "--records", "")
    assert "no cached run of fvcore" in offline.stdout


def test_records_csv_is_reused_when_it_covers_the_model(tmp_path):
    records = tmp_path / "records.csv"
    from reconcile import adapters

    version = adapters.get("thop").version()
    records.write_text("model,framework,tool,tool_version,layer,layer_kind,quantity,metric,value,status,message\n"
                       f"gconv,torch,thop,{version},__total__,,compute,macs,18432,ok,\n")
    result = which.which("gconv", "18432", tools=["thop"], run=False, report_records=records,
                         cache_dir=str(tmp_path / "none"))
    assert result.notes == [f"tool numbers from {records}"]
    assert any(r.candidate.tool == "thop" and r.match == which.EXACT for r in result.ranked)


# ------------------------------------------------------------------------------------------------ published numbers
def test_published_csv_rows_are_complete():
    rows_ = which.published_numbers()
    assert {"resnet50_v1", "resnet18", "vgg16", "alexnet", "mobilenet_v1", "mobilenet_v2"} <= {r["model"]
                                                                                              for r in rows_}
    for row in rows_:
        assert row["model"] in reference_models.MODELS and row["quantity"] in ("compute", "params")
        which.parse_value(row["value"])
        assert row["unit"] and row["counts"] and row["verified"] in ("yes", "partly", "unverified")
        assert "arXiv" in row["citation"] or "not a paper" in row["citation"] or "no arXiv id" in row["citation"]
    first = next(r for r in rows_ if r["model"] == "resnet50_v1")
    assert (first["value"], first["unit"]) == ("3.8e9", "FLOPs") and "multiply-adds" in first["counts"]
    assert "1512.03385" in first["citation"]


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_published_section_blocks(tmp_path):
    from reconcile.report import Heading, Table, render_md

    blocks = which.published_section(records=None, cache_dir=str(tmp_path))  # analytic conventions only
    assert isinstance(blocks[0], Heading) and "Published numbers" in blocks[0].text
    table = next(b for b in blocks if isinstance(b, Table)).frame
    assert len(table) == len(which.published_numbers())
    by_key = {(r.model, r.printed): r for r in table.itertuples()}
    assert by_key["mobilenet_v1", "569"].match == "as printed"  # 568,740,352 rounds to 569 million
    assert by_key["mobilenet_v2", "300M"].value == 300_774_272
    # VGG-16's 15.3 billion is what the conv layers alone cost: the three FC layers (123,633,664 MACC) left out
    vgg = by_key["vgg16", "15.3 billion"]
    assert vgg.value == 15_470_264_320 - (25088 * 4096 + 4096 * 4096 + 4096 * 1000) and vgg.match == "as printed"
    assert "analytic conventions only" in render_md(blocks)
