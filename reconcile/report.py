"""Aggregation and rendering of a run: records.csv, explanations.csv, report.md and a self-contained report.html.

The report is built once as a list of blocks (heading, paragraph, table, image) and rendered twice, so the
Markdown and HTML always say the same thing.
"""
from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import pandas as pd

from conventions import terms as T

from .api import to_csv, write_atomic
from .diff import some as _some
from .records import COMPUTE, MODEL_LEVEL, OK, PARAMS, TOTAL


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass
class Image:
    png: bytes
    alt: str
    file_name: str


Block = Union[Heading, Para, Table, Image]


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def integral(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Integral floats back to int (pandas turns int columns with gaps into float)."""
    frame = frame.copy()
    for column in columns:
        frame[column] = pd.Series([None if v is None or (isinstance(v, float) and v != v) else
                                   (int(v) if float(v).is_integer() else float(v)) for v in frame[column]],
                                  dtype=object, index=frame.index)
    return frame


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
                     "/ document FLOPs": ratio, "note": rec.message})
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


def counts_matrix(explanations: pd.DataFrame) -> pd.DataFrame:
    """Tool/metric x layer kind -> the convention (decomposition) seen, over every model of the run."""
    df = explanations[(explanations["layer"] != TOTAL) & (explanations["status"] == OK)
                      & (explanations["layer_kind"] != "") & explanations["residual"].notna()]
    df = df[~df["decomposition"].str.startswith("1*WEIGHTS + 1*BIAS_PARAMS")]
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
    rows = []
    for (tool, status, message), group in df.groupby(["tool", "status", "message"], sort=False):
        layers = list(dict.fromkeys(group["layer"]))
        rows.append({"tool": tool, "status": status, "models": ", ".join(dict.fromkeys(group["model"])),
                     "layers": _some(layers), "message": message})
    return pd.DataFrame(rows, columns=["tool", "status", "models", "layers", "message"])



# ------------------------------------------------------------------------------------------------ chart
def chart(records: pd.DataFrame, model: str, doc_flops: Optional[int]) -> Optional[bytes]:
    """Each tool's compute total relative to the document's FLOPs (1.0 = the document's number)."""
    if not doc_flops:
        return None
    df = records[(records["model"] == model) & (records["layer"] == TOTAL) & (records["quantity"] == COMPUTE)
                 & (records["status"] == OK)]
    if df.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # zero totals of a tool that has non-zero ones are empty columns (Netscope's div/exp), not findings
    nonzero = set(df[df["value"] != 0]["tool"])
    df = df[(df["value"] != 0) | ~df["tool"].isin(nonzero)]
    label = _labeller(df)
    labels = [label(r) for r in df.itertuples(index=False)]
    ratios = [float(r.value) / doc_flops for r in df.itertuples(index=False)]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(labels) + 1.2), dpi=100)
    ax.barh(range(len(labels)), ratios, color=["#4c72b0" if abs(x - 1) < 1e-9 else "#dd8452" for x in ratios])
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.axvline(0.5, color="grey", linewidth=0.5, linestyle="--")
    ax.set_xlabel("tool total / document FLOPs (1.0 = document; 0.5 = MACC-like)")
    ax.set_title(f"{model}: document FLOPs = {doc_flops:,}", fontsize=9)
    for i, x in enumerate(ratios):
        ax.text(x, i, f" {x:.3f}", va="center", fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ the document audit
def document_audit() -> list[Block]:
    """What the reference document gets wrong or leaves ambiguous, checked with its own formulas on its LeNet."""
    from conventions.formulas import layer_counts

    from .cache import layer_ir
    from .models import reference

    lenet = layer_ir(reference("lenet"), "torch")
    ip1, conv2, pool1 = (layer_counts(lenet.layer(n)) for n in ("ip1", "conv2", "pool1"))
    pool_terms = T.terms(lenet.layer("pool1"))
    return [
        Heading("Auditing the reference document", 2),
        Para(f"**'FC FLOPs equal its params' is contradicted by its own formula.** For ip1 (800 -> 500) the "
             f"document's FLOPs_fc = 2*n_in*n_out + n_out = {ip1.flops:,}, while param_fc = n_in*n_out + n_out = "
             f"{ip1.params:,}. They differ by n_in*n_out = {ip1.flops - ip1.params:,}. The claim only holds for a "
             f"MACC-style count plus bias adds (400,000 + 500 = 400,500), i.e. in exactly the convention the document "
             f"says FLOPs is not."),
        Para(f"**The conv2 MACC line is mislabelled.** The document writes `macc_conv1 = (5^2 * 20) * 50 * 8 * 8 = "
             f"1.6M`; that is conv2's MACC ({conv2.macc:,}); conv1's is 288,000."),
        Para(f"**Pooling is ambiguous.** FLOPs_pool1 = 20*24*24 = {pool1.flops:,} is pool1's input elements; for a "
             f"2x2/2 pool this equals kernel_area x output elements ({pool_terms[T.WINDOW]:,}), so the example cannot "
             f"tell the readings apart. The harness takes the literal reading (input elements) and the sepnet model's "
             f"3x3/2 pool separates them."),
        Para("**Its tool comparison mixes conventions.** thop's 2,307,720 came from a 2020 thop that counted the "
             "conv bias adds (today's 0.1.1 prints 2,293,000); torchstat's 'MAdd' and 'Flops' columns are swapped "
             "relative to their meaning; the TF profiler's 5,478,522 includes the variable initialisers and the "
             "784-element input Variable, 4,615,950 after freezing."),
    ]


# ------------------------------------------------------------------------------------------------ assembly
def build(records: pd.DataFrame, explanations: pd.DataFrame, specs: Optional[dict] = None) -> list[Block]:
    from .diff import canonical_ir, document_totals, near_misses

    blocks: list[Block] = [
        Heading("Which FLOPs is that number?", 1),
        Para("Every counter below ran on the same reference models. Each number is written as a combination of "
             "the document's basis terms: " + "; ".join(f"**{t}** = {m}" for t, m in T.TERM_MEANINGS.items())
             + ". The document's own FLOPs = 2*MACC + BIAS for conv and FC layers; its pooling FLOPs = IN."),
    ]
    versions = records[["tool", "tool_version"]].drop_duplicates()
    blocks.append(Para("Tool versions: " + ", ".join(f"{r.tool} {r.tool_version}"
                                                     for r in versions.itertuples(index=False)) + "."))
    matrix = counts_matrix(explanations)
    if not matrix.empty:
        blocks += [Heading("What each tool counts", 2),
                   Para("Per tool metric and layer kind, the combination of basis terms that reproduces the tool's "
                        "number on every layer of that kind in this run (0 = counted as nothing; blank = the tool "
                        "has no row for that kind)."),
                   Table(matrix)]
    for model in dict.fromkeys(records["model"]):
        doc = document_totals(model, specs)
        doc_flops = doc.flops if doc else None
        blocks.append(Heading(f"Model `{model}`", 2))
        if doc:
            blocks.append(Para(f"Document formulas: params {doc.params:,}, MACC {doc.macc:,}, FLOPs {doc.flops:,}"
                               + (f" ({doc.note})." if doc.note else ".")))
        blocks += [Heading("Totals", 3), Table(totals_table(records, model, doc_flops))]
        png = chart(records, model, doc_flops)
        if png:
            blocks.append(Image(png, f"{model}: tool totals relative to the document's FLOPs", f"chart_{model}.png"))
        for quantity in (COMPUTE, PARAMS):
            matrix = layer_matrix(records, model, quantity)
            if not matrix.empty:
                blocks += [Heading(f"Per layer: {quantity}", 3), Table(matrix)]
        close = near_misses(records, model, canonical_ir(model, specs))
        if close:
            blocks += [Heading("Near agreements and coincidences", 3),
                       Para("Totals within 0.2% of each other (or equal) whose layers differ, difference by "
                            "difference:\n" + "\n".join(f"- {sentence}" for sentence in close))]
        ex = explanations[explanations["model"] == model]
        if not ex.empty:
            blocks.append(Heading("Why the numbers differ", 3))
            residual = ex[ex["residual"].notna() & (ex["residual"] != 0)]
            blocks.append(Para(f"{len(ex)} explanations; {len(residual)} with a non-zero residual (unexplained)."))
            for tool, group in ex.groupby("tool", sort=False):
                total_lines = [f"- **total**: {row.explanation}" for row in group.itertuples(index=False)
                               if row.layer == TOTAL]
                # the document's own per-layer rows are the reference every other sentence quotes
                lines = [] if tool == "document" else layer_lines(group)
                blocks.append(Para(f"**{tool}**\n" + "\n".join(total_lines + lines)))
    from .which import published_section

    blocks += published_section(records, specs)
    problems = problems_table(records)
    if not problems.empty:
        blocks += [Heading("Failures, unsupported layers and skipped jobs", 2),
                   Para("A tool that crashed, timed out, is not installed, or has no formula for a layer kind "
                        "(and silently counts it 0) appears here with its message."), Table(problems)]
    blocks += document_audit()
    return blocks


def render_md(blocks: list[Block]) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Table):
            frame = block.frame
            cols = list(frame.columns)
            rows = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
            for values in frame.itertuples(index=False):
                rows.append("| " + " | ".join(_fmt(v).replace("|", "\\|") for v in values) + " |")
            out.append("\n".join(rows))
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({block.file_name})")
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;
text-align:right;vertical-align:top}th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
td.t{text-align:left}ul{font-size:14px;line-height:1.45}code{background:#f5f5f5;padding:0 3px}img{max-width:100%}"""


def _inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _numeric(cell: str) -> bool:
    return cell.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()


def render_html(blocks: list[Block]) -> str:
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>reconcile report</title>"
           f"<style>{_CSS}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            lines = block.text.split("\n")
            items = [line[2:] for line in lines if line.startswith("- ")]
            head = [line for line in lines if not line.startswith("- ")]
            if head:
                out.append("<p>" + "<br>".join(_inline(h) for h in head) + "</p>")
            if items:
                out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
        elif isinstance(block, Table):
            cols = list(block.frame.columns)
            out.append("<table><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr>")
            for values in block.frame.itertuples(index=False):
                cells = [_fmt(v) for v in values]
                out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" if _numeric(c) else
                                            f"<td class='t'>{html.escape(c)}</td>" for c in cells) + "</tr>")
            out.append("</table>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            out.append(f"<p><img alt='{html.escape(block.alt)}' src='data:image/png;base64,{data}'></p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_outputs(records: pd.DataFrame, out_dir: Path, specs: Optional[dict] = None) -> dict[str, Path]:
    """Write every output of a run; each file appears whole (temp file + rename) or not at all."""
    from .diff import explain

    explanations = explain(records, specs)
    blocks = build(records, explanations, specs)
    paths = {name: out_dir / name for name in ("records.csv", "explanations.csv", "report.md", "report.html")}
    write_atomic(paths["records.csv"], to_csv(records))
    write_atomic(paths["explanations.csv"], explanations_csv(explanations))
    for block in blocks:
        if isinstance(block, Image):
            target = out_dir / block.file_name
            target.write_bytes(block.png)
    write_atomic(paths["report.md"], render_md(blocks))
    write_atomic(paths["report.html"], render_html(blocks))
    return paths


def explanations_csv(explanations: pd.DataFrame) -> str:
    frame = integral(explanations, ["value", "reference_value", "residual"])
    for column in ("value", "reference_value", "residual"):
        frame[column] = ["" if v is None else str(v) for v in frame[column]]
    return frame.to_csv(index=False, lineterminator="\n")
