"""Rendering: report blocks to Markdown and self-contained HTML, CSV text, and atomic writes.

A report is built once as a list of blocks and rendered twice, so the Markdown and the HTML say the same thing.
This module knows nothing about tools, models or conventions: every report (the run's, the release matrix's)
builds blocks and hands them here.

Markdown is written for CommonMark with the table extension (what code-hosting sites render): a `*` or `_`
that is not markup is escaped (a formula such as 2*MACC + 1*BIAS must not turn into italics), `|` in a cell is
escaped, and headings get the anchors those sites generate (`slug`).

Text from outside (model names are user text) never becomes markup: every string is HTML-escaped, a link is made
only with `link` (its text's brackets escaped) and only to a safe target (a relative path, an #anchor, http(s)),
so a model named `[x](javascript:alert(1))` is shown as that text in both Markdown and HTML, never as a link.
"""
from __future__ import annotations

import base64
import contextlib
import html
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    """Text with **bold** and `code`; lines starting with "- " are list items."""

    text: str


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass
class Image:
    png: bytes
    alt: str
    file_name: str  # relative to the Markdown file that shows it


@dataclass
class Chart:
    """A horizontal bar chart, drawn as SVG text (no plotting library: cheap, small, byte-identical):
    `bars` are (label, value, colour key); `legend` maps each colour key to its meaning; `lines` are
    (x, meaning, dashed) reference lines, named in the legend too."""

    title: str
    bars: list
    legend: dict
    axis: str
    file_name: str  # relative to the Markdown file that shows it
    lines: list = field(default_factory=list)
    alt: str = ""

    def svg(self) -> str:
        return bar_chart_svg(self)


@dataclass
class Strips(Chart):
    """Dots on one horizontal strip per row, a row per subject (a model): `bars` are the rows, (label, note,
    [(value, tooltip, colour key)]); the note is printed right of the strip."""

    def svg(self) -> str:
        return strips_svg(self)


@dataclass
class Toc:
    """A table of contents of the headings of `level` that follow it."""

    level: int = 2


@dataclass
class Details:
    """A section shown collapsed in HTML (`<details>`); in Markdown, its heading and blocks as they are."""

    summary: str
    blocks: list = field(default_factory=list)
    level: int = 2


Block = Union[Heading, Para, Table, Image, Chart, Strips, Toc, Details]

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3")


def bar_chart_svg(chart: "Chart") -> str:
    """The chart as a standalone SVG document: bars with their values, reference lines, a legend."""
    label_w, plot_w, row_h, top = 230, 330, 16, 28
    legend_rows = len(chart.legend) + len(chart.lines)
    height = top + row_h * len(chart.bars) + 30 + 14 * legend_rows + 8
    width = label_w + plot_w + 70
    top_value = max([v for _, v, _ in chart.bars] + [x for x, _, _ in chart.lines] + [1e-12]) * 1.05
    x_of = lambda v: label_w + plot_w * v / top_value  # noqa: E731
    colours = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(chart.legend)}
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"font-family='sans-serif' font-size='11'>",
           f"<title>{html.escape(chart.alt or chart.title)}</title>",
           f"<text x='{width / 2:.0f}' y='16' text-anchor='middle' font-size='12'>{html.escape(chart.title)}</text>"]
    for i, (label, value, key) in enumerate(chart.bars):
        y = top + i * row_h
        out.append(f"<text x='{label_w - 6}' y='{y + 11}' text-anchor='end'>{html.escape(label)}</text>")
        out.append(f"<rect x='{label_w}' y='{y + 2}' width='{max(x_of(value) - label_w, 0.5):.1f}' "
                   f"height='{row_h - 4}' fill='{colours[key]}'/>")
        out.append(f"<text x='{x_of(value) + 3:.1f}' y='{y + 11}'>{value:.3f}</text>")
    bottom = top + row_h * len(chart.bars)
    for x, _, dashed in chart.lines:
        out.append(f"<line x1='{x_of(x):.1f}' y1='{top}' x2='{x_of(x):.1f}' y2='{bottom}' stroke='black' "
                   f"stroke-width='1'{' stroke-dasharray=' + chr(39) + '4 3' + chr(39) if dashed else ''}/>")
    out.append(f"<line x1='{label_w}' y1='{bottom}' x2='{label_w + plot_w}' y2='{bottom}' stroke='#888'/>")
    out.append(f"<text x='{label_w + plot_w / 2:.0f}' y='{bottom + 16}' text-anchor='middle'>"
               f"{html.escape(chart.axis)}</text>")
    y = bottom + 30
    for key, meaning in chart.legend.items():
        out.append(f"<rect x='{label_w}' y='{y - 9}' width='10' height='10' fill='{colours[key]}'/>"
                   f"<text x='{label_w + 14}' y='{y}'>{html.escape(meaning)}</text>")
        y += 14
    for _, meaning, dashed in chart.lines:
        out.append(f"<line x1='{label_w}' y1='{y - 4}' x2='{label_w + 10}' y2='{y - 4}' stroke='black'"
                   f"{' stroke-dasharray=' + chr(39) + '3 2' + chr(39) if dashed else ''}/>"
                   f"<text x='{label_w + 14}' y='{y}'>{html.escape(meaning)}</text>")
        y += 14
    out.append("</svg>")
    return "\n".join(out) + "\n"


