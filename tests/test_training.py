"""Training compute measured (reconcile/frontends/torch_training.py, conventions/training.py, reconcile/training.py):
hand arithmetic on small models, FlopCounterMode over forward + backward as an independent witness of the
totals, torch.utils.checkpoint (transformers' gradient checkpointing) as the witness of full recomputation, and
the MFU formulas of the training frameworks written out by hand."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from fractions import Fraction

import pytest

from conventions import llm
from conventions import terms as T
from conventions import training as TR

torch = pytest.importorskip("torch")
nn = torch.nn

from reconcile.frontends.torch_training import find_blocks, trace_training  # noqa: E402


def mlp():
    # Linear(8,16) -> ReLU -> Linear(16,32) -> ReLU -> Linear(32,4)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


def by_name(trace):
    return {layer.name: layer for layer in trace.layers}


def test_three_layer_mlp_with_frozen_middle_layer_by_hand():
    trace = trace_training(mlp(), torch.zeros(5, 8), frozen=["2.*"])  # parameters 2.weight, 2.bias
    layers = by_name(trace)
    # batch 5; a Linear(n_in, n_out) forward is 5 * n_in * n_out multiply-accumulates
    # layer 0 (8 -> 16): forward 5*8*16 = 640; its input is data: no input gradient; trainable: weight gradient 640
    assert (layers["0"].fwd_macc, layers["0"].dgrad_macc, layers["0"].wgrad_macc) == (640, 0, 640)
    # layer 2 (16 -> 32), frozen: forward 5*16*32 = 2,560; its input comes from trainable layer 0, so the input
    # gradient is needed (2,560); no weight gradient
    assert (layers["2"].fwd_macc, layers["2"].dgrad_macc, layers["2"].wgrad_macc) == (2560, 2560, 0)
    # layer 4 (32 -> 4): forward 5*32*4 = 640; input gradient 640; weight gradient 640
    assert (layers["4"].fwd_macc, layers["4"].dgrad_macc, layers["4"].wgrad_macc) == (640, 640, 640)
    assert trace.forward == 640 + 2560 + 640 == 3840
    assert trace.backward == (0 + 640) + (2560 + 0) + (640 + 640) == 4480
    # (forward + backward) / forward = 8,320 / 3,840 = 13/6 = 2.1667, not 3.0
    assert Fraction(trace.forward + trace.backward, trace.forward) == Fraction(13, 6)
    assert trace.ratio == pytest.approx(4480 / 3840)
    assert trace.frozen_params == 16 * 32 + 32 and trace.trainable_params == (8 * 16 + 16) + (32 * 4 + 4)
    assert trace.flops == 2 * (3840 + 4480)
    assert "frozen" in layers["2"].why() and "no input gradient" in layers["0"].why()


def test_everything_trainable_mlp_is_three_forwards_minus_the_first_input_gradient():
    trace = trace_training(mlp(), torch.zeros(5, 8))
    # every layer: forward, input gradient and weight gradient, except layer 0's input gradient (640)
    assert trace.forward == 3840
    assert trace.backward == 2 * 3840 - 640
    skipped_d, skipped_w = TR.skipped_gradients(trace)
    assert (skipped_d, skipped_w) == (Fraction(2 * 640, 5), 0)  # FLOPs per sample


def test_small_cnn_first_conv_has_no_input_gradient():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2), nn.Flatten(), nn.Linear(36, 5))
    trace = trace_training(model, torch.zeros(2, 3, 10, 10))
    layers = by_name(trace)
    # conv 0: out 8x8x8, 3*3*3 weights per output: 2 * 8*8*8 * 27 = 27,648; conv 2: out 4x3x3, 8*3*3 per output:
    # 2 * 36 * 72 = 5,184; linear 36 -> 5 at batch 2: 360
    assert (layers["0"].fwd_macc, layers["2"].fwd_macc, layers["4"].fwd_macc) == (27648, 5184, 360)
    assert layers["0"].dgrad_macc == 0 and layers["0"].wgrad_macc == 27648  # convolution_backward mask (F, T, T)
    assert (layers["2"].dgrad_macc, layers["2"].wgrad_macc) == (5184, 5184)
    assert trace.backward == 27648 + 2 * 5184 + 2 * 360
    # "3 x forward" is above the measured step by exactly conv 0's input gradient (2 FLOPs per product, per sample)
    three = next(c for c in TR.generic_comparisons(trace, 0) if c.name.startswith("3 x forward"))
    assert three.value - three.measured == Fraction(2 * 27648, 2)
    assert dict(three.differences) == {"input gradients autograd skips (first layer, frozen)": Fraction(27648)}


def test_attention_products_get_two_input_gradients_and_selective_recompute_repeats_them():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(16, 48, bias=False)

        def forward(self, x):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            return (q @ k.transpose(-1, -2)).softmax(-1) @ v

    class Net(nn.Module):
        def __init__(self, n=2):
            super().__init__()
            self.blocks = nn.ModuleList([Attn() for _ in range(n)])

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    trace = trace_training(Net(), torch.zeros(1, 6, 16), recompute="selective")
    layers = by_name(trace)
    # per block: qkv 6 tokens x 16 x 48 = 4,608; QK^T 6x6x16 = 576 and AV 6x6x16 = 576 -> ATTN 1,152
    assert layers["blocks.0.qkv"].fwd_macc == 4608 and layers["blocks.0"].fwd_attn == 1152
    # QK^T needs dQ and dK, AV needs dA and dV: 2 x 1,152; an attention product has no weight gradient
    assert layers["blocks.0"].dgrad_attn == 2304 and layers["blocks.0"].wgrad_macc == 0
    # the first block's qkv reads the data: no input gradient; the second block's does
    assert layers["blocks.0.qkv"].dgrad_macc == 0 and layers["blocks.1.qkv"].dgrad_macc == 4608
    # selective recomputation (Korthikanti et al. §4) repeats QK^T and AV only
    assert trace.total("recompute_attn") == 2 * 1152 and trace.total("recompute_macc") == 0
    assert find_blocks(Net()) == ["blocks.0", "blocks.1"]
    # the printed table folds blocks equal to the one before: blocks.0 differs (its qkv needs no input gradient),
    # blocks.2 equals blocks.1
    from reconcile.training_report import fold_blocks, layer_rows

    rows = fold_blocks(layer_rows(trace_training(Net(3), torch.zeros(1, 6, 16))))
    assert [r["layer"] for r in rows] == ["blocks.0.qkv", "blocks.0", "blocks.1.qkv", "blocks.1",
                                          "... 1 more block up to blocks.2", "__total__"]


def test_embedding_weight_gradient_is_a_scatter_add():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 8)
            self.out = nn.Linear(8, 50, bias=False)

        def forward(self, ids):
            return self.out(self.emb(ids))

    trace = trace_training(Tiny(), torch.zeros(2, 7, dtype=torch.long), token_model=True)
    layers = by_name(trace)
    assert layers["emb"].params == 50 * 8 and TR.position_params(trace) == 0  # a token table, not positions
    # 14 tokens x 8 dims looked up: the gradient scatter-adds 112 elements into the table; no products
    assert layers["emb"].embed_wgrad == 2 * 7 * 8 and layers["emb"].forward == 0
    assert layers["out"].fwd_macc == 14 * 8 * 50
    # the head's input (the embedding output) needs a gradient because the table trains
    assert layers["out"].dgrad_macc == layers["out"].wgrad_macc == 14 * 8 * 50
    assert trace.units == 14 and trace.unit == "token"


def _flop_counter_total(model, example):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        out = model(example)
        out = out.logits if hasattr(out, "logits") else out
        out.sum().backward()
    return counter.get_total_flops()


def test_flop_counter_mode_over_forward_and_backward_witnesses_the_totals():
    # torch's own formulas (mm, addmm, bmm, convolution_backward) over the same step: total / 2 = our products
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2), nn.Flatten(), nn.Linear(36, 5))
    trace = trace_training(model, torch.zeros(2, 3, 10, 10))
    model2 = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2), nn.Flatten(), nn.Linear(36, 5))
    assert _flop_counter_total(model2, torch.zeros(2, 3, 10, 10)) == 2 * (trace.forward + trace.backward)


def _tiny_gpt2(**extra):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=16, attn_implementation="eager",
                        use_cache=False, **extra)
    return GPT2LMHeadModel(config)


@pytest.mark.slow
def test_gpt2_witness_and_full_recompute_against_gradient_checkpointing():
    pytest.importorskip("transformers")
    ids = torch.zeros(1, 16, dtype=torch.long)
    trace = trace_training(_tiny_gpt2(), ids, recompute="full", token_model=True)
    plain = _flop_counter_total(_tiny_gpt2(), ids)
    assert plain == 2 * (trace.forward + trace.backward - trace.total("recompute_macc") - trace.total("recompute_attn"))
    # transformers' gradient checkpointing (torch.utils.checkpoint on every GPT2Block): the extra FLOPs it costs,
    # measured by FlopCounterMode, are the blocks' forward products once more, as accounted
    checkpointed = _tiny_gpt2()
    checkpointed.activation_checkpointing_enable({"use_reentrant": False})
    checkpointed.train()
    recomputed = _flop_counter_total(checkpointed, ids) - plain
    assert recomputed == 2 * (trace.total("recompute_macc") + trace.total("recompute_attn")) > 0
    # GPT-2 per token, all trainable: blocks, attention and the tied head each 3 x forward -> ratio exactly 2
    plain_trace = trace_training(_tiny_gpt2(), ids, token_model=True)
    assert plain_trace.backward == 2 * plain_trace.forward
    assert TR.position_params(plain_trace) == 16 * 32  # transformer.wpe: 16 positions x 32


def test_frozen_patterns_glob_and_regex():
    from reconcile.frontends.torch_training import freeze

    model = mlp()
    assert freeze(model, ["re:^[02]\\.weight$"]) == ["0.weight", "2.weight"]
    with pytest.raises(ValueError, match="matches no parameter"):
        freeze(mlp(), ["encoder.*"])


# ------------------------------------------------------------------------------------------------ conventions
GPT2 = llm.Shapes(n_layer=12, d_model=768, n_heads=12, d_head=64, d_ff=3072, n_vocab=50257, n_ctx=1024,
                  n_params=124_439_808, hf_non_embedding=124_439_808 - 50257 * 768 - 1024 * 768)


def test_mfu_formulas_by_hand_on_gpt2_small():
    ctx = TR.Context(GPT2, 1024 * 768)  # the wpe table: 1024 positions x 768
    lhqt = 12 * 12 * 64 * 1024
    values = {c.name: c.value(ctx) for c in TR.MFU_CONVENTIONS}
    # nanoGPT: N = all parameters - wpe (the tied wte stays: it is the output layer)
    assert values["nanoGPT estimate_mfu"] == 6 * (124_439_808 - 1024 * 768) + 12 * lhqt
    # torchtitan: N without the nn.Embedding tables
    assert values["torchtitan get_num_flop_per_token"] == 6 * (124_439_808 - 50257 * 768 - 1024 * 768) + 12 * lhqt
    # Megatron-LM's code: 12 L h^2 ((1 + 1 + s/h) + 4 + V/2Lh) per token, MHA, no SwiGLU
    megatron = 12 * 12 * 768 ** 2 * (2 + Fraction(1024, 768) + 4 + Fraction(50257, 2 * 12 * 768))
    assert values["Megatron-LM num_floating_point_operations"] == megatron
    # ... which is 6 x (blocks' MACC + full attention + logits), the measured figure of a fully trained GPT-2
    t = llm.terms(GPT2)
    assert megatron == 6 * (t[llm.MACC] + t[llm.ATTN] + t[llm.LOGITS])
    for c in TR.MFU_CONVENTIONS:  # every formula decomposes exactly on GPT-2's shapes
        basis_value = sum(Fraction(k) * TR.context_terms(ctx).get(term, 0) for term, k in c.basis(ctx).items())
        assert basis_value == c.value(ctx), c.name


def test_megatron_code_handles_gqa_and_swiglu():
    llama = llm.Shapes(n_layer=2, d_model=64, n_heads=8, d_head=8, d_ff=160, n_vocab=100, n_ctx=32, n_kv_heads=2,
                       gated_ffn=True, tied_head=False, linear_bias=False)
    ctx = TR.Context(llama)
    t = llm.terms(llama)
    value = next(c for c in TR.MFU_CONVENTIONS if c.name.startswith("Megatron")).value(ctx)
    # q, k, v, o: 64*64 + 2*64*16 + 64*64 per token per layer; SwiGLU 3*64*160; attention 2*32*64; logits 64*100
    assert t[llm.MACC] == 2 * (64 * 64 + 2 * 64 * 16 + 64 * 64 + 3 * 64 * 160)
    assert value == 6 * (t[llm.MACC] + t[llm.ATTN] + t[llm.LOGITS])


def _gpt2_trace_like(shapes: llm.Shapes) -> TR.TrainingTrace:
    """A measured trace as a fully trainable GPT-2 gives it (blocks, attention, tied head each 3 x forward)."""
    t = llm.terms(shapes)
    tokens = shapes.n_ctx
    layers = [TR.TrainingLayer("h.0.mlp", "linear", "h.0", t[llm.MACC] * tokens, 0, t[llm.MACC] * tokens, 0,
                               t[llm.MACC] * tokens),
              TR.TrainingLayer("h.0.attn", "attention", "h.0", 0, t[llm.ATTN] * tokens, 0, 2 * t[llm.ATTN] * tokens),
              TR.TrainingLayer("lm_head", "linear", "", t[llm.LOGITS] * tokens, 0, t[llm.LOGITS] * tokens, 0,
                               t[llm.LOGITS] * tokens)]
    return TR.TrainingTrace("gpt2", (1, tokens), "meta", "sum of the outputs", "none", (), 0,
                            shapes.n_params, layers, token_model=True)


def test_comparisons_split_the_difference_by_component():
    ctx = TR.Context(GPT2, 1024 * 768)
    trace = _gpt2_trace_like(GPT2)
    t = llm.terms(GPT2)
    measured = 6 * (t[llm.MACC] + t[llm.ATTN] + t[llm.LOGITS])
    assert trace.flops_per_unit == measured
    items = {c.name: c for c in TR.llm_comparisons(trace, ctx)}
    assert items["Megatron-LM num_floating_point_operations"].differences == ()
    # 6ND counts the position table and the biases and norms as if they were matmul weights, and leaves the
    # attention out; the tied head's matmul it counts through P_EMBED
    six = items["6ND (N = all parameters)"]
    assert dict(six.differences) == {TR.EMBEDDINGS: 6 * 1024 * 768, TR.OTHER: 6 * t[llm.P_OTHER],
                                     TR.ATTENTION: -6 * t[llm.ATTN]}
    assert six.value - six.measured == sum(dict(six.differences).values())
    # the sentence which answers a paper's number: (6 N - measured) / measured, N = 124,439,808
    below = (measured - 6 * 124_439_808) / measured
    assert six.sentence().startswith(f"6ND (N = all parameters), which here is {below:.1%} below the measured "
                                     "forward+backward (attention -")


# ------------------------------------------------------------------------------------------------ the command
MLP_FILE = textwrap.dedent("""
    import torch.nn as nn

    def build():
        print("hello from the model file")  # runs in the job process only; must not reach the output
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
""")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "reconcile", "formulas", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_formulas_training_json_in_a_job_process(tmp_path):
    (tmp_path / "net.py").write_text(MLP_FILE)
    done = _cli("--model-file", "net.py:build", "--input-shape", "5,8", "--training", "--frozen", "2.*",
                "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # nothing the model printed is mixed in
    layers = {row["layer"]: row for row in data["layers"]}
    assert [layers[n]["fwd_macc"] for n in ("0", "2", "4")] == [640, 2560, 640]  # as in the hand test above
    assert [layers[n]["dgrad_macc"] for n in ("0", "2", "4")] == [0, 2560, 640]
    assert [layers[n]["wgrad_macc"] for n in ("0", "2", "4")] == [640, 0, 640]
    assert data["training_flops"] == 2 * (3840 + 4480) and data["per"] == "sample"
    missing = _cli("--model-file", "net.py:build", "--input-shape", "5,8", "--training", "--frozen", "enc.*",
                   cwd=tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "matches no parameter" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.parametrize("args, words", [(("--training", "--frozen", "re:("), "not a regular expression"),
                                         (("--recompute", "full"), "go with --training"),
                                         (("--training", "--counters", "thop"), "unknown training counter")])
def test_formulas_training_bad_input_is_one_line_exit_2(tmp_path, args, words):
    (tmp_path / "net.py").write_text(MLP_FILE)
    done = _cli("--model-file", "net.py:build", "--input-shape", "5,8", *args, cwd=tmp_path)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout


@pytest.mark.slow
def test_which_train_compute_ranks_the_measured_figure_beside_the_formulas(cli, tmp_path):
    # (--confirm: the measured step is a confirmation, not part of the default answer)
    # hf:gpt2 with 2 layers at T = 64, everything trainable: the measured step is 3 x the forward products,
    # 6 (MACC + ATTN + LOGITS) per token, by the shapes' own formulas (conventions/llm.py terms)
    spec = "hf:gpt2?n_layer=2"
    shapes = llm.Shapes(n_layer=2, d_model=768, n_heads=12, d_head=64, d_ff=3072, n_vocab=50257, n_ctx=64)
    t = llm.terms(shapes)
    measured = 6 * (t[llm.MACC] + t[llm.ATTN] + t[llm.LOGITS])
    n_params = 2 * (12 * 768 ** 2 + 13 * 768) + 2 * 768 + 50257 * 768 + 1024 * 768  # blocks, ln_f, wte, wpe
    six_nd = 6 * n_params
    done = cli("which", spec, f"{six_nd * 1000:.6e}", "--quantity", "train-compute", "--tokens", "1000", "--seq-len",
               "64", "--limit", "0", "--confirm", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    relative = (six_nd - measured) / measured
    assert lines[0].startswith(f"{spec} {six_nd * 1000:.6e}: 6ND, N = all parameters (")
    # the verdict's further clauses are indented lines below its first (render.headline)
    assert lines[1] == f"  which here is {abs(relative):.2%} {'above' if relative > 0 else 'below'} the measured " \
                       "forward+backward"
    # the measured figure is one of the ranked families, at its own value
    assert any(". measured forward + backward" in line and f"{measured * 1000:.8g}" in line for line in lines)


def test_report_section_reads_the_committed_summary(tmp_path):
    from reconcile import training_report

    assert training_report.report_blocks(tmp_path) == []  # no table committed there: no section
    folder = tmp_path.joinpath(*training_report.TABLE_DIR)
    folder.mkdir(parents=True)
    folder.joinpath(training_report.SUMMARY_NAME).write_text("model,per\nResNet-50,sample\n")
    heading, _, table = training_report.report_blocks(tmp_path)
    assert heading.text == "Training compute, measured" and list(table.frame["model"]) == ["ResNet-50"]


@pytest.mark.slow
def test_training_counters_on_lenet_explained_with_residual_0():
    from reconcile import models, training

    spec = models.resolve("lenet")
    trace = training.measure(spec)
    # the document's LeNet: MACC 288,000 (conv1) + 1,600,000 (conv2) + 400,000 (ip1) + 5,000 (ip2) = 2,293,000;
    # conv1 reads the image: no input gradient; every weight trains
    assert trace.terms()[T.MACC] == 2_293_000
    assert trace.terms()[T.MACC_DGRAD] == 2_293_000 - 288_000 and trace.terms()[T.MACC_WGRAD] == 2_293_000
    assert trace.flops == 2 * (2_293_000 + 2_005_000 + 2_293_000) == 13_182_000
    results = {r.tool: r for r in training.counters(spec, trace, explain_forward=False)}
    flop_counter = results["torch_flop_counter"]
    assert flop_counter.value == 13_182_000 and flop_counter.residual == 0
    assert flop_counter.decomposition == "2*MACC + 2*MACC_DGRAD + 2*MACC_WGRAD"
    # calflops 0.3.2 and DeepSpeed 0.19.8 print 4,615,940 forward FLOPs for this LeNet (recorded tool outputs):
    # calflops' training figure is 3 x that whatever the first layer needs; DeepSpeed's profile over forward +
    # backward stays at the forward count
    assert (results["calflops"].forward, results["calflops"].value) == (4_615_940, 3 * 4_615_940)
    assert (results["deepspeed"].forward, results["deepspeed"].value) == (4_615_940, 4_615_940)
    assert results["calflops"].residual == results["deepspeed"].residual == 0
    assert results["ptflops"].status == "unsupported" and "no backward option" in results["ptflops"].message


def test_a_formula_residual_is_its_own_component():
    # BertModel has no LM head: Megatron-LM's formulas still count 6 h V logits FLOPs per token, which its basis
    # (6*LOGITS, 0 here) does not: that residual is named in the difference
    bert = llm.Shapes(n_layer=2, d_model=64, n_heads=4, d_head=16, d_ff=256, n_vocab=100, n_ctx=8, lm_head=False,
                      pooler=False)
    t = llm.terms(bert)
    ctx = TR.Context(bert)
    trace = TR.TrainingTrace("bert", (1, 8), "meta", "sum", "none", (), 0, 0, [
        TR.TrainingLayer("l.0.ffn", "linear", "l.0", t[llm.MACC] * 8, 0, t[llm.MACC] * 8, 0, t[llm.MACC] * 8),
        TR.TrainingLayer("l.0.attn", "attention", "l.0", 0, t[llm.ATTN] * 8, 0, 2 * t[llm.ATTN] * 8)],
        token_model=True)
    code = next(c for c in TR.llm_comparisons(trace, ctx) if c.name == "Megatron-LM num_floating_point_operations")
    assert code.residual == 6 * 64 * 100 and dict(code.differences) == {TR.RESIDUAL: 6 * 64 * 100}
