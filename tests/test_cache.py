"""The cache (reconcile/cache.py): a rerun with nothing changed runs no tool and says so, writes the very same
bytes, `--fresh` runs everything again, a new tool version re-runs exactly that tool's jobs, and what a timeout or
an in-memory module produced is never kept. (Hostile and corrupt entries: tests/faults/test_cache_entries.py.)"""
from __future__ import annotations

import json
import os
import sys
import time
import types

import pytest

from conftest import invoke_cli
from reconcile import adapters, api, cache
from reconcile.models import reference
from reconcile.runner import Job

OUTPUTS = ("records.csv", "explanations.csv", "report.md", "report.html")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A cache of this test's own (the session's shared one would already hold the jobs), with a copy of the
    session's layer IRs and key (traced once per session: the report's published numbers need ResNet-50, VGG-16,
    ...; a symlinked folder would be refused: no cache path leaves its folder)."""
    import shutil

    shared = cache.cache_dir()
    folder = tmp_path / "cache"
    folder.mkdir()
    if (shared / cache.KEY_FILE).is_file() and (shared / "layer_ir").is_dir():
        shutil.copytree(shared / "layer_ir", folder / "layer_ir")
        shutil.copy2(shared / cache.KEY_FILE, folder / cache.KEY_FILE)
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    return folder


def entry_rows(path):
    """The records an entry holds (its JSON after the MAC line)."""
    return json.loads(path.read_bytes().partition(b"\n")[2])["data"]


def reseal(folder, path, edit):
    """Edit an entry's payload and sign it again with the cache's own key (what only this cache can do)."""
    payload = json.loads(path.read_bytes().partition(b"\n")[2])
    edit(payload)
    path.write_bytes(cache.seal(folder, payload))


def job_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("[")]


def run_noting_hits(models: str, tools: str, fresh: bool = False):
    """api.run (no report: quicker than the CLI) and {tool: was its job a cache hit} from the progress calls."""
    hits = {}

    def progress(done, total, job, records, seconds, cached=False):
        hits[job.tool] = cached
    return api.run(models=models, tools=tools, progress=progress, fresh=fresh), hits


def test_the_cache_is_read_and_fresh_ignores_then_overwrites_it(cache_dir):
    first, hits = run_noting_hits("lenet", "thop")
    assert hits == {"thop": False}
    (entry,) = cache_dir.glob("results/thop/lenet-*.json")
    total = next(row for row in entry_rows(entry) if row[4] == "__total__" and row[7] == "macs")
    assert total[8] == 288_000 + 1_600_000 + 400_000 + 5_000  # thop 0.1.1 on LeNet: MACC only, 2,293,000

    def to_one(payload):
        next(row for row in payload["data"] if row[4] == "__total__" and row[7] == "macs")[8] = 1
    # an entry signed with the cache's key: a warm run shows what the cache holds, i.e. it did not run thop
    reseal(cache_dir, entry, to_one)
    warm, hits = run_noting_hits("lenet", "thop")
    assert hits == {"thop": True}
    assert warm[(warm.layer == "__total__") & (warm.metric == "macs")].value.item() == 1
    fresh, hits = run_noting_hits("lenet", "thop", fresh=True)
    assert hits == {"thop": False}
    assert api.to_csv(fresh) == api.to_csv(first)
    again = entry_rows(entry)  # overwritten with the true 2,293,000
    assert next(row for row in again if row[4] == "__total__" and row[7] == "macs")[8] == 2_293_000
    # the same edit without the key's signature is not served: a miss, run again and rewritten
    stored = entry.read_bytes()
    entry.write_bytes(stored.replace(b',2293000,', b',1,', 1))
    again, hits = run_noting_hits("lenet", "thop")
    assert hits == {"thop": False} and api.to_csv(again) == api.to_csv(first)
    assert entry.read_bytes() == stored


def test_a_new_tool_version_reruns_exactly_that_tools_jobs(cache_dir, monkeypatch):
    run_noting_hits("lenet", "document,thop")
    monkeypatch.setattr(adapters.get("thop"), "version", lambda: "9.9.9")  # as if constraints.txt pinned a new thop
    cache.tool_version.cache_clear()
    try:
        again, hits = run_noting_hits("lenet", "document,thop")
    finally:
        cache.tool_version.cache_clear()
    assert hits == {"document": True, "thop": False}
    assert set(again[again.tool == "thop"].tool_version) == {"9.9.9"}


def fake_adapter(name, count):
    module = types.ModuleType(f"reconcile.adapters.{name}")
    module.TOOL, module.FRAMEWORK, module.WORKER = name, "torch", "torch"
    module.version = lambda: "0-test"
    module.unavailable = lambda: None
    module.count = count
    return module


@pytest.mark.system  # waits out a hung job's timeout (the system tier: hung and killed processes)
def test_timeouts_and_dead_processes_are_not_kept_but_a_crash_is(cache_dir, monkeypatch):
    def hang(spec, emit):
        time.sleep(600)

    def die(spec, emit):
        os._exit(3)

    def crash(spec, emit):
        raise RuntimeError("the tool fell over")

    tools = {"t_hang": fake_adapter("t_hang", hang), "t_die": fake_adapter("t_die", die),
             "t_crash": fake_adapter("t_crash", crash)}
    for name, module in tools.items():
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(adapters, "TOOLS", adapters.TOOLS + tuple(tools))
    jobs = [Job(tool, reference("gconv")) for tool in tools]
    records = api.run_cached(jobs, timeout=2)
    assert [r.status for r in records] == ["error"] * 3
    assert "timed out after 2 s" in records[0].message and "exit code 3" in records[1].message
    # a timeout or a killed process says nothing lasting about the tool; a crash is what the tool does
    assert [cache.load(job) is not None for job in jobs] == [False, False, True]
    assert cache.load(jobs[2]) == [records[2]]


def test_an_in_memory_module_is_never_cached(cache_dir):
    import torch.nn as nn

    frame = api.run(module=nn.Sequential(nn.Conv2d(3, 4, 3)), input_shape=(1, 3, 8, 8), name="mine", tools="thop")
    # 4 outputs channels x 6x6 positions x 3*3*3 weights = 3,888 MACC (thop: no bias adds)
    assert frame[(frame.layer == "__total__") & (frame.metric == "macs")].value.item() == 3_888
    assert not list(cache_dir.glob("results/*/*.json"))


def test_the_key_follows_the_model_source_and_the_batch(tmp_path):
    from reconcile.models import from_model_file

    path = tmp_path / "mine.py"
    path.write_text("import torch.nn as nn\ndef net():\n    return nn.Conv2d(3, 8, 3)\n")
    before = cache.spec_fingerprint(from_model_file(f"{path}:net", "1,3,8,8"))
    assert cache.spec_fingerprint(from_model_file(f"{path}:net", "1,3,8,8")) == before  # same file, same key
    assert cache.spec_fingerprint(from_model_file(f"{path}:net", "2,3,8,8")) != before  # another batch
    path.write_text("import torch.nn as nn\ndef net():\n    return nn.Conv2d(3, 16, 3)\n")
    assert cache.spec_fingerprint(from_model_file(f"{path}:net", "1,3,8,8")) != before  # the file changed
    assert cache.path_of(Job("thop", reference("lenet"))) != cache.path_of(Job("thop", reference("lenet", 4)))
    assert cache.path_of(Job("thop", reference("lenet"))) != cache.path_of(Job("torchstat", reference("lenet")))


def test_the_default_suite_warm_writes_the_same_bytes_as_cold(default_run, tmp_path):
    """The session's default run (a fresh process, every job run) against the same run warm, in-process."""
    warm = invoke_cli("run", "--out", str(tmp_path))
    assert warm.returncode == 0, warm.stderr
    lines = job_lines(warm.stderr)
    assert lines and all(line.endswith("cached") for line in lines), [l for l in lines if "cached" not in l]
    assert f"({len(lines)} of {len(lines)} jobs from the result cache; --fresh runs them)" in warm.stderr
    for name in OUTPUTS:
        assert (tmp_path / name).read_bytes() == (default_run / name).read_bytes(), name


def test_an_explanation_is_reused_only_for_the_same_records(cache_dir):
    from reconcile import diff

    records = api.run(models="lenet", tools="thop")
    first = diff.explain(records)
    assert len(list(cache_dir.glob("explanations/lenet-*.json"))) == 1
    assert diff.explain(records).equals(first)  # from the entry
    edited = records.copy()
    total = (edited.layer == "__total__") & (edited.metric == "macs")
    edited.loc[total, "value"] = 2_307_720  # what thop 0.0.31 printed: 2,293,000 + conv bias adds 11,520 + 3,200
    explained = diff.explain(edited)
    assert len(list(cache_dir.glob("explanations/lenet-*.json"))) == 2  # other records, another entry
    residual = lambda frame: frame[(frame.layer == "__total__") & (frame.metric == "macs")].residual.item()
    assert residual(first) == 0 and residual(explained) == 11_520 + 3_200  # the per-layer rows still sum to 2,293,000