def strips_svg(chart: "Strips") -> str:
    """The strip chart as a standalone SVG document: an axis from 0, a strip per row with its dots (each with a
    tooltip), the reference lines across all strips, the note right of each strip, a one-line legend. Values
    beyond the axis (more than 3x the largest reference line) sit at its end as a triangle, their value in
    the tooltip and the note."""
    label_w, plot_w, note_w, row_h, top = 150, 520, 360, 22, 30
    width = label_w + plot_w + note_w
    height = top + row_h * len(chart.bars) + 52
    values = [v for _, _, dots in chart.bars for v, _, _ in dots]
    ceiling = 3 * max([x for x, _, _ in chart.lines] + [1e-12])
    top_value = max(min(max(values + [0]), ceiling) * 1.05, max([x for x, _, _ in chart.lines] + [1e-12]) * 1.1)
    x_of = lambda v: label_w + plot_w * min(v, top_value) / top_value  # noqa: E731
    colours = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(chart.legend)}
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"font-family='sans-serif' font-size='12'>",
           f"<title>{html.escape(chart.alt or chart.title)}</title>",
           f"<text x='{label_w}' y='16' font-size='13' font-weight='bold'>{html.escape(chart.title)}</text>"]
    bottom = top + row_h * len(chart.bars)
    for i, (label, note, dots) in enumerate(chart.bars):
        y = top + i * row_h
        mid = y + row_h / 2
        if i % 2 == 0:
            out.append(f"<rect x='0' y='{y}' width='{width}' height='{row_h}' fill='#f6f6f6'/>")
        out.append(f"<text x='{label_w - 8}' y='{mid + 4:.0f}' text-anchor='end'>{html.escape(label)}</text>")
        out.append(f"<line x1='{label_w}' y1='{mid:.0f}' x2='{label_w + plot_w}' y2='{mid:.0f}' stroke='#ccc'/>")
        for value, tooltip, key in dots:
            x = x_of(value)
            tip = f"<title>{html.escape(tooltip)}</title>"
            if value > top_value:
                out.append(f"<polygon points='{x:.1f},{mid:.0f} {x - 8:.1f},{mid - 5:.0f} {x - 8:.1f},{mid + 5:.0f}' "
                           f"fill='{colours[key]}'>{tip}</polygon>")
            else:
                out.append(f"<circle cx='{x:.1f}' cy='{mid:.0f}' r='5' fill='{colours[key]}' fill-opacity='0.55' "
                           f"stroke='{colours[key]}'>{tip}</circle>")
        out.append(f"<text x='{label_w + plot_w + 10}' y='{mid + 4:.0f}'>{html.escape(note)}</text>")
    for x, _, dashed in chart.lines:
        out.append(f"<line x1='{x_of(x):.1f}' y1='{top - 4}' x2='{x_of(x):.1f}' y2='{bottom}' stroke='black' "
                   f"stroke-width='1'{' stroke-dasharray=' + chr(39) + '4 3' + chr(39) if dashed else ''}/>")
    step = 0.5 if top_value <= 4 else 1.0
    tick = 0.0
    while tick <= top_value:
        out.append(f"<text x='{x_of(tick):.1f}' y='{bottom + 14}' text-anchor='middle' fill='#555'>{tick:g}</text>")
        tick += step
    out.append(f"<text x='{label_w + plot_w / 2:.0f}' y='{bottom + 28}' text-anchor='middle'>"
               f"{html.escape(chart.axis)}</text>")
    x, y = 10.0, bottom + 46
    for key, meaning in chart.legend.items():
        out.append(f"<circle cx='{x + 5:.0f}' cy='{y - 4}' r='5' fill='{colours[key]}' fill-opacity='0.55'/>"
                   f"<text x='{x + 14:.0f}' y='{y}'>{html.escape(meaning)}</text>")
        x += 24 + 6.5 * len(meaning)
    for _, meaning, dashed in chart.lines:
        out.append(f"<line x1='{x:.0f}' y1='{y - 4}' x2='{x + 12:.0f}' y2='{y - 4}' stroke='black'"
                   f"{' stroke-dasharray=' + chr(39) + '3 2' + chr(39) if dashed else ''}/>"
                   f"<text x='{x + 16:.0f}' y='{y}'>{html.escape(meaning)}</text>")
        x += 26 + 6.5 * len(meaning)
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------------------------------------- values
def fmt(value) -> str:
    """A cell: integers with thousands separators, other floats to 4 significant digits, None empty."""
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


