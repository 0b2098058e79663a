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
    return TR.Context(shapes, TR.position_params(trace))


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
    if ctx is not None:  # a token model: 6ND is among the LLM conventions, the generic 6N would repeat it
        out = TR.llm_comparisons(trace, ctx) + [c for c in out if not c.name.startswith("6N per")]
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


def fold_blocks(rows: list[dict]) -> list[dict]:
    """Rows of blocks identical to the block before them (same layers, numbers and notes, names relative to the
    block) folded into one line: a 96-layer model's table stays readable. Only consecutive repeats fold."""
    def key(block: str, group: list[dict]) -> tuple:
        return tuple(tuple((k, r[k][len(block):] if k == "layer" else r[k]) for k in COLUMNS if k != "block")
                     for r in group)
    out: list[dict] = []
    i = 0
    while i < len(rows):
        block = rows[i]["block"]
        j = i
        while j < len(rows) and block and rows[j]["block"] == block:
            j += 1
        if not block:
            out.append(rows[i])
            i += 1
            continue
        group, first = rows[i:j], block
        out += group
        i, repeats, last = j, 0, block
        while i < len(rows) and rows[i]["block"] and rows[i]["block"] != last:
            other = rows[i]["block"]
            k = i
            while k < len(rows) and rows[k]["block"] == other:
                k += 1
            if key(other, rows[i:k]) != key(first, group):
                break
            repeats, last, i = repeats + 1, other, k
        if repeats:
            out.append({**{c: "" for c in COLUMNS}, "layer": f"... {repeats} more block{'s' if repeats > 1 else ''} "
                        f"up to {last}", "kind": "", "note": f"each the same as {first}", "folded": True})
    return out


