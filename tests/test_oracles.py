"""Conservation against oracles the reference does not share: `sum(p.numel() for p in model.parameters())` for
params, and hand arithmetic written out below for products, on the layers the first releases got wrong: routed
mixture-of-experts experts (aten._grouped_mm and friends), weight-normed convolutions, recurrent kernels
(aten.mkldnn_rnn_layer), an op the op table does not know and an FFT. FlopCounterMode appears only as a witness of
its own blind spots (it counts 0 for the oneDNN LSTM kernel and for the grouped matmuls)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrizations, weight_norm
from torch.utils.flop_counter import FlopCounterMode

from conventions import ir
from conventions import terms as T
from conventions.formulas import layer_counts, model_counts
from reconcile.frontends.torch_ir import from_module


def reference(model, shape, dtype=None):
    graph = from_module(model, shape, "m", input_dtype=dtype)
    return graph, model_counts(graph)[-1][1]


def kinds(graph, *wanted):
    return [layer for layer in graph.layers if layer.kind in wanted]


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------- mixture of experts
class TinyMoE(nn.Module):
    """8 tokens of width 8; a router picks 2 of 4 experts per token; each expert is 8 -> 12 -> 8, its weights
    stacked (E, in, out) as transformers 5 stores them (aten._grouped_mm wants rows of a multiple of 16 bytes).
    The router's logits are a fixed table by token position (the input is zeros), so token t goes to experts
    t % 4 and (t + 1) % 4: every expert gets 4 of the 16 routed rows. `grouped` runs the experts as one
    aten._grouped_mm per projection, else as a loop over the experts that gathers each one's tokens
    (transformers' eager experts)."""

    def __init__(self, grouped: bool):
        super().__init__()
        self.grouped = grouped
        self.router = nn.Linear(8, 4, bias=False)
        self.w_in = nn.Parameter(torch.randn(4, 8, 12) * 0.1)
        self.w_out = nn.Parameter(torch.randn(4, 12, 8) * 0.1)
        table = torch.zeros(8, 4)
        for t in range(8):
            table[t, t % 4], table[t, (t + 1) % 4] = 2.0, 1.0
        self.register_buffer("position_logits", table)

    def forward(self, x):  # (8, 8)
        logits = self.router(x) + self.position_logits
        weights, experts = logits.softmax(-1).topk(2, dim=-1)  # (8, 2)
        if self.grouped:
            flat = experts.reshape(-1)
            order = flat.argsort(stable=True)
            rows = x[order // 2]  # the 16 routed rows, grouped by expert
            offsets = torch.cumsum(torch.bincount(flat, minlength=4), 0).to(torch.int32)
            hidden = F.gelu(torch._grouped_mm(rows, self.w_in, offs=offsets))
            out = torch._grouped_mm(hidden, self.w_out, offs=offsets) * weights.reshape(-1)[order, None]
            return torch.zeros_like(x).index_add(0, order // 2, out)
        out = torch.zeros_like(x)
        for e in range(4):
            token, slot = torch.where(experts == e)
            hidden = F.gelu(x[token] @ self.w_in[e]) @ self.w_out[e]
            out = out.index_add(0, token, hidden * weights[token, slot, None])
        return out


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped_mm", "eager_loop"])
def test_routed_mixture_of_experts_by_hand(grouped):
    model = TinyMoE(grouped).eval()
    graph, total = reference(model, (8, 8))
    # router: 8 tokens x 8 x 4 experts = 256; experts: 8 tokens x top-2 = 16 routed rows, each through ONE expert:
    # 16 x 8 x 12 (in) + 16 x 12 x 8 (out) = 3,072; the 2 experts a token skips cost nothing
    router, experts = 8 * 8 * 4, 16 * 8 * 12 + 16 * 12 * 8
    assert total.macc == router + experts == 3_328
    assert not kinds(graph, ir.GAP, ir.UNSUPPORTED_OP)
    # params: router 8*4 + w_in 4*8*12 + w_out 4*12*8 = 800, every tensor once
    assert total.params == parameter_count(model) == 32 + 384 + 384 == 800
    # active per token: the router, and 2 of the 4 experts' weights: 32 + 2/4 * 768
    assert graph.active_params == total.active_params == 32 + 768 * 2 // 4 == 416
    if grouped:  # FlopCounterMode has no formula for aten._grouped_mm: it sees the router only
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(8, 8))
        assert counter.get_total_flops() // 2 == router


MIXTRAL = dict(num_hidden_layers=2, hidden_size=128, intermediate_size=256, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=1000, num_local_experts=4, num_experts_per_tok=2,
               attn_implementation="eager")


@pytest.mark.slow
@pytest.mark.parametrize("experts", ["grouped_mm", "eager", "batched_mm"])
def test_mixtral_style_config_by_hand(experts):
    """transformers 5.24.0 runs MixtralExperts through `experts_implementation`: grouped_mm (the default, one
    aten._grouped_mm per projection), eager (a loop over the experts hit, mm on gathered rows) or batched_mm (bmm on
    gathered expert weights). The same products whichever runs."""
    import transformers

    config = transformers.MixtralConfig(**MIXTRAL)
    config._experts_implementation = experts
    model = transformers.MixtralForCausalLM(config).eval()
    graph, total = reference(model, (1, 256), torch.long)
    # per token per layer: q 128*128 + k 128*64 + v 128*64 + o 128*128 + router 128*4 + 2 experts x 3 x 128*256
    per_token_layer = 16_384 + 8_192 + 8_192 + 16_384 + 512 + 2 * 3 * 32_768
    assert per_token_layer == 246_272
    per_token = 2 * per_token_layer + 128 * 1000  # + the LM head
    # QK^T and AV: 2 layers x 4 heads x 256 x 256 x 32, twice
    attention = 2 * 2 * 256 * 256 * 128
    assert total.macc == 256 * per_token + attention == 192_413_696
    assert total.params == model.num_parameters() == parameter_count(model) == 1_142_400
    # a token multiplies 2 of the 4 experts: each layer's experts hold 4 x 3 x 128*256 = 393,216 parameters
    assert graph.active_params == 1_142_400 - 2 * 393_216 // 2 == 749_184
    assert not kinds(graph, ir.GAP, ir.UNSUPPORTED_OP)


# ----------------------------------------------------------------------------------- weight norm, transposed conv
class WeightNormed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = weight_norm(nn.Conv2d(3, 8, 3, padding=1))  # legacy: weight_g, weight_v
        self.up = parametrizations.weight_norm(nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1))  # original0/1

    def forward(self, x):
        return self.up(torch.relu(self.conv(x)))


class Untraceable(WeightNormed):
    def forward(self, x):  # data-dependent Python: read through module calls, not torch.fx
        return super().forward(x) if x.sum() >= 0 else x


@pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*is deprecated:FutureWarning")
@pytest.mark.parametrize("cls", [WeightNormed, Untraceable])
def test_weight_normed_conv_and_transposed_conv_by_hand(cls):
    model = cls().eval()
    graph, total = reference(model, (1, 3, 8, 8))
    conv, up = graph.layer("conv"), graph.layer("up")
    # conv: weight_g 8x1x1x1 + weight_v 8x3x3x3 + bias 8 = 232; MACC: 8x8 positions x 8 x 3x3x3 = 13,824
    assert conv.kind == ir.CONV and conv.params == 8 + 216 + 8 == 232
    assert T.terms(conv)[T.WEIGHTS] == 8 + 216 and layer_counts(conv).macc == 64 * 216 == 13_824
    # transposed: weight (C_in 8, C_out 4, 4, 4): original0 (g) 8x1x1x1 + original1 (v) 8x4x4x4 + bias 4 = 524;
    # each of the 8x8 input positions multiplies its 8 channels by the 4x4x4 slices it scatters: 64 x 512 = 32,768
    assert up.kind == ir.CONV and up.attr("transposed") and up.params == 8 + 512 + 4 == 524
    assert layer_counts(up).macc == 64 * 512 == 32_768 and up.output_shape == (1, 4, 16, 16)
    assert total.params == parameter_count(model) == 756
    assert total.macc == 13_824 + 32_768
    assert not kinds(graph, ir.GAP, ir.PARAMETER)


def test_the_params_law_fails_when_the_layers_do_not_describe_parameters():
    """The oracle is what parameters() yields, counted apart from the layer builder: a module whose parameters()
    also yields a tensor no layer reads (here a plain attribute) leaves a gap row of exactly its size."""
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.hidden = torch.zeros(5, 7)

        def parameters(self, recurse=True):
            yield from super().parameters(recurse)
            yield self.hidden

        def forward(self, x):
            return self.fc(x)

    graph, total = reference(Odd(), (2, 4))
    [gap] = kinds(graph, ir.GAP)
    assert gap.params == 5 * 7 and total.params == 4 * 3 + 3 + 35
    # 2 rows x 4 x 3 = 24 multiply-accumulates, described exactly; 50 parameters, the layers describe 15
    assert gap.attr("why").endswith("holds 50 parameters; the layer rows describe 24 and 15")


# ----------------------------------------------------------------------------------- recurrent networks
class Recurrent(nn.Module):
    def __init__(self, cell: nn.Module):
        super().__init__()
        self.rnn = cell

    def forward(self, x):
        out = self.rnn(x)
        return out[0] if isinstance(out, tuple) else out


def test_lstm_by_hand():
    """aten.mkldnn_rnn_layer (one call per layer and direction on CPU) multiplies each row's input by W_ih
    (4H x in) and the previous hidden state by W_hh (4H x H): 4 gates (i, f, g, o) x (in + H) x H per row."""
    lstm = nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    model = Recurrent(lstm).eval()
    graph, total = reference(model, (2, 5, 8))  # batch 2 x 5 steps = 10 rows per layer and direction
    rows = 10
    layer0 = 2 * 4 * 16 * (8 + 16)  # both directions, input width 8
    layer1 = 2 * 4 * 16 * (32 + 16)  # input: both directions' outputs, 2 x 16
    assert total.macc == rows * (layer0 + layer1) == 92_160
    # weights = the same products per row; biases b_ih + b_hh: 2 x 64 per layer and direction
    assert total.params == parameter_count(model) == layer0 + layer1 + 4 * 2 * 64 == 9_728
    [rnn] = kinds(graph, ir.RNN)
    assert rnn.attr("gates") == 4 and T.terms(rnn)[T.BIAS] == 2 * rows * 2 * 2 * 64
    assert not kinds(graph, ir.GAP, ir.UNSUPPORTED_OP)
    with FlopCounterMode(display=False) as counter:  # the witness's blind spot: no formula for the oneDNN kernel
        model(torch.zeros(2, 5, 8))
    assert counter.get_total_flops() == 0


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")
def test_gru_and_cells_by_hand():
    """A GRU on CPU runs addmm: the input projection of all rows at once (W_ih, 3H x in), then per step the hidden
    projection (W_hh, 3H x H); r scales W_hn h after the product, so every step does the full 3 x H x H."""
    graph, total = reference(Recurrent(nn.GRU(8, 16)).eval(), (5, 2, 8))
    assert total.macc == 10 * 3 * 16 * (8 + 16) == 11_520
    assert kinds(graph, ir.RNN)[0].attr("mode") == "GRU" and not kinds(graph, ir.GAP)
    # with projections (LSTM proj_size 4: not oneDNN, addmm + mm): 4 x 16 x (8 + 4) + W_hr 4 x 16 per row
    _, proj = reference(Recurrent(nn.LSTM(8, 16, proj_size=4)).eval(), (5, 2, 8))
    assert proj.macc == 10 * (4 * 16 * (8 + 4) + 16 * 4) == 8_320
    for cell, gates in ((nn.LSTMCell(8, 16), 4), (nn.GRUCell(8, 16), 3), (nn.RNNCell(8, 16), 1)):
        model = Recurrent(cell).eval()
        graph, total = reference(model, (3, 8))  # one step of 3 rows
        assert total.macc == 3 * gates * 16 * (8 + 16), type(cell).__name__
        assert total.params == parameter_count(model) and not kinds(graph, ir.GAP)


def test_packed_sequence_counts_the_packed_rows():
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(8, 16, batch_first=True)

        def forward(self, x):  # lengths 5 and 3: 8 rows, not 10
            packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 3]), batch_first=True)
            return nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True)[0]

    graph, total = reference(Packed().eval(), (2, 5, 8))
    assert total.macc == 8 * 4 * 16 * (8 + 16) == 12_288 and not kinds(graph, ir.GAP)


