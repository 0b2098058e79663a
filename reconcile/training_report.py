"""What `formulas --training` prints and what the report's training section says: the measured training step
per layer (forward, input-gradient and weight-gradient products, the backward/forward ratio), its total in basis
terms, every training convention's distance from it and the terms that make the difference, and the training
counters explained. Pure rendering over conventions.training data (no torch)."""
from __future__ import annotations

import json
from fractions import Fraction
from typing import Optional, Sequence

from conventions import terms as T
from conventions import training as TR

COLUMNS = ("layer", "kind", "block", "fwd_macc", "fwd_attn", "dgrad_macc", "dgrad_attn", "wgrad_macc",
           "recompute_macc", "recompute_attn", "embed_wgrad", "bwd_over_fwd", "note")


def _n(x) -> str:
    x = Fraction(x)
    return f"{int(x):,}" if x.denominator == 1 else f"{float(x):,.1f}"


def _ratio(x: Optional[float]) -> str:
    return "" if x is None else f"{x:.3f}"


def context(spec, trace: TR.TrainingTrace) -> Optional[TR.Context]:
    """The LLM shapes of a token model at the traced sequence length (None otherwise)."""
    from .models import llm_shapes

    shapes = llm_shapes(spec)
    if shapes is None:
        return None
    return TR.Context(shapes, TR.position_params(spec.config, shapes.d_model))


def layer_rows(trace: TR.TrainingTrace) -> list[dict]:
    rows = []
    for layer in trace.layers:
        rows.append({"layer": layer.name, "kind": layer.kind, "block": layer.block, "fwd_macc": layer.fwd_macc,
                     "fwd_attn": layer.fwd_attn, "dgrad_macc": layer.dgrad_macc, "dgrad_attn": layer.dgrad_attn,
                     "wgrad_macc": layer.wgrad_macc, "recompute_macc": layer.recompute_macc,
                     "recompute_attn": layer.recompute_attn, "embed_wgrad": layer.embed_wgrad,
                     "bwd_over_fwd": layer.ratio, "note": layer.why()})
    totals = trace.terms()
    rows.append({"layer": "__total__", "kind": "", "block": "", "fwd_macc": totals[T.MACC],
                 "fwd_attn": totals[T.ATTN], "dgrad_macc": totals[T.MACC_DGRAD], "dgrad_attn": totals[T.ATTN_DGRAD],
                 "wgrad_macc": totals[T.MACC_WGRAD], "recompute_macc": totals[T.MACC_RECOMPUTE],
                 "recompute_attn": totals[T.ATTN_RECOMPUTE], "embed_wgrad": totals[T.EMBED_WGRAD],
                 "bwd_over_fwd": trace.ratio, "note": ""})
    return rows


def comparisons(spec, trace: TR.TrainingTrace) -> list[TR.Comparison]:
    ctx = context(spec, trace)
    n_params = trace.trainable_params + trace.frozen_params
    out = TR.generic_comparisons(trace, n_params)
    if ctx is not None:
        out = TR.llm_comparisons(trace, ctx) + out
    return out


def summary_lines(spec, trace: TR.TrainingTrace) -> list[str]:
    values = trace.terms()
    used = {t: c for t, c in TR.MEASURED.items() if values[t]}
    lines = [f"training FLOPs = {T.format_combo(used)} = {trace.flops:,} "
             f"({_n(trace.flops_per_unit)} per {trace.unit}; forward {_n(Fraction(2 * trace.forward, trace.units))}"
             f" per {trace.unit}); backward/forward = {trace.ratio:.4f}, (forward+backward)/forward = "
             f"{1 + trace.ratio:.4f}",
             "basis terms: " + ", ".join(f"{t} = {values[t]:,}" for t in T.TRAINING_TERMS)]
    if values[T.EMBED_WGRAD]:
        lines.append(f"embeddings: no weight-gradient matmul; their gradient is a scatter-add of "
                     f"{values[T.EMBED_WGRAD]:,} elements (EMBED_WGRAD additions, not in the FLOPs above)")
    skipped_d, skipped_w = TR.skipped_gradients(trace)
    if skipped_d or skipped_w:
        lines.append(f"autograd skipped {_n(skipped_d)} input-gradient and {_n(skipped_w)} weight-gradient FLOPs "
                     f"per {trace.unit} (the first layer's input is data; frozen weights need no gradient)")
    ctx = context(spec, trace)
    if ctx is not None:
        gap = TR.check_forward(trace, ctx)
        if gap:
            lines.append(f"note: the LLM shapes do not describe the traced forward exactly ({_n(gap)} products per "
                         "token apart): the per-token conventions below compare with the measured figure anyway")
    return lines


def comparison_lines(items: Sequence[TR.Comparison], unit: str) -> list[str]:
    header = ("convention", f"per {unit}", "vs measured", "basis", "difference by component (convention - measured)")
    cells = []
    for c in items:
        diff = "; ".join(f"{k} {float(v):+,.0f}" for k, v in c.differences) or "none"
        cells.append((c.name, _n(c.value), f"{c.relative:+.2%}", c.basis, diff))
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header[:-1])]

    def line(row):
        return "  ".join([v.rjust(w) if i in (1, 2) else v.ljust(w) for i, (v, w) in
                          enumerate(zip(row[:-1], widths))] + [row[-1]]).rstrip()
    return [line(header)] + [line(row) for row in cells]


