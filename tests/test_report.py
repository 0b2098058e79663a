"""The run's report: a short summary that renders on code-hosting sites, one page per model, a collapsible HTML,
sections by what ran, and byte-identical output for the same records whatever sits in any cache.

The records are a real run of the pinned thop 0.1.1.post2209072238 and torchstat 0.0.7 on LeNet and sepnet."""
from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from reconcile import api
from reconcile.render import Details, Heading, Para, Table, Toc, md_text, render_html, render_md, slug
from reconcile.report import write_outputs

COMMONMARK = MarkdownIt("commonmark").enable("table")


@pytest.fixture(scope="module")
def run_records():
    return api.run(models="lenet,sepnet", tools="document,thop,torchstat")


@pytest.fixture(scope="module")
def written(run_records, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_outputs(run_records, out, run_records.attrs["specs"])
    return out


def _text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def test_markdown_escapes_formulas_and_keeps_bold():
    assert md_text("2*MACC + 1*BIAS") == r"2\*MACC + 1\*BIAS"
    assert md_text("**thop** `2*MACC`") == "**thop** `2*MACC`"  # bold and code spans untouched
    assert md_text("__total__ of pool_avg") == r"\_\_total\_\_ of pool_avg"
    html = COMMONMARK.render(md_text("thop 1*MACC + 1*BIAS and 2*MACC - 1*OUT on __total__ <em>"))
    assert "<em>" not in html.replace("&lt;em>", "") and "<strong>" not in html
    assert "1*MACC + 1*BIAS and 2*MACC - 1*OUT on __total__" in _text_of(html)


def test_report_md_renders_every_formula_without_stray_emphasis(written, run_records):
    from reconcile.diff import explain

    for path in [written / "report.md", *sorted((written / "models").glob("*.md"))]:
        html = COMMONMARK.render(path.read_text(encoding="utf-8"))
        assert "<em>" not in html, path
        text = _text_of(html)
        if path.name == "report.md":  # the "what each tool counts" matrix: every decomposition, literally
            explained = explain(run_records)
            formulas = {d.replace(" (ambiguous)", "") for d in explained["decomposition"] if "*" in d}
            shown = {f for f in formulas if f in text}
            assert "2*MACC + 1*BIAS" in shown and "1*MACC" in shown
            # torchstat's conv MAdd on LeNet: (2k-1) per output plus the bias add (hand: 2*MACC - OUT + BIAS)
            assert "2*MACC - 1*OUT + 1*BIAS" in text


def test_summary_is_short_with_contents_and_model_pages(written):
    md = (written / "report.md").read_text(encoding="utf-8")
    assert len(md.encode()) < 150_000
    headings = re.findall(r"^## (.+)$", md, re.M)
    # the answer first: the chart of the totals (no published number of LeNet or sepnet: no verdicts here)
    assert md.index("![every counter's compute total per model") < md.index("\n## ")
    assert headings[0] == "Totals per model" and headings[-1] == "Models"
    assert headings.index("What each tool counts") > headings.index("Totals per model")
    for heading in headings:  # the table of contents links every section by the anchor the site generates
        assert f"(#{slug(heading)})" in md
    for model in ("lenet", "sepnet"):
        assert f"[{model}](models/{model}.md)" in md
        page = (written / "models" / f"{model}.md").read_text(encoding="utf-8")
        assert page.startswith(f"# Model {model}") and "../report.md" in page
        assert f"chart_{model}.svg" in page and (written / "models" / f"chart_{model}.svg").is_file()
    # LeNet ran: the audit of the document is there; no model of published.csv ran: no published section
    assert "## Auditing the reference document" in md and "Published numbers" not in md


def test_sections_follow_what_ran(tmp_path):
    records = api.run(models="gconv", tools="thop")
    write_outputs(records, tmp_path, records.attrs["specs"])
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Auditing the reference document" not in md and "Published numbers" not in md


def test_html_summary_first_models_collapsed(written):
    html = (written / "report.html").read_text(encoding="utf-8")
    assert len(html.encode()) < 1_000_000
    assert html.index("<figure") < html.index("Totals per model") < html.index("<details")
    # collapsed: what each tool counts, the terms, the printed totals, and the two models
    assert html.count("<details") == 5 and "position:sticky" in html and "<thead>" in html
    for anchor in re.findall(r"<a href='#([^']+)'>", html):
        assert f"id='{anchor}'" in html, anchor
    # text columns left, numbers right: a layer name cell has no class, a count cell has class n
    assert re.search(r"<td>conv1</td>", html) and re.search(r"<td class=n>288,000</td>", html)


def test_same_records_same_bytes_whatever_the_caches(run_records, tmp_path, monkeypatch):
    write_outputs(run_records, tmp_path / "a", run_records.attrs["specs"])
    junk = tmp_path / "junk-cache"
    (junk / "results" / "thop").mkdir(parents=True)
    (junk / "results" / "thop" / "lenet-0.json").write_text("not an entry\n")
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(junk))
    monkeypatch.chdir(tmp_path)  # a reports/records.csv of another run would sit here; none is read
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "records.csv").write_text("model,framework,tool\nlenet,torch,thop\n")
    write_outputs(run_records, tmp_path / "b", run_records.attrs["specs"])
    names = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_render_blocks_toc_and_details():
    import pandas as pd

    blocks = [Heading("Title", 1), Toc(2), Heading("A * b", 2), Para("x"),
              Details("Model m", [Table(pd.DataFrame({"layer": ["conv1"], "value": [1000]}))])]
    md = render_md(blocks)
    assert "- [A \\* b](#a--b)" in md and "- [Model m](#model-m)" in md and "| conv1 | 1,000 |" in md
    html = render_html(blocks)
    assert "<details id='model-m'><summary>Model m</summary>" in html and "<td class=n>1,000</td>" in html