# ----------------------------------------------------------------------------------- ops without a formula
MYSTERY = """
import torch
import torch.nn as nn


@torch.library.custom_op("reconcile_test::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    return x @ x.transpose(-1, -2)  # products the op table cannot see inside the op


@mystery.register_fake
def _(x):
    return x.new_empty(x.shape[:-1] + x.shape[-2:-1])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        y = self.fc(x)
        spectrum = torch.fft.rfft(y, dim=-1).abs()  # an FFT: no multiply-accumulate convention
        return mystery(y) + spectrum.sum()


def build():
    return Net()
"""


def test_an_op_without_formula_is_a_row_and_a_warning(cli, tmp_path):
    path = tmp_path / "mystery.py"
    path.write_text(MYSTERY)
    result = cli("formulas", "--model-file", f"{path}:build", "--input-shape", "1,8,16", "--format", "json")
    assert result.returncode == 0, result.stderr
    import json

    rows = {row["layer"]: row for row in json.loads(result.stdout)["layers"]}
    unsupported = rows["reconcile_test::mystery"]
    assert unsupported["kind"] == "unsupported_op" and unsupported["macc"] is None
    assert "no entry" in unsupported["note"] and "1 time" in unsupported["note"]
    fft = rows["aten._fft_r2c"]
    assert fft["kind"] == "no_macc_convention" and "Fourier" in fft["note"]
    # the linear is still counted: 8 rows x 16 x 16
    assert rows["__total__"]["macc"] == 8 * 16 * 16
    assert "warning" in result.stderr and "reconcile_test::mystery" in result.stderr and "unsupported_op" in \
        result.stderr
    assert "_fft_r2c" not in result.stderr  # a convention, not a gap: said in its row, not warned about


