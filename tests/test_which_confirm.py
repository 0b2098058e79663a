"""`reconcile which` answers from the conventions first: no counting tool runs unless asked (--confirm, --tools) or
already cached; confirmation runs only the tools whose catalogued convention can land in the candidate families.
Follow-ups in the same code: recurrent layers are weighted layers; a mixture of experts' active parameters are a
family of their own on the layer IR.

Numbers by hand: LeNet's MACC from the reference document's table (tests/test_which.py), an LSTM's gate products
(nn.LSTM's documented equations: 4 gates, each W_ih x and W_hh h per step), a router picking 2 of 4 experts."""
from __future__ import annotations

import pytest

from reconcile import api, which

# LeNet (the document's table): MACC 288,000 + 1,600,000 + 400,000 + 5,000
LENET_MACC = 2_293_000


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(folder))
    return folder


def _no_tool_runs(monkeypatch) -> list:
    """Every call that would run a tool job, recorded (and refused: the default path must not get there)."""
    calls = []

    def refuse(jobs, *args, **kwargs):
        calls.append([job.tool for job in jobs])
        raise AssertionError(f"a tool job ran: {[job.tool for job in jobs]}")

    monkeypatch.setattr(api, "run_cached", refuse)
    return calls


def test_the_default_answer_runs_no_tool(empty_cache, monkeypatch):
    calls = _no_tool_runs(monkeypatch)
    result = which.which("lenet", str(LENET_MACC), report_records=None)
    assert result.verdict() == f"lenet {LENET_MACC}: multiply-accumulates of conv+FC layers (2,293,000, exact)"
    assert calls == [] and not result.tools_consulted
    assert not any(r.candidate.source == which.TOOL for r in result.ranked)
    # the cache holds no tool's records
    assert not (empty_cache / "results").exists()
    # the answer says how to confirm it
    assert any(n.startswith("conventions only; --confirm runs the tools that can land here: ") for n in result.notes)


def test_the_command_runs_no_tool_by_default(empty_cache, cli):
    done = cli("which", "lenet", str(LENET_MACC), "--records", "")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == f"lenet {LENET_MACC}: multiply-accumulates of conv+FC layers (2,293,000, exact)"
    assert not (empty_cache / "results").exists()


def _confirmed_tools(monkeypatch, value: str) -> list[str]:
    """The tools `which --confirm` would run on LeNet for `value` (run_cached intercepted: no tool runs here)."""
    asked = []

    def record(jobs, *args, **kwargs):
        asked.extend(job.tool for job in jobs)
        return []

    monkeypatch.setattr(api, "run_cached", record)
    which.which("lenet", value, confirm=True, report_records=None)
    return asked


def test_confirmation_runs_only_the_tools_that_can_land(empty_cache, monkeypatch):
    # 2,293,000 is LeNet's multiply-accumulate count; every other family is 2x away (outside the tolerance).
    # thop counts 1 per multiply-accumulate (conventions/catalogue/thop.py, thop/vision/basic_hooks.py
    # count_convNd: output elements x kernel products), so it can land; FlopCounterMode counts 2 FLOPs per
    # multiply-accumulate (conventions/catalogue/torch_flop_counter.py, torch/utils/flop_counter.py conv_flop_count:
    # 2 x ...) and torchsummary no compute at all: neither can, neither runs
    macs = _confirmed_tools(monkeypatch, str(LENET_MACC))
    assert "thop" in macs and "torch_flop_counter" not in macs and "torchsummary" not in macs
    assert len(macs) == len(set(macs))  # each tool once
    # 4,586,000 = 2 x MACC: now FlopCounterMode's convention lands and thop's cannot
    flops = _confirmed_tools(monkeypatch, str(2 * LENET_MACC))
    assert "torch_flop_counter" in flops and "thop" not in flops


def test_explicit_tools_are_the_ones_asked_for(empty_cache, monkeypatch):
    asked = []
    monkeypatch.setattr(api, "run_cached", lambda jobs, *a, **k: asked.extend(j.tool for j in jobs) or [])
    which.which("lenet", str(LENET_MACC), tools=["torch_flop_counter"], report_records=None)
    assert asked == ["torch_flop_counter"]  # named by the user: run even though it cannot land here


