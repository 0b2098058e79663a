"""Language models: the per-convention table `formulas` prints after the per-layer table, and the
sequence-length scaling test that names a counter blind to fused attention (SDPA).

Why a scaling test: a tool that does not see `scaled_dot_product_attention` (a fused kernel with no formula, or
no module to hook) still counts every projection, so its number looks plausible; but the attention products grow
with T^2 and the projections with T, so between two sequence lengths T1 < T2 its per-token number stays flat
where it should grow by 2 * n_layer * (T2 - T1) * d_attn multiply-accumulates per token.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

from conventions import llm

from .render import wrap


def _n(x) -> str:
    x = Fraction(x)
    return f"{int(x):,}" if x.denominator == 1 else f"{float(x):,.1f}"


def convention_rows(shapes: llm.Shapes, tokens: Optional[float] = None) -> list[dict]:
    """One row per convention: value (per token for compute; times `tokens` as `total` when given)."""
    rows = []
    for e in llm.evaluate_all(shapes):
        total = None
        if tokens is not None and e.quantity != llm.PARAMS:
            total = float(e.value) * tokens
        rows.append({"convention": e.name, "quantity": e.quantity, "value": e.value, "total": total,
                     "basis": e.basis_text, "residual": e.residual, "citation": e.citation})
    return rows


def convention_table(shapes: llm.Shapes, tokens: Optional[float] = None) -> str:
    rows = convention_rows(shapes, tokens)
    header = ["convention", "quantity", "value"] + (["x tokens"] if tokens is not None else []) + ["basis terms",
                                                                                                  "residual"]
    cells = []
    for r in rows:
        row = [r["convention"], r["quantity"], _n(r["value"])]
        if tokens is not None:
            row.append("" if r["total"] is None else f"{r['total']:.4g}")
        row += [r["basis"], _n(r["residual"])]
        cells.append(row)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    right = {2, 3} if tokens is not None else {2}

    def line(c):
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))).rstrip()
    values = llm.terms(shapes)
    out = [f"LLM conventions at seq_len {shapes.n_ctx} (compute per token; parameters as counts)"
           + (f"; x tokens: times {tokens:.4g} tokens" if tokens is not None else ""),
           line(header)] + [line(c) for c in cells]
    out += wrap("basis terms: " + ", ".join(f"{t} = {_n(values[t])}" for t in llm.COMPUTE_TERMS + llm.PARAM_TERMS))
    out += [text for i, r in enumerate(rows, 1) for text in wrap(f"[{i}] {r['convention']}: {r['citation']}")]
    return "\n".join(out)


def convention_json(shapes: llm.Shapes, tokens: Optional[float] = None) -> list[dict]:
    return [{**r, "value": float(r["value"]) if Fraction(r["value"]).denominator != 1 else int(r["value"]),
             "residual": float(r["residual"])} for r in convention_rows(shapes, tokens)]


# ------------------------------------------------------------------------------------------ SDPA blindness
@dataclass(frozen=True)
class Scaling:
    tool: str
    seq_lens: tuple[int, int]
    per_token: tuple[float, float]  # the tool's forward number divided by batch * seq_len
    explained: tuple[Optional[dict], Optional[dict]]  # basis combination of each number, if one fits
    attn_growth: float  # per-token growth of ATTN (multiply-accumulates) between the two lengths

    @property
    def ops_per_mac(self) -> Fraction:
        """The tool's unit, read off its own explanation: 2 (FLOPs) or 1 (MACs) per multiply-accumulate."""
        for combo in self.explained:
            if combo and combo.get(llm.MACC):
                return Fraction(combo[llm.MACC])
        return Fraction(2)

    @property
    def expected_growth(self) -> float:
        return float(self.ops_per_mac) * self.attn_growth

    @property
    def growth(self) -> float:
        return self.per_token[1] - self.per_token[0]

    @property
    def blind(self) -> bool:
        """Flat per-token numbers: the T^2 attention products were not counted."""
        return abs(self.growth) < 0.01 * self.expected_growth

    def sentence(self, shapes_at: Callable[[int], llm.Shapes]) -> str:
        t1, t2 = self.seq_lens
        unit = f"{self.ops_per_mac}*ATTN"
        if self.blind:
            big = shapes_at(t2)
            missed = float(self.ops_per_mac) * float(llm.terms(big)[llm.ATTN])
            return (f"{self.tool} is blind to scaled_dot_product_attention: its per-token number stays at "
                    f"{self.per_token[0]:,.0f} from T={t1} to T={t2} where QK^T and AV grow by "
                    f"{self.expected_growth:,.0f} per token ({unit}); at T={t2} it misses {missed:,.0f} per token "
                    f"({unit}, {missed * big.batch * t2:,.0f} in all)")
        return (f"{self.tool} counts the attention products: per token {self.per_token[0]:,.0f} at T={t1} -> "
                f"{self.per_token[1]:,.0f} at T={t2} (+{self.growth:,.0f}; {unit} grows by "
                f"{self.expected_growth:,.0f})")


def scaling(tool: str, count: Callable[[int], float], shapes_at: Callable[[int], llm.Shapes],
            seq_lens: tuple[int, int] = (128, 256)) -> Scaling:
    """Run a counter (`count(seq_len) -> its forward total for one batch`) at two sequence lengths and compare
    the per-token growth with that of the attention products."""
    t1, t2 = seq_lens
    s1, s2 = shapes_at(t1), shapes_at(t2)
    totals = (count(t1), count(t2))
    per_token = (totals[0] / (s1.batch * t1), totals[1] / (s2.batch * t2))
    explained = (llm.explain_total(totals[0], s1, s1.batch * t1), llm.explain_total(totals[1], s2, s2.batch * t2))
    return Scaling(tool, seq_lens, per_token, explained, float(llm.terms(s2)[llm.ATTN] - llm.terms(s1)[llm.ATTN]))


# ------------------------------------------------------------------------------------------ counters' totals
def _ids(module, batch: int, seq_len: int):
    import torch

    return torch.zeros(batch, seq_len, dtype=torch.long)


def _flop_counter(module, ids) -> float:
    """torch FlopCounterMode total (2 FLOPs per MAC, torch/utils/flop_counter.py)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(ids)
    return float(counter.get_total_flops())


def _fvcore(module, ids) -> float:
    """fvcore FlopCountAnalysis total (1 per MAC, fvcore/nn/jit_handles.py)."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(module, (ids,))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return float(analysis.total())


def _ptflops_aten(module, ids) -> float:
    """ptflops get_model_complexity_info(backend='aten') MACs."""
    import io

    from ptflops import get_model_complexity_info

    macs, _ = get_model_complexity_info(module, tuple(ids.shape[1:]), as_strings=False, print_per_layer_stat=False,
                                        ost=io.StringIO(), backend="aten", input_constructor=lambda _res: ids)
    return float(macs)


def _calflops(module, ids) -> float:
    """calflops calculate_flops FLOPs (forward only)."""
    from calflops import calculate_flops

    flops, _, _ = calculate_flops(module, args=[ids], print_results=False, output_as_string=False)
    return float(flops)


def _deepspeed(module, ids) -> float:
    """DeepSpeed get_model_profile FLOPs."""
    import os

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from deepspeed.profiling.flops_profiler import profiler

    flops, _, _ = profiler.get_model_profile(module, args=[ids], print_profile=False, as_string=False)
    return float(flops)


TOOL_TOTALS: dict[str, Callable] = {"torch_flop_counter": _flop_counter, "fvcore": _fvcore,
                                    "ptflops_aten": _ptflops_aten, "calflops": _calflops, "deepspeed": _deepspeed}
