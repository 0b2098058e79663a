"""Output a person reads: `which`'s verdict as a short first line with its detail indented below, every line
under 120 characters; reasons shared by several tools said once; `formulas` on a token model with its totals
and the LLM conventions first (the per-layer table on request); the spec forms in every command's help; the
presets listed; close names offered for a mistyped model, tool or preset."""
from __future__ import annotations

import json

import pytest

from reference_models.presets import PRESETS

# Every counter that prints a compute total for gconv, with the totals they print for it (tests/golden/*.csv):
# thop macs = MACC = 16 outputs x 8x8 positions x 3*3*(8/4) = 18,432 (thop/vision/calc_func.py, no bias adds).
GCONV_MACC = 18_432
GCONV_TOTALS = [("thop", "macs"), ("fvcore", "flops"), ("ptflops_aten", "MACs"), ("calflops", "MACs"),
                ("deepspeed", "MACs"), ("ultralytics_thop", "macs"), ("torchinfo", "Mult-Adds"),
                ("ptflops_pytorch", "MACs")]


def test_which_verdict_is_a_short_line_with_its_detail_indented(cli, tmp_path):
    from reconcile import adapters

    from reconcile.identity import identify
    from reconcile.models import reference

    records = tmp_path / "records.csv"
    spec = reference("gconv")  # the records say which model exactly: its input shape, batch and source hash
    shape, batch, source = "x".join(map(str, spec.input_shape)), spec.input_shape[0], identify(spec).source_hash
    rows = [f"gconv,torch,{tool},{adapters.get(tool).version()},__total__,,compute,{metric},{GCONV_MACC},ok,,"
            f"{shape},{batch},{source}" for tool, metric in GCONV_TOTALS]
    records.write_text("model,framework,tool,tool_version,layer,layer_kind,quantity,metric,value,status,message,"
                       "input_shape,batch,source_hash\n" + "\n".join(rows) + "\n")
    result = cli("which", "gconv", "18432", "--no-run", "--records", str(records),
                 "--tools", ",".join(t for t, _ in GCONV_TOTALS), "--cache-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("gconv 18432: multiply-accumulates") and "; " not in lines[0]
    assert lines[1].startswith("  printed by ")  # the detail, indented below the verdict
    printed_by = " ".join(line.strip() for line in lines[1:] if not line.startswith("  unit") and line.strip()
                          and not line[0].isdigit())
    for tool, metric in GCONV_TOTALS:  # wrapped, nothing dropped
        assert f"{tool} {metric} 18,432" in printed_by
    assert max(len(line) for line in lines) < 120, max(lines, key=len)


def test_a_reason_shared_by_tools_is_said_once_with_a_count():
    from reconcile.render import once

    tools = ["thop", "torchstat", "torchsummary", "fvcore", "ptflops_pytorch", "ptflops_aten", "torchinfo",
             "ultralytics_thop", "calflops", "deepspeed"]
    reason = "MetaDeviceError: model 'preset:gpt3-175b' is built on the meta device: {} needs real tensors"
    pairs = [(tool, reason.format(tool)) for tool in tools] + [("netscope", "no Caffe prototxt")]
    said = once(pairs, "tools")
    assert said == [("10 tools (thop, torchstat, torchsummary, fvcore, ...)", reason.format("each"), 10),
                    ("netscope", "no Caffe prototxt", 1)]


@pytest.fixture(scope="module")
def gpt2_small_run():  # three traces of a small GPT-2 in job processes: seconds
    """formulas on a two-layer GPT-2 at 16 tokens: the default output, --layers, and the JSON (its layers)."""
    from conftest import invoke_cli

    spec = ("formulas", "hf:gpt2?n_layer=2", "--seq-len", "16")
    return invoke_cli(*spec), invoke_cli(*spec, "--layers"), json.loads(invoke_cli(*spec, "--format", "json").stdout)


@pytest.mark.slow
def test_formulas_on_a_token_model_puts_the_llm_table_first(gpt2_small_run):
    default, with_layers, data = gpt2_small_run
    assert default.returncode == 0 and with_layers.returncode == 0, default.stderr + with_layers.stderr
    layers = [row for row in data["layers"] if row["layer"] != "__total__"]
    lines = default.stdout.splitlines()
    assert "LLM conventions at seq_len 16" in lines[2]  # after the title and the document's totals
    assert not any(line.startswith(layers[0]["layer"] + " ") for line in lines)  # no per-layer row
    assert lines[-1] == f"per-layer table ({len(layers):,} layers): --layers"
    # a note shared by many layers is one line with their count (GPT2's residual adds: 2 per block + positions)
    adds = [row["layer"] for row in layers if row["note"] == "no document formula for add"]
    assert len(adds) > 2
    assert sum(line.startswith("note: no document formula for add:") for line in lines) == 1
    assert f"note: no document formula for add: {len(adds)} layers ({', '.join(adds[:2])}," in " ".join(
        line.strip() for line in lines)
    # --layers: the same summary and table first, then every layer
    rows = with_layers.stdout.splitlines()
    table_at = next(i for i, line in enumerate(rows) if line.startswith("LLM conventions"))
    first_layer_at = next(i for i, line in enumerate(rows) if line.startswith(layers[0]["layer"] + " "))
    assert table_at < first_layer_at and sum(line.split(" ")[0] in {r["layer"] for r in layers}
                                             for line in rows) == len(layers)


@pytest.mark.parametrize("command", ["formulas", "run", "which", "check", "models"])
def test_every_command_help_names_the_spec_forms(cli, command):
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for form in ("PATH.py:FACTORY", "module:PACKAGE.MODULE:FACTORY", "hf:MODEL_TYPE", "preset:NAME", ".prototxt",
                 "reconcile models --presets"):
        assert form in text, (command, form)


def test_models_lists_the_presets_with_their_papers(cli):
    listed = json.loads(cli("models", "--presets", "--format", "json").stdout)
    assert [row["preset"] for row in listed] == [f"preset:{name}" for name in PRESETS]
    assert all(row["citation"] and row["paper_params"] for row in listed)
    table = cli("models").stdout
    footer = " ".join(table[table.index("presets (preset:NAME"):].split())
    assert all(name in footer for name in PRESETS)


@pytest.mark.parametrize("args, suggested", [
    (("formulas", "resnet50"), "(did you mean resnet50_v1, resnet50_v15"),
    (("formulas", "vit"), "(did you mean hf:vit"),
    (("formulas", "gpt3-175b"), "(did you mean preset:gpt3-175b?)"),
    (("formulas", "preset:llama7b"), "unknown preset 'llama7b' (did you mean llama-7b"),
    (("run", "--models", "lenet", "--tools", "thopp"), "unknown tool 'thopp' (did you mean thop?)"),
    (("which", "vgg", "15.3e9"), "(did you mean vgg16?)"),
])
def test_a_mistyped_name_gets_the_close_ones(cli, args, suggested):
    result = cli(*args)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert suggested in result.stderr, result.stderr