def test_a_table_is_confirmed_row_by_row(empty_cache, monkeypatch, tmp_path):
    # a table of LeNet's MACC and 2 x MACC: by default no tool runs; --confirm asks, per row, the tools that can land
    table = tmp_path / "table.csv"
    table.write_text(f"model,printed\nlenet,{LENET_MACC}\nlenet,{2 * LENET_MACC}\n")
    calls = _no_tool_runs(monkeypatch)
    which.which_table(str(table), report_records=None)
    assert calls == []
    asked = []
    monkeypatch.setattr(api, "run_cached", lambda jobs, *a, **k: asked.append([j.tool for j in jobs]) or [])
    result = which.which_table(str(table), report_records=None, tools=None, confirm=True)
    assert len(asked) == 2 and "thop" in asked[0] and "torch_flop_counter" not in asked[0]
    assert "torch_flop_counter" in asked[1] and "thop" not in asked[1]
    assert [row.result.top.id for row in result.rows] == ["macs", "flops"]


@pytest.mark.slow  # resolves a preset in a job (seconds)
def test_training_compute_measures_only_when_asked(monkeypatch):
    from reconcile import which_training

    def refuse(*args, **kwargs):
        raise AssertionError("measured a training step by default")

    monkeypatch.setattr(which_training, "measured_candidate", refuse)
    # GPT-3 Small: 125,226,240 parameters as built (tests/test_which.py) x 6 x 300e9 tokens = 2.254e20
    result = which.which("preset:gpt3-125m", "2.25E+20", tokens=300e9, report_records=None)
    assert result.top.id == "6nd" and result.measured is None
    assert any("--confirm (or --measure)" in n for n in result.notes)


@pytest.mark.slow  # resolves a preset in a job (seconds)
def test_a_resolved_preset_is_kept_in_the_cache(empty_cache, monkeypatch):
    from reconcile import jobs

    first = which._resolve("preset:gpt3-125m", None, None, None, trace=False)

    def refuse(*args, **kwargs):
        raise AssertionError("a job ran to resolve a spec the cache has")

    monkeypatch.setattr(jobs, "call_in_job", refuse)
    again = which._resolve("preset:gpt3-125m", None, None, None, trace=False)
    assert again == first and again is not first
    # GPT-3 Small as built: 125,226,240 parameters (tests/test_which.py test_train_compute_is_json_too)
    assert again.config["n_params"] == 125_226_240 and again.input_shape == (1, 1024)
    # the whole answer runs no job either
    assert which.which("preset:gpt3-125m", "125M params", report_records=None).top.id == "all"
    # another request (a sequence length) is another entry: resolved by a job
    with pytest.raises(AssertionError, match="a job ran"):
        which._resolve("preset:gpt3-125m", None, None, 128, trace=False)


@pytest.mark.slow  # runs thop on LeNet (a few seconds)
def test_cached_tool_runs_are_used_and_printed_as_they_land(empty_cache, monkeypatch):
    class Notes:
        def __init__(self):
            self.lines = []

        def __call__(self, *args, **kwargs):
            raise AssertionError("the runner's own line: the landing printer should replace it")

        def note(self, text):
            self.lines.append(text)

    printed = Notes()
    first = which.which("lenet", str(LENET_MACC), tools=["thop"], report_records=None, progress=printed)
    # thop 0.1.1 prints LeNet's MACC (tests/test_which.py: its catalogued convention is 1*MACC)
    assert [line.split(", ", 1)[0] for line in printed.lines] == ["[1/1] thop"]
    assert printed.lines[0].endswith(f"macs 2,293,000 exact [macs]")
    assert "printed by thop macs 2,293,000" in first.verdict()
    # now cached: the default answer consults it and runs nothing
    calls = _no_tool_runs(monkeypatch)
    again = which.which("lenet", str(LENET_MACC), report_records=None)
    assert calls == [] and again.tools_consulted and "printed by thop macs 2,293,000" in again.verdict()


# ------------------------------------------------------------------------------------------------ follow-ups
LSTM_FILE = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


def build():
    return Net()