# ----------------------------------------------------------------------------------- explanation residuals
class BiasedProjection(nn.Module):
    """Not an nn.Linear: typed from the aten ops its F.linear runs (a matmul and an add of the bias on a
    non-contiguous input)."""

    def __init__(self, n: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, n) * 0.1)
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Quirks(nn.Module):
    """A LayerNorm called twice, a linear on a non-contiguous input, a GroupNorm; data-dependent control flow, so it
    is read through module calls as most transformers models are."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.proj = BiasedProjection(16)
        self.gn = nn.GroupNorm(4, 16)

    def forward(self, x):  # (1, 8, 16)
        if x.sum() > 1e9:
            return x
        y = self.proj(self.norm(x).transpose(0, 1))  # (8, 1, 16), not contiguous
        return self.gn(self.norm(y).permute(1, 2, 0))  # the same LayerNorm again; GroupNorm on (1, 16, 8)


def test_quirks_are_typed_as_what_they_are():
    model = Quirks().eval()
    graph, total = reference(model, (1, 8, 16))
    proj, again, gn = graph.layer("proj"), graph.layer("norm#2"), graph.layer("gn")
    # the matmul and the bias add are one linear: 8 rows x 16 x 16 MACC, 8 x 16 bias adds, 256 + 16 parameters
    assert proj.kind == ir.LINEAR and proj.bias and proj.params == 256 + 16
    assert (T.terms(proj)[T.MACC], T.terms(proj)[T.BIAS]) == (8 * 16 * 16, 8 * 16)
    # the LayerNorm again: it reads its 16 + 16 weights again, shared with the first call (TIED), owns none
    values = T.terms(again)
    assert again.params == 0 and (values[T.WEIGHTS], values[T.BIAS_PARAMS], values[T.TIED]) == (16, 16, 32)
    assert gn.kind == ir.NORM and gn.attr("aten") == "native_group_norm" and gn.params == 32
    assert total.params == parameter_count(model) == 32 + 272 + 32 and not kinds(graph, ir.GAP)


@pytest.mark.slow
def test_quirks_are_explained_with_residual_0_and_search_is_marked():
    from reconcile import api
    from reconcile.diff import explain

    spec = api.register_module(Quirks().eval(), (1, 8, 16), "quirks")
    tools = ("fvcore", "torchinfo", "calflops", "ptflops_pytorch", "thop")
    records = api.execute(api.plan(tools=tools, specs=[spec]), timeout=300)
    ex = explain(records)
    valued = ex[ex.residual.notna()]
    assert set(valued.tool) == set(tools)
    bad = valued[valued.residual != 0]
    assert bad.empty, bad[["tool", "layer", "metric", "value", "explanation"]].to_string()
    # the GroupNorm's catalogued conventions apply (fvcore/nn/jit_handles.py norm_flop_counter: 5 per element)
    gn = ex[(ex.tool == "fvcore") & (ex.layer == "gn") & (ex.metric == "flops")].iloc[0]
    assert gn.value == 5 * 16 * 8 and gn.source.startswith("fvcore/nn/jit_handles.py")
    # the repeated LayerNorm's parameters, listed again by torchinfo: weights + biases, residual 0
    again = ex[(ex.tool == "torchinfo") & (ex.layer == "norm#2") & (ex.metric == "Param #")].iloc[0]
    assert again.value == 32 and again.decomposition == "1*WEIGHTS + 1*BIAS_PARAMS"
    # every decomposition the search found says so, totals included (torchinfo prints its total alone)
    total = ex[(ex.tool == "torchinfo") & (ex.layer == "__total__") & (ex.metric == "Total params")].iloc[0]
    assert total.decomposition.startswith("whole model") and total.source == "search"
    searched = ex[ex.explanation.str.contains("found by search", na=False)]
    assert (searched.source == "search").all()


def test_flop_counter_keeps_the_grad_mode_that_worked():
    """FlopCounterMode runs the forward under no_grad and with grad enabled; a forward that crashes in one mode is
    an error row for that metric, the other mode's numbers stay (2 FLOPs per MACC: 2 x 2 rows x 4 x 3)."""
    from reconcile import api
    from reconcile.adapters import torch_flop_counter as adapter
    from reconcile.records import ERROR, OK, TOTAL, Emitter

    class GradOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):  # crashes under FlopCounterMode's no_grad forward only
            from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

            counting = any(isinstance(m, FlopCounterMode) or type(m).__name__ == "_FlopCounterMode"
                           for m in _get_current_dispatch_mode_stack())
            if counting and not torch.is_grad_enabled():
                raise RuntimeError("this model needs autograd")
            return self.fc(x)

    spec = api.register_module(GradOnly().eval(), (2, 4), "grad_only")
    records = adapter.count(spec, Emitter("grad_only", "torch", adapter.TOOL, adapter.version()))
    totals = {r.metric: r for r in records if r.layer == TOTAL}
    assert totals["FLOP [grad]"].status == OK and totals["FLOP [grad]"].value == 2 * 2 * 4 * 3
    crashed = totals["FLOP [no_grad]"]
    assert crashed.status == ERROR and "torch.no_grad()" in crashed.message and "needs autograd" in crashed.message