def test_progress_names_the_steps_after_the_jobs(cli, tmp_path):
    result = cli("run", "--models", "gconv", "--tools", "thop", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "running 1 jobs (1 tools x 1 models), timeout 120 s each"
    assert lines[1].startswith("[1/1] thop on gconv")
    assert any(re.fullmatch(r"explaining \d+ numbers: \d+\.\d s", line) for line in lines)
    assert any(re.fullmatch(r"writing report to .*: \d+\.\d s", line) for line in lines)
    assert not (tmp_path / "explanations.csv").stat().st_size == 0


def test_chart_is_svg_with_a_legend(written):
    svg = (written / "models" / "chart_lenet.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg xmlns='http://www.w3.org/2000/svg'")
    for meaning in ("equals the document's FLOPs", "differs from the document's FLOPs", "1.0: the document's FLOPs",
                    "0.5: about a multiply-accumulate count"):
        assert meaning.replace("'", "&#x27;") in svg
    # thop 0.1.1 macs on LeNet = 2,293,000 MACC over the document's 4,615,950 FLOPs (hand: 0.497)
    assert ">thop: macs</text>" in svg and ">0.497</text>" in svg


def test_html_ids_unique_and_no_empty_rows(written):
    """Every element id once (a heading repeated in each model's section gets the section's name), every anchor
    lands, and no table row whose cells after the first are all empty."""
    from html.parser import HTMLParser

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.ids, self.rows, self.cell = [], [], None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if "id" in attrs:
                self.ids.append(attrs["id"])
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.rows[-1].append(self.cell.strip())
                self.cell = None

    page = Page()
    html = (written / "report.html").read_text(encoding="utf-8")
    page.feed(html)
    assert len(page.ids) == len(set(page.ids)), sorted(i for i in page.ids if page.ids.count(i) > 1)
    assert "model-lenet-totals" in page.ids and "model-sepnet-totals" in page.ids
    assert all(a in page.ids for a in re.findall(r"href='#([^']+)'", html))
    assert not [r for r in page.rows if len(r) > 1 and not any(r[1:])]


def test_what_each_tool_counts_shows_parameter_rows_of_linear_layers(written):
    """LeNet's ip1/ip2 are nn.Linear with bias: a params row reads 1*WEIGHTS + 1*BIAS_PARAMS there (thop
    params = 800*500 + 500 = 400,500 on ip1), not blank (blank means the tool has no row for that kind)."""
    md = (written / "report.md").read_text(encoding="utf-8")
    header = next(line for line in md.splitlines() if line.startswith("| tool: metric | conv"))
    linear = [c.strip() for c in header.split("|")].index("linear")
    row = next(line for line in md.splitlines() if line.startswith("| thop: params |"))
    assert [c.strip() for c in row.split("|")][linear] == r"1\*WEIGHTS + 1\*BIAS_PARAMS"  # md-escaped


def test_long_notes_are_cut_with_where_to_read_them():
    from reconcile.report import NOTE_CHARS, capped

    text = "silent zeros: " + ", ".join(f"layer{i}.bn" for i in range(400))
    short = capped(text)
    assert len(short) < NOTE_CHARS + 80 and short.endswith(f"({len(text):,} characters; whole in records.csv, "
                                                             "column message)")
    assert capped("short note") == "short note"
