"""The run's report: records.csv, explanations.csv, a short report.md, one page per model under models/, and a
self-contained report.html (the summary first, each model's detail collapsed below it).

A report is a function of its run's records and the declared inputs (the models' definitions, the catalogue,
reference_models/published.csv): it never reads a cache, so the same records give byte-identical files.
Sections follow what ran: the published numbers only for the models of published.csv that ran at batch 1, the
audit of the reference document only when its LeNet ran.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pandas as pd

from conventions import terms as T

from .diff import some as _some
from .errors import UserError
from .records import COMPUTE, MODEL_LEVEL, OK, PARAMS, TOTAL
from .render import Block, Chart, Details, Heading, Para, Strips, Table, Toc, fmt as _fmt, integral, link, \
    render_html, render_md, to_csv


# ------------------------------------------------------------------------------------------------ aggregation
def totals_table(records: pd.DataFrame, model: str, doc_flops: Optional[int]) -> pd.DataFrame:
    rows = []
    df = records[records["model"] == model]
    for rec in df[(df["layer"] == TOTAL) | (df["layer"] == MODEL_LEVEL)].itertuples(index=False):
        ratio = ""
        if rec.status == OK and rec.quantity == COMPUTE and doc_flops:
            ratio = f"{rec.value / doc_flops:.3f}"
        rows.append({"tool": rec.tool, "version": rec.tool_version, "quantity": rec.quantity, "metric": rec.metric,
                     "value": _fmt(rec.value) if rec.status == OK else rec.status,
                     "/ document FLOPs": ratio, "note": capped(rec.message)})
    return pd.DataFrame(rows, columns=["tool", "version", "quantity", "metric", "value", "/ document FLOPs", "note"])


def _labeller(df: pd.DataFrame):
    """"tool: metric", with the version when the frame holds several versions of that tool (Netscope)."""
    multi = {t for t, g in df.groupby("tool") if g["tool_version"].nunique() > 1}
    return lambda r: f"{r.tool} {r.tool_version}: {r.metric}" if r.tool in multi else f"{r.tool}: {r.metric}"


def layer_matrix(records: pd.DataFrame, model: str, quantity: str) -> pd.DataFrame:
    df = records[(records["model"] == model) & (records["quantity"] == quantity)
                 & ~records["layer"].isin([TOTAL, MODEL_LEVEL])]
    if df.empty:
        return pd.DataFrame()
    layers = list(dict.fromkeys(df["layer"]))
    df = df.assign(metric=df["metric"].map(metric_family))  # TF: one column per op type, not per op
    if df.duplicated(["layer", "tool", "tool_version", "metric"]).any():
        df = df.groupby(["layer", "tool", "tool_version", "metric", "status"], sort=False, as_index=False).agg(
            value=("value", lambda v: sum(x for x in v if x is not None)), layer_kind=("layer_kind", "first"))
    label = _labeller(df)
    columns = list(dict.fromkeys(label(r) for r in df.itertuples(index=False)))
    cells = {(r.layer, label(r)): (_fmt(r.value) if r.status == OK else r.status) for r in df.itertuples(index=False)}
    kinds = {r.layer: r.layer_kind for r in df.itertuples(index=False) if r.layer_kind}
    table = [{"layer": layer, "kind": kinds.get(layer, ""), **{c: cells.get((layer, c), "") for c in columns}}
             for layer in layers]
    return pd.DataFrame(table, columns=["layer", "kind"] + columns)


def metric_family(metric: str) -> str:
    """TF's per-op metrics by op type: `conv1/Conv2D` and `layer1.0.conv2/Conv2D` are both `*/Conv2D`;
    a repeated op in one layer (`ln1/AddV2_1`) is the same family."""
    if "/" not in metric:
        return metric
    namespace = metric.split(":", 1)[0] + ":" if ":" in metric else ""
    return namespace + "*/" + re.sub(r"_\d+$", "", metric.rsplit("/", 1)[1])


DOCUMENT = "document"  # the tool id of the document's own formulas (reconcile/adapters/document.py)
SUM_OF_LAYERS = "sum of layers"  # how diff.explain words a container's number (the sum of its layers' numbers)
NOTE_CHARS = 300  # a note longer than this is cut in the report; records.csv keeps it whole


def capped(text: str, limit: int = NOTE_CHARS) -> str:
    """A message as a report cell: whole when short, else its first `limit` characters (at a word) and where to
    read the rest."""
    if not isinstance(text, str) or len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut} ... ({len(text):,} characters; whole in records.csv, column message)"


def counts_matrix(explanations: pd.DataFrame) -> pd.DataFrame:
    """Tool/metric x layer kind -> the convention (decomposition) seen, over every model of the run."""
    df = explanations[(explanations["layer"] != TOTAL) & (explanations["status"] == OK)
                      & (explanations["layer_kind"] != "") & explanations["residual"].notna()]
    if df.empty:
        return pd.DataFrame()
    df = df.assign(metric=df["metric"].map(metric_family))
    kinds = list(dict.fromkeys(df["layer_kind"]))
    rows = []
    multi = {t for t, g in df.groupby("tool") if g["tool_version"].nunique() > 1}
    for (tool, version, metric), group in df.groupby(["tool", "tool_version", "metric"], sort=False):
        row = {"tool: metric": f"{tool} {version}: {metric}" if tool in multi else f"{tool}: {metric}"}
        for kind in kinds:
            seen = sorted(set(group[group["layer_kind"] == kind]["decomposition"].str.replace(" (ambiguous)", "")))
            sums = [d for d in seen if d.startswith(SUM_OF_LAYERS)]  # a container's total: a number per model
            if len(sums) > 1:
                seen = [d for d in seen if d not in sums] + [f"{SUM_OF_LAYERS} ({len(sums)} containers)"]
            row[kind] = " / ".join(seen)
        rows.append(row)
    return pd.DataFrame(rows, columns=["tool: metric"] + kinds)


def layer_lines(group: pd.DataFrame) -> list[str]:
    """One sentence per layer for small models; for big ones, one example per (metric family, layer kind,
    decomposition) with how many layers share it. Unexplained and non-ok rows are always listed."""
    rows = [r for r in group.itertuples(index=False)
            if r.metric not in ("params", "param", "Param #", "trainable_params") and r.layer != TOTAL]
    if len(rows) <= 40:
        return [f"- {r.layer}: {r.explanation}" for r in rows]
    lines, shared = [], {}
    for r in rows:
        if r.residual is not None and r.residual == r.residual and r.residual != 0:
            lines.append(f"- {r.layer}: {r.explanation}")  # unexplained: always shown
        else:
            key = r.explanation if r.status != OK else r.decomposition  # failures: grouped by message
            shared.setdefault((metric_family(r.metric), r.layer_kind, r.status, key), []).append(r)
    for (_, kind, _, _), same in shared.items():
        more = f" (and {len(same) - 1} more {kind or 'such'} rows alike: {_some([x.layer for x in same[1:]], 4)})" \
            if len(same) > 1 else ""
        lines.append(f"- {same[0].layer}: {same[0].explanation}{more}")
    return lines


def problems_table(records: pd.DataFrame) -> pd.DataFrame:
    """Non-ok rows, one line per (tool, status, message) with the models and layers it hit."""
    df = records[records["status"] != OK]
    # one row per reason: the TF profiler names each graph op in its message ("(graph op .../layer4.2.relu_3/Relu)")
    df = df.assign(message=df["message"].str.replace(r" \(graph op [^)]*\)", "", regex=True))
    rows = []
    for (tool, status, message), group in df.groupby(["tool", "status", "message"], sort=False):
        layers = list(dict.fromkeys(group["layer"]))
        rows.append({"tool": tool, "status": status, "models": ", ".join(dict.fromkeys(group["model"])),
                     "layers": _some(layers), "message": capped(message)})
    return pd.DataFrame(rows, columns=["tool", "status", "models", "layers", "message"])





def totals_by_model(records: pd.DataFrame, models: list[str], docs: Optional[dict] = None) -> pd.DataFrame:
    """Every tool metric's compute total, one column per model ("" where the tool printed none); with `docs`
    (model -> the document's Counts), each total divided by the document's FLOPs for its model, and a row with
    no such ratio left out."""
    df = records[(records["layer"] == TOTAL) & (records["quantity"] == COMPUTE)]
    if df.empty:
        return pd.DataFrame()
    label = _labeller(df)
    rows: dict[str, dict[str, str]] = {}
    for rec in df.itertuples(index=False):
        cell = _fmt(rec.value) if rec.status == OK else rec.status
        if docs is not None and rec.status == OK:
            doc = docs.get(rec.model)
            cell = f"{rec.value / doc.flops:.3f}" if doc and doc.flops and rec.value is not None else ""
        rows.setdefault(label(rec), {})[rec.model] = cell
    return pd.DataFrame([{"tool: metric": name, **{m: cells.get(m, "") for m in models}}
                         for name, cells in rows.items() if any(cells.values())], columns=["tool: metric"] + models)


def model_file_name(model: str) -> str:
    """The file stem of a model's page and chart (reconcile.identity: `lenet`, `hf_gpt2_n_layer_2-<hash>`)."""
    from .identity import stem

    return stem(model)


def layer_ir(records: pd.DataFrame, model: str, specs: Optional[dict] = None):
    """The layer IR the run computed for `model` (records.attrs["irs"], when the run keeps them), else the
    canonical IR of its spec."""
    from .diff import canonical_ir

    return canonical_ir(model, specs, records.attrs.get("irs"))  # the run's IR; None when its tracing failed


def document_totals(records: pd.DataFrame, model: str, specs: Optional[dict] = None):
    """The document's Counts for a whole model (None if the model cannot be read)."""
    from conventions.formulas import model_counts

    ir = layer_ir(records, model, specs)
    return model_counts(ir)[-1][1] if ir is not None else None


# ------------------------------------------------------------------------------------------------ chart
def chart(records: pd.DataFrame, model: str, doc_flops: Optional[int], file_name: str = "") -> Optional[Chart]:
    """Each tool's compute total relative to the document's FLOPs (1.0 = the document's number)."""
    if not doc_flops:
        return None
    df = records[(records["model"] == model) & (records["layer"] == TOTAL) & (records["quantity"] == COMPUTE)
                 & (records["status"] == OK)]
    if df.empty:
        return None
    # zero totals of a tool that has non-zero ones are empty columns (Netscope's div/exp), not findings
    nonzero = set(df[df["value"] != 0]["tool"])
    df = df[(df["value"] != 0) | ~df["tool"].isin(nonzero)]
    label = _labeller(df)
    bars = [(label(r), float(r.value) / doc_flops, "same" if r.value == doc_flops else "other")
            for r in df.itertuples(index=False)]
    return Chart(f"{model}: document FLOPs = {doc_flops:,}", bars,
                 {"same": "equals the document's FLOPs", "other": "differs from the document's FLOPs"},
                 "tool total / document FLOPs", file_name or f"chart_{model_file_name(model)}.svg",
                 [(1.0, "1.0: the document's FLOPs", False), (0.5, "0.5: about a multiply-accumulate count", True)],
                 f"{model}: tool totals relative to the document's FLOPs")


# ------------------------------------------------------------------------------------------------ the document audit
def document_audit(records: pd.DataFrame, specs: Optional[dict] = None) -> list[Block]:
    """What the reference document gets wrong or leaves ambiguous, checked with its own formulas on its LeNet
    (docs/document.md has the formulas and the worked example)."""
    from conventions.formulas import layer_counts

    lenet = layer_ir(records, "lenet", specs)
    ip1, conv2, pool1 = (layer_counts(lenet.layer(n)) for n in ("ip1", "conv2", "pool1"))
    pool_terms = T.terms(lenet.layer("pool1"))
    return [
        Heading("Auditing the reference document", 2),
        Para(f"**'FC FLOPs equal its params' is contradicted by its own formula.** For ip1 (800 -> 500) the "
             f"document's FLOPs_fc = 2 × n_in × n_out + n_out = {ip1.flops:,}, while param_fc = n_in × n_out + "
             f"n_out = {ip1.params:,}. They differ by n_in × n_out = {ip1.flops - ip1.params:,}. The claim only "
             f"holds for a MACC-style count plus bias adds (400,000 + 500 = 400,500), i.e. in exactly the "
             f"convention the document says FLOPs is not."),
        Para(f"**The conv2 MACC line is mislabelled.** The document writes `macc_conv1 = (5^2 * 20) * 50 * 8 * 8 = "
             f"1.6M`; that is conv2's MACC ({conv2.macc:,}); conv1's is 288,000."),
        Para(f"**Pooling is ambiguous.** FLOPs_pool1 = 20 × 24 × 24 = {pool1.flops:,} is pool1's input elements; "
             f"for a 2x2/2 pool this equals kernel_area × output elements ({pool_terms[T.WINDOW]:,}), so the "
             f"example cannot tell the readings apart. The harness takes the literal reading (input elements) and "
             f"the sepnet model's 3x3/2 pool separates them."),
        Para("**Its tool comparison mixes conventions.** thop's 2,307,720 came from a 2020 thop that counted the "
             "conv bias adds (today's 0.1.1 prints 2,293,000); torchstat's 'MAdd' and 'Flops' columns are swapped "
             "relative to their meaning; the TF profiler's 5,478,522 includes the variable initialisers and the "
             "784-element input Variable, 4,615,950 after freezing."),
    ]


# ------------------------------------------------------------------------------------------------ published numbers
def _per_image(model: str, specs: Optional[dict]) -> bool:
    spec = (specs or {}).get(model)
    return spec is None or spec.input_shape[0] == 1


def published_section(records: pd.DataFrame, specs: Optional[dict] = None) -> tuple[list[Block], list[Block]]:
    """Every number of reference_models/published.csv whose model ran at batch 1 (papers print per-image
    numbers), ranked against the conventions and this run's tool totals: (a short table of the verdicts, for
    the first screen; each number in full: what the paper counts, its citation, the verdict with its tools)."""
    import reference_models

    from . import which
    ran = set(records["model"])
    rows, lines = [], []
    for pub in reference_models.published_numbers():
        model = pub["model"]
        printed_batch = pub.get("input_shape", "").split(",")[0]  # the 3 crops of a video clip: not batch 1
        if model not in ran or not _per_image(model, specs) or printed_batch not in ("", "1"):
            continue
        ir = layer_ir(records, model, specs)
        if ir is None:
            continue
        try:  # as printed, unit word included ("4.09 GFLOPS", "15300 Million Mult-Adds")
            printed = which.parse_value(f"{pub['printed']} {pub['unit']}")
        except UserError:  # a unit the parser does not know ("num_params"): the machine-readable value
            printed = which.parse_value(pub["value"])
        result = which.explain_number(ir, printed, pub["quantity"], records=records[records["model"] == model])
        top = result.families[0] if result.families else None
        tools = [f"{r.candidate.tool} {r.candidate.metric}" for r in result.tool_matches()]
        rows.append({"model": model, "printed": f"{pub['printed']} {pub['unit']}",
                     "verdict": top.name if top else "",
                     "match": f"{top.best.match} ({top.best.relative_error:+.2%})" if top else "",
                     "tools at the printed precision": (f"{len(tools)}: {_some(tools, 3)}" if tools else "none")})
        lines.append(f"- **{model}, {pub['printed']} {pub['unit']}** ({pub['citation']}; the paper counts: "
                     f"{pub['counts']}): {result.verdict()}")
    if not rows:
        return [], []
    return ([Heading(PUBLISHED_HEADING, 2), Table(pd.DataFrame(rows)),
             Para("Each number as the paper printed it (`reference_models/published.csv`), ranked against every "
                  "convention computed from the model's layers and every tool total of this run; its printed "
                  "digits set the tolerance. Citations and every tool: [below](#published-numbers-in-full); "
                  "`reconcile which MODEL VALUE` prints the families of conventions.")],
            [Heading("Published numbers in full", 2), Para("\n".join(lines))])


PUBLISHED_HEADING = "Published numbers: which convention did the paper use?"


# ------------------------------------------------------------------------------------------------ totals as ratios
def spread_chart(records: pd.DataFrame, models: list[str], docs: dict) -> Optional[Strips]:
    """One strip per model: each tool's compute total as a dot at total / the document's FLOPs; the note gives
    their range and the values most of them share ("17 totals, 0.50 to 1.01; most at 0.50 (x7), 1.00 (x6)"):
    where the counters agree, and by how much they spread."""
    df = records[(records["layer"] == TOTAL) & (records["quantity"] == COMPUTE) & (records["status"] == OK)]
    if df.empty:
        return None
    label = _labeller(df)
    rows = []
    for model in models:
        doc = docs.get(model)
        here = df[df["model"] == model]
        if here.empty:
            continue
        if not doc or not doc.flops:
            rows.append((model, "no document FLOPs (no FLOPs formula for its layers)", []))
            continue
        nonzero = set(here[here["value"] != 0]["tool"])  # Netscope's zero div/exp columns are not findings
        dots = [(float(r.value) / doc.flops, f"{label(r)} = {_fmt(r.value)} ({float(r.value) / doc.flops:.3f})",
                 "same" if r.value == doc.flops else "other")
                for r in here.itertuples(index=False) if r.value != 0 or r.tool not in nonzero]
        groups: dict[str, int] = {}
        for value, _, _ in sorted(dots):
            groups[f"{value:.2f}"] = groups.get(f"{value:.2f}", 0) + 1
        common = sorted((v for v in groups if groups[v] > 1), key=lambda v: (-groups[v], float(v)))[:2]
        values = [v for v, _, _ in dots]
        note = f"{len(dots)} totals, {min(values):.2f} to {max(values):.2f}" + \
            ("; most at " + ", ".join(f"{v} (x{groups[v]})" for v in common) if common else "")
        # the dots that equal the document's number are drawn last, on top of the others
        rows.append((model, note, sorted(dots, key=lambda d: d[2] == "same")))
    if not rows:
        return None
    return Strips("Each counter's total / the document's FLOPs", rows,
                  {"same": "equals the document's FLOPs", "other": "differs"},
                  "tool total / document FLOPs (hover a dot for the tool)", "chart_totals.svg",
                  [(1.0, "1.0: the document's FLOPs", False), (0.5, "0.5: about a multiply-accumulate count", True)],
                  "every counter's compute total per model, relative to the document's FLOPs")


# ------------------------------------------------------------------------------------------------ assembly
def _glossary(records: pd.DataFrame) -> list[Block]:
    versions = records[["tool", "tool_version"]].drop_duplicates()
    return [
        Para("Each number is written as a combination of the reference document's basis terms (`docs/document.md` "
             "in the repository has the document's formulas and its LeNet example): "
             + "; ".join(f"**{t}** = {m}" for t, m in T.TERM_MEANINGS.items())
             + ". The document's own FLOPs = 2 × MACC + BIAS for conv and FC layers; its pooling FLOPs = IN."),
        Para("Tool versions: " + ", ".join(f"{r.tool} {r.tool_version}" for r in versions.itertuples(index=False))
             + "."),
    ]


def reference_section(records: pd.DataFrame, models: list[str]) -> list[Block]:
    """Where the reference itself is incomplete: models that could not be traced, conservation gaps (params
    not equal to the model's parameters(), MACC not equal to the products it executed), with their size, and ops
    the op table has no entry for (`unsupported_op` rows)."""
    irs, ir_errors = records.attrs.get("irs") or {}, records.attrs.get("ir_errors") or {}
    lines = []
    for model in models:
        if model in ir_errors:
            lines.append(f"- `{model}` could not be traced to its layer IR: {ir_errors[model]}")
        ir = irs.get(model)
        for layer in (ir.layers if ir is not None else ()):
            if layer.kind in ("gap", "unsupported_op"):  # a law that does not hold; an op the op table lacks
                lines.append(f"- `{model}`: {layer.attr('why')}")
    if not lines:
        return []
    return [Heading("Where the reference is incomplete", 2),
            Para("The document's formulas are the yardstick; on these models it could not account for everything "
                 "(the gap is a row of kind `gap` on the model's page):\n" + "\n".join(lines))]


def summary(records: pd.DataFrame, explanations: pd.DataFrame, specs: Optional[dict] = None) -> list[Block]:
    """The short report, the answer first: per model, where every counter's total sits against the document's
    FLOPs (the chart), then the published numbers' verdicts; then contents, the totals as ratios and as
    printed, what each tool counts per layer kind, the terms, failures, the audit and the model pages."""
    models = list(dict.fromkeys(records["model"]))
    docs = {m: document_totals(records, m, specs) for m in models}
    tools = records[records["tool"] != DOCUMENT]["tool"].nunique()
    blocks: list[Block] = [
        Heading("Which FLOPs is that number?", 1),
        Para(f"{tools} counter{'' if tools == 1 else 's'} ran on {len(models)} model{'' if len(models) == 1 else 's'}. "
             "Each dot below is one counter's total divided by the "
             "reference document's FLOPs for that model (2 × MACC + BIAS for conv and FC layers): 1.0 is the "
             "document's number, 0.5 about a multiply-accumulate count. Then the papers' numbers and which "
             "convention each one used; what each tool counts per layer kind and the terms are further down.")]
    spread = spread_chart(records, models, docs)
    if spread:
        blocks.append(spread)
    published, published_detail = published_section(records, specs)
    blocks += published + [Toc(2)]
    ratios = totals_by_model(records, [m for m in models if docs.get(m) and docs[m].flops], docs)
    if not ratios.empty:
        blocks += [Heading("Totals per model", 2),
                   Para("Each tool's compute total divided by the document's FLOPs for the model (a model whose "
                        "document FLOPs are 0 has no column here); the document's formulas give "
                        + "; ".join(f"{m}: FLOPs {d.flops:,}, MACC {d.macc:,}" for m, d in docs.items() if d) + "."),
                   Table(ratios),
                   Details("Totals as the tools printed them", [Table(totals_by_model(records, models))], 3)]
    blocks += published_detail
    blocks += reference_section(records, models)
    from .training_report import report_blocks as training_blocks  # the committed measured training table

    blocks += training_blocks()
    problems = problems_table(records)
    if not problems.empty:
        blocks += [Heading("Failures, unsupported layers and skipped jobs", 2),
                   Para("A tool that crashed, timed out, is not installed, or has no formula for a layer kind "
                        "(and silently counts it 0) appears here with its message."), Table(problems)]
    matrix = counts_matrix(explanations)
    if not matrix.empty:
        blocks.append(Details("What each tool counts", [
            Para("Per tool metric and layer kind, the combination of basis terms that reproduces the tool's "
                 "number on every layer of that kind in this run (0 = counted as nothing; blank = the tool has no "
                 "row for that kind; two combinations = layers with and without a term, e.g. convs with and "
                 "without bias)."), Table(matrix)]))
    blocks.append(Details("The basis terms and the tool versions", _glossary(records)))
    if "lenet" in models and _per_image("lenet", specs):
        blocks += document_audit(records, specs)
    blocks += [Heading("Models", 2),
               Para("One page per model: its totals, a chart, every layer's numbers and why they differ.\n"
                    + "\n".join(f"- {link(m, f'models/{model_file_name(m)}.md')}" for m in models))]
    return blocks


def model_blocks(records: pd.DataFrame, explanations: pd.DataFrame, model: str, specs: Optional[dict] = None,
                 chart_path: str = "", full: bool = True) -> list[Block]:
    """One model's detail: totals, chart, per-layer numbers, near agreements, every explanation. `full=False`
    (the HTML's collapsed section, kept under 1 MB for the default suite): per-layer compute only, and the
    totals' explanations with a pointer to the model's page for every layer's sentence."""
    from .diff import near_misses

    doc = document_totals(records, model, specs)
    doc_flops = doc.flops if doc else None
    blocks: list[Block] = []
    ir_errors = records.attrs.get("ir_errors") or {}
    if model in ir_errors:
        blocks.append(Para(f"**The model could not be traced to its layer IR**: {ir_errors[model]}. No document "
                           "formulas or explanations for it; its tools' rows say what they did."))
    if doc:
        blocks.append(Para(f"Document formulas: params {doc.params:,}, MACC {doc.macc:,}, FLOPs {doc.flops:,}"
                           + (f" ({doc.note})." if doc.note else ".")))
    blocks += [Heading("Totals", 3), Table(totals_table(records, model, doc_flops))]
    drawn = chart(records, model, doc_flops, chart_path)
    if drawn:
        blocks.append(drawn)
    for quantity in (COMPUTE, PARAMS) if full else (COMPUTE,):
        matrix = layer_matrix(records, model, quantity)
        if not matrix.empty:
            blocks += [Heading(f"Per layer: {quantity}", 3), Table(matrix)]
    close = near_misses(records, model, layer_ir(records, model, specs))
    if close:
        blocks += [Heading("Near agreements and coincidences", 3),
                   Para("Totals within 0.2% of each other (or equal) whose layers differ, difference by "
                        "difference:\n" + "\n".join(f"- {sentence}" for sentence in close))]
    ex = explanations[explanations["model"] == model]
    page = model_file_name(model)
    if not ex.empty:
        blocks.append(Heading("Why the numbers differ", 3))
        residual = ex[ex["residual"].notna() & (ex["residual"] != 0)]
        blocks.append(Para(f"{len(ex)} explanations; {len(residual)} with a non-zero residual (unexplained)."
                           + ("" if full else f" Every layer's sentence: [models/{page}.md](models/{page}.md).")))
        for tool, group in ex.groupby("tool", sort=False):
            total_lines = [f"- **total**: {row.explanation}" for row in group.itertuples(index=False)
                           if row.layer == TOTAL]
            # the document's own per-layer rows are the reference every other sentence quotes
            lines = [] if tool == "document" or not full else layer_lines(group)
            blocks.append(Para(f"**{tool}**\n" + "\n".join(total_lines + lines)))
    return blocks


def build(records: pd.DataFrame, explanations: pd.DataFrame, specs: Optional[dict] = None) \
        -> tuple[list[Block], dict[str, list[Block]], dict[str, list[Block]]]:
    """(the summary blocks, each model's page blocks, each model's shorter HTML section)."""
    pages, sections = {}, {}
    for model in dict.fromkeys(records["model"]):
        pages[model] = [Heading(f"Model {model}", 1), Para("Back to the [summary](../report.md).")] + \
            model_blocks(records, explanations, model, specs, f"chart_{model_file_name(model)}.svg")
        sections[model] = model_blocks(records, explanations, model, specs, f"chart_{model_file_name(model)}.svg",
                                       full=False)
    return summary(records, explanations, specs), pages, sections


def html_blocks(summary_blocks: list[Block], sections: dict[str, list[Block]]) -> list[Block]:
    """The summary, then each model's section collapsed."""
    models_heading = next(i for i, b in enumerate(summary_blocks) if isinstance(b, Heading) and b.text == "Models")
    head = summary_blocks[:models_heading]
    details = [Details(f"Model {model}", blocks) for model, blocks in sections.items()]
    return head + [Heading("Models", 2), Para("Each model's detail, collapsed: click to open. Every layer's "
                                              "explanation is on the model's page, models/MODEL.md.")] + details


def write_outputs(records: pd.DataFrame, out_dir: Path, specs: Optional[dict] = None, progress=None) \
        -> dict[str, Path]:
    """Write every output of a run; each file appears whole (temp file + rename) or not at all."""
    from .diff import explain
    from .progress import printer

    from .api import write_set

    progress = progress or printer(quiet=True)
    specs = specs or records.attrs.get("specs") or {}
    with progress.step(f"explaining {len(records)} numbers"):
        explanations = explain(records, specs, records.attrs.get("irs"))
    with progress.step(f"writing report to {out_dir}"):
        summary_blocks, pages, sections = build(records, explanations, specs)
        files: dict[str, "str | bytes"] = {"records.csv": to_csv(records),
                                           "explanations.csv": explanations_csv(explanations)}
        for model, blocks in pages.items():
            for block in blocks:
                if isinstance(block, Chart):
                    files[f"models/{block.file_name}"] = block.svg()
            files[f"models/{model_file_name(model)}.md"] = render_md(blocks)
        for block in summary_blocks:
            if isinstance(block, Strips):
                files[block.file_name] = block.svg()
        files["report.md"] = render_md(summary_blocks)
        files["report.html"] = render_html(html_blocks(summary_blocks, sections))
        return write_set(out_dir, files)  # staged, switched in as one set, manifest last


def explanations_csv(explanations: pd.DataFrame) -> str:
    frame = integral(explanations, ["value", "reference_value", "residual"])
    for column in ("value", "reference_value", "residual"):
        frame[column] = ["" if v is None else str(v) for v in frame[column]]
    return frame.to_csv(index=False, lineterminator="\n")