def table(spec, trace: TR.TrainingTrace, counted: Sequence = ()) -> str:
    rows = layer_rows(trace)
    shown = [r for r in rows if r["layer"] == "__total__" or r["fwd_macc"] or r["fwd_attn"] or r["embed_wgrad"]]
    header = ("layer", "kind", "fwd MACC", "fwd ATTN", "dgrad", "wgrad", "recompute", "bwd/fwd", "note")
    cells = [(r["layer"], r["kind"], _n(r["fwd_macc"]), _n(r["fwd_attn"]), _n(r["dgrad_macc"] + r["dgrad_attn"]),
              _n(r["wgrad_macc"]), _n(r["recompute_macc"] + r["recompute_attn"]), _ratio(r["bwd_over_fwd"]),
              r["note"]) for r in shown]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]

    def line(c):
        return "  ".join(v.rjust(w) if 2 <= i <= 7 else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))).rstrip()
    frozen = (f"frozen {', '.join(trace.frozen_patterns)}: {trace.frozen_params:,} parameters"
              if trace.frozen_params else "nothing frozen")
    out = [f"{spec.name} (torch, input {'x'.join(map(str, trace.input_shape))}"
           f"{', meta device' if trace.device == 'meta' else ''}): one training step measured at the dispatch level "
           "(multiply-accumulates per pass)",
           f"loss: {trace.loss}; recompute: {trace.recompute}"
           f"{' (accounted from the measured forward)' if trace.recompute != 'none' else ''}; {frozen}; "
           f"{trace.trainable_params:,} trainable parameters",
           line(header)] + [line(c) for c in cells]
    out += summary_lines(spec, trace)
    out += [f"note: {note}" for note in trace.notes]
    items = comparisons(spec, trace)
    out += ["", f"training conventions against the {TR.MEASURED_NAME} (FLOPs per {trace.unit})"]
    out += comparison_lines(items, trace.unit)
    out += [f"[{i}] {c.name}: {c.citation}" for i, c in enumerate(items, 1)]
    if counted:
        out += ["", "training-FLOPs counters"] + counter_lines(counted)
    return "\n".join(out)


def counter_lines(counted: Sequence) -> list[str]:
    out = []
    for r in counted:
        if r.status != "ok":
            out.append(f"{r.tool} {r.version}: {r.status}: {r.message} ({r.source})")
            continue
        residual = "" if r.residual is None else f", residual {r.residual:,.0f}"
        out.append(f"{r.tool} {r.version} {r.metric} {r.value:,.0f} = {r.decomposition}{residual}"
                   + (f"; {r.message}" if r.message else "") + f" ({r.source})")
    return out


def csv_text(trace: TR.TrainingTrace) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in layer_rows(trace):
        writer.writerow(["" if r[c] is None else (f"{r[c]:.6f}" if isinstance(r[c], float) else r[c])
                         for c in COLUMNS])
    return buffer.getvalue()


def json_data(spec, trace: TR.TrainingTrace, counted: Sequence = ()) -> dict:
    def num(x):
        x = Fraction(x)
        return int(x) if x.denominator == 1 else float(x)
    return {"model": spec.name, "input_shape": list(trace.input_shape), "device": trace.device, "loss": trace.loss,
            "recompute": trace.recompute, "frozen": list(trace.frozen_patterns), "frozen_params": trace.frozen_params,
            "trainable_params": trace.trainable_params, "layers": layer_rows(trace), "terms": trace.terms(),
            "training_flops": trace.flops, "per": trace.unit, "training_flops_per_unit": num(trace.flops_per_unit),
            "backward_over_forward": trace.ratio, "notes": list(trace.notes),
            "conventions": [{"convention": c.name, "value": num(c.value), "relative_to_measured": c.relative,
                             "basis": c.basis, "residual": num(c.residual),
                             "differences": {k: num(v) for k, v in c.differences}, "citation": c.citation}
                            for c in comparisons(spec, trace)],
            "counters": [r.__dict__ for r in counted]}


def json_text(spec, trace: TR.TrainingTrace, counted: Sequence = ()) -> str:
    return json.dumps(json_data(spec, trace, counted), indent=2)


def formulas_training(spec, fmt: str, timeout: float, training: bool, frozen: Sequence[str], recompute: str,
                      counters: Optional[str]) -> None:
    """`reconcile formulas SPEC --training [...]`: measure in a job process, print as asked."""
    import click

    from . import training as measure_mod
    from .errors import UserError

    if not training:
        raise UserError("--frozen, --recompute and --counters go with --training")
    tools = [t.strip() for t in counters.split(",") if t.strip()] if counters is not None else []
    for tool in tools:
        if tool not in measure_mod.TRAINING_COUNTERS:
            raise UserError(f"unknown training counter {tool!r}; counters: "
                            f"{', '.join(measure_mod.TRAINING_COUNTERS)}")
    trace = measure_mod.measure(spec, frozen, recompute, timeout)
    counted = measure_mod.counters(spec, trace, tools, timeout) if tools else []
    if fmt == "json":
        click.echo(json_text(spec, trace, counted))
    elif fmt == "csv":
        click.echo(csv_text(trace), nl=False)
    else:
        click.echo(table(spec, trace, counted))