def table(spec, trace: TR.TrainingTrace, counted: Sequence = ()) -> str:
    rows = fold_blocks(layer_rows(trace))
    shown = [r for r in rows if r.get("folded") or r["layer"] == "__total__" or r["fwd_macc"] or r["fwd_attn"]
             or r["embed_wgrad"]]
    header = ("layer", "kind", "fwd MACC", "fwd ATTN", "dgrad", "wgrad", "recompute", "bwd/fwd", "note")
    cells = [(r["layer"], "", "", "", "", "", "", "", r["note"]) if r.get("folded") else
             (r["layer"], r["kind"], _n(r["fwd_macc"]), _n(r["fwd_attn"]), _n(r["dgrad_macc"] + r["dgrad_attn"]),
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
                      counters: Optional[str], tokens: Optional[float] = None) -> None:
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
        if tokens is not None:
            total = float(trace.flops_per_unit) * tokens
            click.echo(f"x {tokens:.4g} {trace.unit}s: measured {total:.4g} training FLOPs")


# ------------------------------------------------------------------------------------------------ the table
# The models the report's training section measures: (label, spec, seq_len). The counters run on real tensors
# on this 2-core machine, so token models are counted at COUNTER_SEQ_LEN tokens (each counter against a trace
# of that same input); Llama-7B is traced on the meta device (no memory), and the counters that need real tensors
# (calflops, DeepSpeed) run on a small configuration of the same architecture instead (COUNTER_STAND_INS).
TABLE_MODELS = (("GPT-2 small", "preset:gpt2-small", None), ("BERT-base", "preset:bert-base", None),
                ("Llama-7B", "preset:llama-7b", 128), ("ResNet-50", "resnet50_v15", None))
COUNTER_SEQ_LEN = 128
COUNTER_STAND_INS = {"preset:llama-7b": "hf:llama?hidden_size=256&intermediate_size=688&num_hidden_layers=2&"
                                        "num_attention_heads=4&num_key_value_heads=4&vocab_size=32000&"
                                        "max_position_embeddings=128"}
# the conventions the summary table shows, by name (the full list is in each model's comparison)
TABLE_CONVENTIONS = ("6ND (N = all parameters)", "3 x forward (backward = 2 x forward)", "PaLM 6N + 12 L H Q T",
                     "Megatron-LM without recomputation", "Megatron-LM num_floating_point_operations")
CSV_NAME, MD_NAME = "training.csv", "training.md"


def measure_table(models_=TABLE_MODELS, with_counters: bool = True, timeout: float = 900.0,
                  progress=None) -> tuple[list[dict], list[dict]]:
    """Measure each model (and run the training counters on it, or on its stand-in): one summary row per model,
    one row per (model, convention) and per (model, counter)."""
    from . import models as model_specs
    from . import training as measured

    rows, detail = [], []
    for label, text, seq_len in models_:
        spec = model_specs.resolve(text, seq_len=seq_len)
        trace = measured.measure(spec, timeout=timeout)
        if progress:
            progress(f"{label}: traced ({trace.device})")
        items = {c.name: c for c in comparisons(spec, trace)}
        row = {"model": label, "spec": text, "input": "x".join(map(str, trace.input_shape)), "per": trace.unit,
               "device": trace.device, "forward_flops": Fraction(2 * trace.forward, trace.units),
               "training_flops": trace.flops_per_unit, "training_over_forward": 1 + trace.ratio,
               "backward_over_forward": trace.ratio}
        for name in TABLE_CONVENTIONS:
            row[name] = items[name].relative if name in items else None
        rows.append(row)
        for c in items.values():
            detail.append({"model": label, "kind": "convention", "name": c.name, "value": c.value,
                           "measured": c.measured, "relative": c.relative, "basis": c.basis,
                           "residual": c.residual,
                           "note": "; ".join(f"{k} {float(v):+,.0f}" for k, v in c.differences)})
        if not with_counters:
            continue
        for counted_text, tools in ((text, ("torch_flop_counter", "ptflops")),
                                    (COUNTER_STAND_INS.get(text, text), ("calflops", "deepspeed"))):
            counted_spec = model_specs.resolve(counted_text, seq_len=COUNTER_SEQ_LEN) if spec.token_model else spec
            counted_trace = trace if counted_spec.input_shape == spec.input_shape and counted_text == text else \
                measured.measure(counted_spec, timeout=timeout)
            where = label if counted_text == text else f"{label} (small config {counted_text})"
            where += f", {'x'.join(map(str, counted_trace.input_shape))}"
            for r in measured.counters(counted_spec, counted_trace, tools, timeout):
                detail.append(_counter_row(where, r, counted_trace))
        if progress:
            progress(f"{label}: counters done")
    return rows, detail


def _counter_row(label: str, r, trace: TR.TrainingTrace) -> dict:
    per_unit = None if r.value is None else Fraction(r.value).limit_denominator(1) / trace.units
    relative = None if per_unit is None else float((per_unit - trace.flops_per_unit) / trace.flops_per_unit)
    return {"model": label, "kind": "counter", "name": f"{r.tool} {r.version} {r.metric}".strip(), "value": per_unit,
            "measured": trace.flops_per_unit, "relative": relative, "basis": r.decomposition,
            "residual": r.residual, "note": f"{r.status}: {r.message}" if r.status != "ok" else r.message}


def _fmt(x) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:+.2%}"
    return _n(x)


