"""Every release of a tool in the atlas: the registry's listing (reconcile/releases.py) parsed from a recorded
response, `--releases all`, runs of releases with identical numbers, and a change between two real thop releases
read from the tool's recorded output (tests/registry/atlas_thop_lenet.csv, records of the atlas sweep).

tests/registry/pypi_thop_trimmed.json is the package registry's JSON for thop (read 2026-12-02), trimmed to six
releases and, per file, to the fields the listing reads plus its filename.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "registry"
NO_STORE = importlib.util.find_spec("duckdb") is None or importlib.util.find_spec("pyarrow") is None

# LeNet by hand (docs/document.md, tests/test_drift.py): thop 0.1.1 counts the MACC, 0.0.31 adds the conv biases
LENET_MACC = 20 * 24 * 24 * 25 + 50 * 8 * 8 * 500 + 800 * 500 + 500 * 10  # 2,293,000
CONV1_BIAS, CONV2_BIAS = 20 * 24 * 24, 50 * 8 * 8  # 11,520 and 3,200 bias adds


def test_the_registry_listing_is_read_in_the_order_released():
    from reconcile import releases

    listed = releases.parse_registry_json((HERE / "pypi_thop_trimmed.json").read_text())
    # PEP 440 puts 0.0.4.post2006032126 before 0.0.31.post2005241907; thop uploaded it ten days after
    assert [r.version for r in listed] == ["0.0.1", "0.0.31.post2005241907", "0.0.4.post2006032126",
                                           "0.0.4.post2006111041", "0.1.0.post2207010342", "0.1.1.post2209072238"]
    assert [r.uploaded[:10] for r in listed] == ["2018-11-18", "2020-05-24", "2020-06-03", "2020-06-11",
                                                 "2022-06-30", "2022-09-07"]
    egg = listed[0]
    assert egg.kinds == ("bdist_egg",) and egg.install_problem().startswith("only bdist_egg files")
    assert all(r.install_problem() == "" for r in listed[1:]) and not any(r.yanked for r in listed)


def test_the_listing_round_trips_and_is_read_from_the_registry_by_one_request_per_distribution(tmp_path):
    import io

    from reconcile import releases

    text = (HERE / "pypi_thop_trimmed.json").read_bytes()
    asked = []

    def opener(url, timeout):
        asked.append(url)
        return io.BytesIO(text)

    by_dist = releases.read_registry(["thop"], opener)
    assert asked == ["https://pypi.org/pypi/thop/json"] and len(by_dist["thop"]) == 6
    dumped = releases.dump("2026-12-02T14:29:59Z", by_dist)
    (tmp_path / "releases.json").write_text(dumped)
    back = releases.load(tmp_path / "releases.json")
    assert back.read_utc == "2026-12-02T14:29:59Z" and back.by_dist == by_dist
    assert releases.dump(back.read_utc, back.by_dist) == dumped  # deterministic


def test_releases_all_names_every_listed_release_and_bad_input_is_one_line():
    from reconcile import atlas, releases
    from reconcile.commands.atlas import _releases
    from reconcile.errors import UserError

    listing = releases.load()
    every = _releases(("all",))
    assert set(every) == set(atlas.EVERY_RELEASE_TOOLS)
    assert every["thop"] == [r.version for r in listing.releases("thop")]
    assert every["ptflops_aten"] == every["ptflops_pytorch"] == [r.version for r in listing.releases("ptflops")]
    assert _releases(("thop=all", "torchinfo=1.8.0")) == {"thop": every["thop"], "torchinfo": ["1.8.0"]}
    with pytest.raises(UserError, match="names no distribution"):
        _releases(("document=all",))


def test_an_egg_only_release_is_a_failed_install_without_asking_pip(tmp_path, monkeypatch):
    from reconcile import atlas, drift
    from reconcile.jobs import memory_cap

    def no_pip(*args, **kwargs):
        raise AssertionError("pip was asked")

    monkeypatch.setattr(drift, "install", no_pip)
    plan = atlas.plan(atlas.resolve_models(["lenet"]), ["thop"], {"thop": ["0.0.1"]}, 60.0, memory_cap(),
                      tool_cache=tmp_path)
    assert not plan.jobs and len(plan.failed) == 1
    (job, why), = plan.failed.values()
    assert job.release == "0.0.1" and why.startswith("pip cannot install thop==0.0.1: only bdist_egg files")


def test_consecutive_releases_with_identical_numbers_are_one_run():
    from reconcile.atlas_report import release_runs, span

    same = frozenset({("lenet", "macs", "ok", 2_307_720)})
    other = frozenset({("lenet", "macs", "ok", 2_293_000)})
    signatures = {"a": same, "b": same, "c": other, "d": same, "e": same}
    # d has a's numbers again, but after c: a run of its own
    assert release_runs(signatures, ["a", "b", "c", "d", "e"]) == [["a", "b"], ["c"], ["d", "e"]]
    assert release_runs(signatures, []) == []
    assert span(["a"]) == "a" and span(["d", "x", "e"]) == "d .. e (3)"


def test_change_words_keep_the_convention_change_not_the_layers():
    from reconcile.atlas_report import change_words

    why = ("bn counts 2 ops per output element instead of 4: -4,096 on bn1, -4,096 on bn2; pool_avg counts 1 ops "
           "per output element instead of 4: -1,176 on pool; -2,437,872 not attributed to any layer")
    assert change_words(why) == ["bn counts 2 ops per output element instead of 4",
                                 "pool_avg counts 1 ops per output element instead of 4",
                                 "a change not attributed to any layer"]


def test_a_source_build_that_fails_says_its_exception_not_see_above():
    from reconcile.drift import pip_error

    # pip's stderr, recorded, for `pip install --no-deps --target DIR ptflops==0.7.2` (its sdist lacks a file
    # its setup.py reads)
    why = pip_error((HERE / "pip_ptflops_0.7.2.stderr").read_text())
    assert why == ("building it from its source distribution failed (FileNotFoundError: [Errno 2] No such file or "
                   "directory: 'test_requirements.txt')"), why


def _recorded_thop_lenet():
    """thop's records on LeNet at five of its releases, as the atlas sweep stored them (the store's records
    view, exported with `reconcile atlas query ... --format csv`), read as the atlas reads its store."""
    import pandas as pd

    from reconcile.atlas_report import normalise

    frame = pd.read_csv(HERE / "atlas_thop_lenet.csv", dtype={"value_text": str, "message": object})
    return normalise(frame)


@pytest.mark.slow  # imports torch and traces LeNet (a job process on a cold cache)
def test_a_change_between_two_real_thop_releases_is_listed_with_why_and_identical_releases_are_one_run():
    from reconcile.atlas_report import release_changes, tool_runs
    from reconcile.cache import layer_ir
    from reconcile.models import reference

    records = _recorded_thop_lenet()
    runs = tool_runs(records)
    old, june, june2 = "0.0.31.post2005241907", "0.0.4.post2006032126", "0.0.4.post2006111041"
    new, newest = "0.1.0.post2207010342", "0.1.1.post2209072238"
    # in the order released (0.0.4.post2006... came after 0.0.31.post2005...), the same totals grouped
    assert runs == {"thop": [[old, june, june2], [new, newest]]}
    changes = release_changes(records, {"lenet": layer_ir(reference("lenet"), "torch")}, runs)
    assert len(changes) == 1, changes  # params: 431,080 in all five; macs changed once
    row = changes.iloc[0]
    assert (row.tool, row.from_release, row.to_release, row.model, row.metric) == ("thop", june2, new, "lenet",
                                                                                  "macs")
    assert row.from_value == LENET_MACC + CONV1_BIAS + CONV2_BIAS == 2_307_720  # the document's number
    assert row.to_value == LENET_MACC == 2_293_000
    assert row.delta == -(CONV1_BIAS + CONV2_BIAS) == -14_720
    assert row.why == "conv bias adds no longer counted: -11,520 on conv1, -3,200 on conv2"
    assert row.what == "conv bias adds no longer counted"


def test_the_markdown_summary_drops_its_optional_sections_in_order_until_it_fits():
    from reconcile import atlas_report as A
    from reconcile.render import Heading, Para

    sections = {name: [Heading(name, 2), Para("x")] for name in A.MD_SECTIONS}
    sections["totals"].append(Para("t" * (A.MAX_MD_BYTES * 6 // 10)))  # dropped first
    sections["changes"].append(Para("c" * (A.MAX_MD_BYTES * 6 // 10)))  # then this: 0.6 + 0.5 does not fit
    sections["family"].append(Para("f" * (A.MAX_MD_BYTES * 5 // 10)))  # kept: 0.5 fits
    md = A.summary_md(sections)
    assert len(md.encode()) <= A.MAX_MD_BYTES
    assert "## runs" in md and "## family" in md and "## totals" not in md and "## changes" not in md
    assert md.endswith("Left out of this page to keep it under 150 KB: every total (atlas.csv); the per-model "
                       "changes (atlas.html, atlas_changes.csv).\n")
    small = {name: [Heading(name, 2)] for name in A.MD_SECTIONS}
    assert "Left out" not in A.summary_md(small) and "## totals" in A.summary_md(small)


def test_the_changes_csv_prints_exact_integers():
    import pandas as pd

    from reconcile.atlas_report import _changes_csv

    frame = pd.DataFrame([{"from_value": 2_307_720, "to_value": 2_293_000, "delta": -14_720},
                          {"from_value": None, "to_value": None, "delta": None}])
    assert _changes_csv(frame).splitlines() == ["from_value,to_value,delta", "2307720,2293000,-14720", ",,"]