def to_csv(df: pd.DataFrame) -> str:
    """A records frame as CSV text: integers as integers (no 2293000.0), empty for missing values; byte-identical
    across runs."""
    out = df.copy()
    out["value"] = [("" if v is None or (isinstance(v, float) and v != v) else
                     (str(int(v)) if isinstance(v, int) or float(v).is_integer() else repr(float(v))))
                    for v in out["value"]]
    return out.to_csv(index=False, lineterminator="\n")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def stage(path: Path, data: Union[str, bytes]) -> str:
    """`data` in a temp file next to `path`, with the mode a plain open() would give (mkstemp's is 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: Path, text: Union[str, bytes]) -> None:
    """Write via a temp file + rename, so a reader never sees a half-written file. The rename replaces a
    symlink at `path` instead of writing through it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -------------------------------------------------------------------------------------------------- anchors
def slug(text: str) -> str:
    """The anchor code-hosting sites give a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _headings(blocks: list, level: int) -> list[Heading]:
    out = []
    for block in blocks:
        if isinstance(block, Heading) and block.level == level:
            out.append(block)
        elif isinstance(block, Details) and block.level == level:
            out.append(Heading(block.summary, level))
    return out


# -------------------------------------------------------------------------------------------------- links
# [text](target), the text possibly holding backslash-escaped brackets (what `link` writes)
_LINK = re.compile(r"\[((?:\\.|[^\]\\])+)\]\(([^)\s]+)\)")
# a relative path (no scheme), an #anchor, or http(s): never javascript:, data:, vbscript:, file:, ...
_SAFE_TARGET = re.compile(r"(?:https?://|#|(?![A-Za-z][A-Za-z0-9+.\-]*:))[^\s<>\"'`\\]*")
_ESCAPED = re.compile(r"\\([\\\[\]()])")


def link(text: str, target: str) -> str:
    """A Markdown link whose text is shown as it is (brackets and parentheses in it escaped)."""
    shown = re.sub(r"([\\\[\]()])", r"\\\1", text)
    return f"[{shown}]({target})"


def safe_target(target: str) -> bool:
    return bool(_SAFE_TARGET.fullmatch(html.unescape(target)))


def _defuse_links(text: str) -> str:
    """A [text](target) to an unsafe target is not a link: its brackets are escaped."""
    def defuse(match: re.Match) -> str:
        if safe_target(match.group(2)):
            return match.group(0)
        return f"\\[{match.group(1)}\\]({match.group(2)})"
    return _LINK.sub(defuse, text)


# -------------------------------------------------------------------------------------------------- Markdown
_CODE = re.compile(r"(`[^`]*`)")


def md_text(text: str) -> str:
    """Escape what CommonMark would read as markup, outside code spans: a single `*` (a formula's product), an
    `_` at a word boundary (`__total__`), `<`, a link to an unsafe target; `**bold**` and `link`s stay markup."""
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):
        part = _defuse_links(parts[i])
        part = re.sub(r"(?<!\*)\*(?!\*)", r"\\*", part)
        part = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", part)
        parts[i] = part.replace("<", "&lt;")
    return "".join(parts)


def _md_cell(value) -> str:
    return md_text(fmt(value)).replace("|", "\\|").replace("\n", " ")


def _md_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    numeric = [_numeric_column(frame, c) for c in cols]
    rows = ["| " + " | ".join(_md_cell(c) for c in cols) + " |",
            "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for values in frame.itertuples(index=False):
        rows.append("| " + " | ".join(_md_cell(v) for v in values) + " |")
    return "\n".join(rows)


def render_md(blocks: list) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + md_text(block.text))
        elif isinstance(block, Para):
            out.append(md_text(block.text))
        elif isinstance(block, Table):
            out.append(_md_table(block.frame))
        elif isinstance(block, (Image, Chart)):
            out.append(f"![{md_text(block.alt or block.title)}]({block.file_name})")
        elif isinstance(block, Toc):
            following = blocks[blocks.index(block) + 1:]
            out.append("\n".join(f"- [{md_text(h.text)}](#{slug(h.text)})" for h in _headings(following,
                                                                                               block.level)))
        elif isinstance(block, Details):
            out.append(render_md([Heading(block.summary, block.level)] + block.blocks).rstrip("\n"))
    return "\n\n".join(out) + "\n"


# -------------------------------------------------------------------------------------------------- HTML
_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:separate;border-spacing:0;margin:0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f2f2f2;position:sticky;top:0;z-index:1}td.n,th.n{text-align:right}
.tw{overflow:auto;max-height:720px;margin:1em 0;max-width:100%}td{max-width:40em}
ul{font-size:14px;line-height:1.45}code{background:#f5f5f5;padding:0 3px}img{max-width:100%}
details{margin:.6em 0;border:1px solid #ddd;border-radius:4px;padding:.3em .8em}
summary{cursor:pointer;font-weight:600;font-size:1.1em}nav ul{columns:2}figure{margin:.5em 0;overflow-x:auto}"""


def _inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    escaped = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    def anchor(match: re.Match) -> str:  # Markdown links [text](target) in paragraphs, to safe targets only
        if not safe_target(match.group(2)):
            return match.group(0)
        return f"<a href='{match.group(2)}'>{match.group(1)}</a>"
    return _ESCAPED.sub(r"\1", _LINK.sub(anchor, escaped))


def _numeric(cell: str) -> bool:
    return cell.replace(",", "").replace(".", "", 1).lstrip("-+").rstrip("%").isdigit()


def _numeric_column(frame: pd.DataFrame, column) -> bool:
    """Most filled cells are numbers (a count column with a few 'unsupported' cells is still a count column)."""
    cells = [fmt(v) for v in frame[column]]
    filled = [c for c in cells if c]
    return bool(filled) and sum(_numeric(c) for c in filled) * 2 > len(filled)


def _html_blocks(blocks: list, out: list[str], ids: dict[str, int], within: str = "") -> None:
    """`ids` counts the element ids given so far: a repeated one gets "-2", "-3", ... (as code-hosting sites do
    for repeated headings); headings inside a collapsed section are named after it ("model-lenet-totals")."""

    def unique(text: str) -> str:
        base = f"{within}-{slug(text)}" if within else slug(text)
        ids[base] = ids.get(base, 0) + 1
        return base if ids[base] == 1 else f"{base}-{ids[base]}"
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level} id='{unique(block.text)}'>{_inline(block.text)}</h{block.level}>")
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
            numeric = [_numeric_column(block.frame, c) for c in cols]
            out.append("<div class='tw'><table><thead><tr>" + "".join(
                f"<th{' class=n' if n else ''}>{html.escape(str(c))}</th>" for c, n in zip(cols, numeric))
                + "</tr></thead><tbody>")
            for values in block.frame.itertuples(index=False):
                cells = [fmt(v) for v in values]
                out.append("<tr>" + "".join(f"<td{' class=n' if n and _numeric(c) else ''}>{html.escape(c)}</td>"
                                            for c, n in zip(cells, numeric)) + "</tr>")
            out.append("</tbody></table></div>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            out.append(f"<p><img alt='{html.escape(block.alt)}' src='data:image/png;base64,{data}'></p>")
        elif isinstance(block, Chart):
            out.append(f"<figure id='{unique(block.file_name.rsplit('.', 1)[0])}'>"
                       + block.svg().replace("<svg xmlns='http://www.w3.org/2000/svg' ", "<svg ") + "</figure>")
        elif isinstance(block, Toc):
            following = blocks[blocks.index(block) + 1:]
            out.append("<nav><ul>" + "".join(f"<li><a href='#{slug(h.text)}'>{_inline(h.text)}</a></li>"
                                             for h in _headings(following, block.level)) + "</ul></nav>")
        elif isinstance(block, Details):
            name = unique(block.summary)
            out.append(f"<details id='{name}'><summary>{_inline(block.summary)}</summary>")
            _html_blocks(block.blocks, out, ids, name)
            out.append("</details>")


def render_html(blocks: list, title: str = "reconcile report") -> str:
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body>"]
    _html_blocks(blocks, out, {})
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------------------------------------- terminal text
WIDTH = 119  # a line a person reads in a terminal: under 120 characters
INDENT = "  "


def wrap(text: str, indent: str = "", width: int = WIDTH, hang: str = "") -> list[str]:
    """`text` as lines of at most `width` characters; the first starts with `indent`, the rest with `hang`
    (default: `indent` plus INDENT, so a continuation reads as the detail of the line above). Words are never
    split: a single word longer than a line (a path) is left whole rather than cut."""
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=hang or indent + INDENT,
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]