def table_markdown(rows: list[dict], detail: list[dict]) -> str:
    out = ["# Training compute, measured", "",
           "One training step of each model traced at the dispatch level (reconcile/frontends/torch_training.py; "
           "loss: the sum of the outputs; nothing frozen; no recomputation), in FLOPs at 2 per multiply-accumulate "
           "per token (token models) or per sample, and how far each convention is from it (convention / measured "
           "- 1). Regenerate: `python bench/bench_training.py table`.", "",
           "| model | input | per | forward | forward + backward | (fwd+bwd)/fwd | "
           + " | ".join(TABLE_CONVENTIONS) + " |",
           "|" + "---|" * (6 + len(TABLE_CONVENTIONS))]
    for r in rows:
        out.append(f"| {r['model']} (`{r['spec']}`) | {r['input']} ({r['device']}) | {r['per']} | "
                   f"{_n(r['forward_flops'])} | {_n(r['training_flops'])} | {r['training_over_forward']:.4f} | "
                   + " | ".join(_fmt(r[name]) for name in TABLE_CONVENTIONS) + " |")
    for kind, title in (("convention", "Every convention against the measured figure"),
                        ("counter", "Training-FLOPs counters (value per token or sample; the decomposition in "
                                    "model totals; residual: value minus its catalogue rule, "
                                    "conventions/training.py COUNTER_CONVENTIONS)")):
        out += ["", f"## {title}", "", "| model | convention / counter | value | vs measured | basis | residual | "
                                       "difference by component / note |", "|---|---|---|---|---|---|---|"]
        for d in detail:
            if d["kind"] != kind:
                continue
            residual = "" if d["residual"] is None else _n(Fraction(d["residual"]).limit_denominator(1000))
            note = str(d["note"]).replace("|", "/")
            basis = str(d["basis"]).replace("|", "/")
            out.append(f"| {d['model']} | {d['name']} | {_fmt(d['value'])} | {_fmt(d['relative'])} | {basis} | "
                       f"{residual} | {note} |")
    return "\n".join(out) + "\n"


def table_csv(rows: list[dict], detail: list[dict]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "kind", "name", "value_per_unit", "measured_per_unit", "relative", "basis", "residual",
                     "note"])
    for d in detail:
        writer.writerow([d["model"], d["kind"], d["name"], "" if d["value"] is None else float(d["value"]),
                         float(d["measured"]), "" if d["relative"] is None else f"{d['relative']:.6f}", d["basis"],
                         "" if d["residual"] is None else float(d["residual"]), d["note"]])
    for r in rows:
        writer.writerow([r["model"], "measured", "forward + backward", float(r["training_flops"]),
                         float(r["training_flops"]), "0.000000", "2*(forward + input gradient + weight gradient)", 0,
                         f"forward {float(r['forward_flops'])}; (fwd+bwd)/fwd {r['training_over_forward']:.6f}"])
    return buffer.getvalue()


SUMMARY_NAME = "training_summary.csv"
TABLE_DIR = ("reports", "training")  # under the project root: the committed tables


def summary_csv(rows: list[dict]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "spec", "input", "per", "forward FLOPs", "forward+backward FLOPs", "(fwd+bwd)/fwd"]
                    + [f"{name} vs measured" for name in TABLE_CONVENTIONS])
    for r in rows:
        writer.writerow([r["model"], r["spec"], f"{r['input']} ({r['device']})", r["per"], _n(r["forward_flops"]),
                         _n(r["training_flops"]), f"{r['training_over_forward']:.4f}"]
                        + [_fmt(r[name]) for name in TABLE_CONVENTIONS])
    return buffer.getvalue()


def write_tables(out_dir, rows: list[dict], detail: list[dict]) -> list:
    from pathlib import Path

    from .render import write_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {MD_NAME: table_markdown(rows, detail), CSV_NAME: table_csv(rows, detail), SUMMARY_NAME: summary_csv(rows)}
    for name, text in files.items():
        write_atomic(out / name, text)
    return [out / name for name in files]


def report_blocks(root=None) -> list:
    """The report's training section, from the committed summary (reports/training/training_summary.csv, written
    by `python bench/bench_training.py table`): a declared input like reference_models/published.csv. Nothing
    when it is absent."""
    from pathlib import Path

    import pandas as pd

    from .render import Heading, Para, Table

    base = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    path = base.joinpath(*TABLE_DIR, SUMMARY_NAME)
    if not path.is_file():
        return []
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [Heading("Training compute, measured", 2),
            Para("One training step per model traced at the dispatch level (forward, input-gradient and "
                 "weight-gradient products; FLOPs at 2 per multiply-accumulate), and how far 6ND, 3 x forward, PaLM "
                 "and Megatron-LM are from it (convention / measured - 1). Every convention, every training-FLOPs "
                 f"counter and the terms that make each difference: `{'/'.join(TABLE_DIR)}/{MD_NAME}`; one model: "
                 "`reconcile formulas SPEC --training`."),
            Table(frame)]