"""


def test_recurrent_layers_are_weighted(tmp_path):
    (tmp_path / "net.py").write_text(LSTM_FILE)
    # 5 steps x 4 gates x 16 units x (8 inputs + 16 hidden) products = 7,680 multiply-accumulates
    macc = 5 * 4 * 16 * (8 + 16)
    result = which.which(None, str(macc), model_file=f"{tmp_path / 'net.py'}:build", input_shape="1,5,8", tools=[])
    assert result.top.id == "macs" and result.top.best.match == which.EXACT
    assert result.top.name == "multiply-accumulates of recurrent layers"
    # with the two bias adds per gate unit and step (b_ih, b_hh): 5 x 4 x 16 x 2 = 640 more
    biased = which.which(None, str(macc + 640), model_file=f"{tmp_path / 'net.py'}:build", input_shape="1,5,8",
                         tools=[])
    assert biased.top.best.match == which.EXACT and "with bias adds" in biased.top.best.candidate.explanation


MOE_FILE = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyMoE(nn.Module):
    def __init__(self):
        super().__init__()
        self.router = nn.Linear(8, 4, bias=False)
        self.w_in = nn.Parameter(torch.randn(4, 8, 12) * 0.1)
        self.w_out = nn.Parameter(torch.randn(4, 12, 8) * 0.1)
        table = torch.zeros(8, 4)
        for t in range(8):
            table[t, t % 4], table[t, (t + 1) % 4] = 2.0, 1.0
        self.register_buffer("position_logits", table)

    def forward(self, x):
        weights, experts = (self.router(x) + self.position_logits).softmax(-1).topk(2, dim=-1)
        out = torch.zeros_like(x)
        for e in range(4):
            token, slot = torch.where(experts == e)
            hidden = F.gelu(x[token] @ self.w_in[e]) @ self.w_out[e]
            out = out.index_add(0, token, hidden * weights[token, slot, None])
        return out


def build():
    torch.manual_seed(0)
    return TinyMoE()
"""


def test_active_parameters_of_a_mixture_of_experts_are_a_family(tmp_path):
    (tmp_path / "moe.py").write_text(MOE_FILE)
    spec = dict(model_file=f"{tmp_path / 'moe.py'}:build", input_shape="8,8", tools=[], quantity="params")
    # all: router 8 x 4 + 4 experts x (8 x 12 + 12 x 8) = 800; a token multiplies the router and 2 of the 4
    # experts: 32 + 2/4 x 768 = 416
    every, active = 8 * 4 + 4 * (8 * 12 + 12 * 8), 8 * 4 + 2 * (8 * 12 + 12 * 8)
    assert (every, active) == (800, 416)
    result = which.which(None, str(active), **spec)
    assert result.top.id == "active" and result.top.best.match == which.EXACT
    assert which.which(None, str(every), **spec).top.id == "all"


def test_confirming_tools_of_one_model_run_in_parallel():
    from reconcile import adapters
    from reconcile.models import reference
    from reconcile.runner import TORCH_LANES, Job, plan_lanes

    tools = ("thop", "torchstat", "fvcore", "tf_profiler")
    assert [adapters.get(t).WORKER for t in tools] == ["torch", "torch", "torch", "tf"]
    jobs = [Job(tool, reference("lenet")) for tool in tools]
    spread = plan_lanes(jobs, [True] * len(jobs), spread=True)
    lanes = {jobs[i].tool: lane for lane, i, ir in spread if not ir}
    # the three torch tools go round both torch workers; TensorFlow's runs on its own
    assert TORCH_LANES == 2 and lanes == {"thop": "torch#0", "torchstat": "torch#1", "fvcore": "torch#0",
                                          "tf_profiler": "tf"}
    # each torch worker traces the model first (the second finds its IR in the disk cache), before its tools
    assert [(lane, ir) for lane, _, ir in spread] == [("torch#0", True), ("torch#0", False), ("torch#1", True),
                                                     ("torch#1", False), ("torch#0", False), ("tf", False)]
    # a run's default: one model's torch jobs in one worker, its IR job once
    default = plan_lanes(jobs, [True] * len(jobs))
    assert {lane for lane, i, ir in default if not ir and jobs[i].tool != "tf_profiler"} == {"torch#0"}
    assert sum(ir for _, _, ir in default) == 1