def headline(text: str, width: int = WIDTH) -> list[str]:
    """A one-line answer that grew clauses ("A: verdict (value); printed by x, y, z, ..."): the first clause as
    the line, every further `; ` clause as an indented detail line below it, all wrapped to `width`."""
    head, *rest = text.split("; ")
    return wrap(head, "", width) + [line for clause in rest for line in wrap(clause, INDENT, width)]


def once(items: list[tuple[str, str]], noun: str = "items", shown: int = 4, named: bool = True) \
        -> list[tuple[str, str, int]]:
    """(subject, message) pairs with the same message said once: [(subjects, message, how many)], first-seen
    order. With `named`, a message that names its own subject ("thop needs real tensors") is compared with the
    subject taken out, so ten tools refused for one reason are one line: ("10 tools (thop, torchstat, fvcore,
    ...)", "... each needs ...", 10)."""
    groups: dict[str, list[str]] = {}
    for subject, message in items:
        key = message.replace(subject, "\0") if subject and named else message
        groups.setdefault(key, []).append(subject)
    out = []
    for key, subjects in groups.items():
        if len(subjects) == 1:
            out.append((subjects[0], key.replace("\0", subjects[0]), 1))
            continue
        listed = ", ".join(subjects[:shown]) + (", ..." if len(subjects) > shown else "")
        out.append((f"{len(subjects)} {noun} ({listed})", key.replace("\0", "each"), len(subjects)))
    return out