def test_linalg_and_einsum_paths_count_as_they_decompose():
    """The op table counts the ops these calls become: einsum, inner, tensordot, multi_dot and matrix_power become
    bmm / mm; F.bilinear becomes aten._trilinear (one multiply-accumulate per (batch, out, i, j)); linalg.vecdot
    becomes an element-wise mul and a sum, which the table treats as element-wise arithmetic (0 products), as
    FlopCounterMode does."""
    class Paths(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = nn.Parameter(torch.randn(8, 8))
            self.w = nn.Parameter(torch.randn(3, 8, 8))

        def forward(self, x):  # (4, 8)
            a = torch.einsum("bi,bi->b", x, x).sum()  # bmm (4, 1, 8) x (4, 8, 1): 4 x 8
            b = torch.inner(x, x).sum()  # mm (4, 8) x (8, 4): 4 x 8 x 4
            c = torch.linalg.multi_dot([x, self.m, self.m]).sum()  # 2 mm (4, 8) x (8, 8): 2 x 4 x 8 x 8
            d = torch.linalg.matrix_power(self.m, 3).sum()  # 2 mm (8, 8) x (8, 8): 2 x 8 x 8 x 8
            e = F.bilinear(x, x, self.w).sum()  # _trilinear: 4 x 3 x 8 x 8
            f = torch.linalg.vecdot(x, x).sum()  # mul + sum: 0
            return a + b + c + d + e + f

    _, total = reference(Paths().eval(), (4, 8))
    assert total.macc == 4 * 8 + 4 * 8 * 4 + 2 * 4 * 8 * 8 + 2 * 8 * 8 * 8 + 4 * 3 * 8 * 8 == 2_464
