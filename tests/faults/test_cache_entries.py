"""The cache is data and is never trusted (reconcile/cache.py): crafted, corrupt and foreign entries are misses
that get rewritten, never code that runs and never a wrong number; the key follows what the model's module
imports and the versions of the frameworks; one cache serves run, check and which, in the user's cache folder."""
import json
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from conventions.ir import Layer, Model
from reconcile import api, cache, identity
from reconcile.models import from_model_file, reference
from reconcile.records import Record
from reconcile.runner import Job


# ------------------------------------------------------------------------------------------------ fixtures
def thop_records():
    """Records as thop 0.1.1 prints them on LeNet (per layer MACC; total 2,293,000 = 288,000 + 1,600,000 +
    400,000 + 5,000)."""
    rows = [("conv1", "conv", 288_000), ("conv2", "conv", 1_600_000), ("ip1", "linear", 400_000),
            ("ip2", "linear", 5_000), ("__total__", "", 2_293_000)]
    out = [Record("lenet", "torch", "thop", "0.1.1.post2209072238", layer, kind, "compute", "macs", value, "ok", "",
                  "1x1x28x28", 1, "0123456789abcdef") for layer, kind, value in rows]
    return out + [Record("lenet", "torch", "thop", "0.1.1.post2209072238", "__model__", "", "compute", "", None,
                         "error", "a message, with \"quotes\"", "1x1x28x28", 1, "0123456789abcdef")]


def small_ir():
    """A layer IR with every kind of value the codec must keep apart: tuples, nested tuples, attrs, floats."""
    conv = Layer("conv1", "conv", ((1, 1, 28, 28),), (1, 20, 24, 24), (5, 5), (1, 1), (0, 0), (1, 1), 1, True,
                 "Conv2d", 520, (("module", "Conv2d"), ("scale", 0.5), ("names", ("a", "b")), ("none", None)))
    fc = Layer("ip2", "linear", ((1, 500),), (1, 10), op="Linear", params=5010, bias=True)
    return Model("lenet", "torch", (1, 1, 28, 28), (conv, fc), ("a note",))


@pytest.fixture
def entries(tmp_path):
    """One entry of each kind in a fresh cache folder: (root, job, records, ir, frame, rows)."""
    root = tmp_path / "cache"
    job = Job("thop", reference("lenet"))
    records = thop_records()
    ir = small_ir()
    frame = api.frame(records)
    rows = [{"model": "lenet", "layer": "conv1", "value": 288_000, "residual": 0, "explanation": "1*MACC",
             "ratio": 0.5, "missing": None, "nan": float("nan")}]
    assert cache.store(job, records, (), root)
    assert cache.store_ir(job.spec, "torch", ir, (), root)
    assert cache.explained(frame, ir, lambda r, i: rows, root) is rows
    return root, job, records, ir, frame, rows


def same_rows(a, b) -> bool:
    return json.dumps(cache.encode(a), sort_keys=True) == json.dumps(cache.encode(b), sort_keys=True)


# ------------------------------------------------------------------------------------------------ entries
def test_entries_round_trip_and_are_signed_json(entries):
    root, job, records, ir, frame, rows = entries
    assert cache.load(job, root) == records
    assert cache.stored_ir(job.spec, "torch", root) == ir
    assert same_rows(cache.explained(frame, ir, lambda r, i: pytest.fail("recomputed"), root), rows)
    key = root / cache.KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600 and key.stat().st_size == cache.KEY_BYTES
    for path in root.rglob("*.json"):
        mac, _, body = path.read_bytes().partition(b"\n")
        assert len(mac) == 64 and json.loads(body)["format"] == cache.FORMAT  # JSON after an HMAC line


def test_a_crafted_pickle_runs_nothing_and_is_a_miss(entries, tmp_path):
    """Before: pickles were loaded as they were, and a crafted file ran a command inside reconcile."""
    root, job, records, ir, *_ = entries
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    for path in [cache.path_of(job, root)] + list((root / "layer_ir").rglob("*.json")):
        path.write_bytes(pickle.dumps(Exploit()))
    assert cache.load(job, root) is None and cache.stored_ir(job.spec, "torch", root) is None
    assert not marker.exists()


def test_an_entry_signed_with_another_key_or_for_another_key_is_a_miss(entries, tmp_path):
    root, job, records, *_ = entries
    other = tmp_path / "other"
    assert cache.store(job, records[:1], (), other)  # a valid entry of another cache (its own key)
    cache.path_of(job, root).write_bytes(cache.path_of(job, other).read_bytes())
    assert cache.load(job, root) is None
    # this cache's own signature on an entry made for another job (another tool) is no hit either
    torchstat = Job("torchstat", job.spec)
    assert cache.store(torchstat, records[:1], (), root)
    cache.path_of(job, root).write_bytes(cache.path_of(torchstat, root).read_bytes())
    assert cache.load(job, root) is None


def test_a_key_file_others_can_read_is_replaced(entries):
    root, job, *_ = entries
    key = root / cache.KEY_FILE
    key.chmod(0o644)
    assert cache.load(job, root) is None  # a new key: the old entries verify under none
    assert key.stat().st_mode & 0o777 == 0o600


MUTATIONS = ("flip a bit", "set a byte", "8 corrupt bytes", "insert", "delete", "truncate", "append", "swap",
             "change a digit", "another entry's MAC")


def mutate(data: bytes, kind: str, rng: random.Random, others: list[bytes]) -> bytes:
    out = bytearray(data)
    at = rng.randrange(len(out))
    if kind == "flip a bit":
        out[at] ^= 1 << rng.randrange(8)
    elif kind == "set a byte":
        out[at] = rng.randrange(256)
    elif kind == "8 corrupt bytes":
        out[at:at + 8] = bytes(rng.randrange(256) for _ in range(8))
    elif kind == "insert":
        out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "delete":
        del out[at:at + rng.randint(1, 16)]
    elif kind == "truncate":
        del out[at:]
    elif kind == "append":
        out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == "swap":
        other = rng.randrange(len(out))
        out[at], out[other] = out[other], out[at]
    elif kind == "change a digit":  # the mutation that would serve a wrong number if nothing checked the bytes
        digits = [i for i, b in enumerate(out) if 48 <= b <= 57]
        i = rng.choice(digits)
        out[i] = 48 + (out[i] - 48 + rng.randint(1, 9)) % 10
    else:
        mac = rng.choice(others).partition(b"\n")[0]
        out = bytearray(mac + b"\n" + bytes(out).partition(b"\n")[2])
    return bytes(out)


@pytest.mark.slow  # a thousand mutated entries read back
def test_1000_random_mutations_give_no_traceback_and_no_wrong_number(entries):
    """Every mutation of an entry is either a miss (the job or trace runs again) or, when it changed nothing,
    the very entry: 0 exceptions, 0 wrong values served."""
    root, job, records, ir, frame, rows = entries
    spec = job.spec
    files = {"records": cache.path_of(job, root), "ir": next((root / "layer_ir").rglob("*.json")),
             "explanations": next((root / "explanations").rglob("*.json"))}
    originals = {kind: path.read_bytes() for kind, path in files.items()}
    recomputed = [{"recomputed": object()}]  # what a miss computes (not kept: the cache cannot hold an object)
    readers = {"records": (lambda: cache.load(job, root), records),
               "ir": (lambda: cache.stored_ir(spec, "torch", root), ir),
               "explanations": (lambda: cache.explained(frame, ir, lambda r, i: recomputed, root), rows)}
    rng = random.Random(24)
    tracebacks, wrong, misses, hits = [], [], 0, 0
    for trial in range(1000):
        kind = list(files)[trial % 3]
        mutation = MUTATIONS[rng.randrange(len(MUTATIONS))]
        others = [data for other, data in originals.items() if other != kind]
        mutated = mutate(originals[kind], mutation, rng, others)
        files[kind].write_bytes(mutated)  # (the next mutation of this entry starts again from the original)
        read, expected = readers[kind]
        try:
            got = read()
        except Exception as exc:  # noqa: BLE001 (counted: must stay 0)
            tracebacks.append((mutation, repr(exc)))
            continue
        if got is None or got is recomputed:
            misses += 1
        elif (same_rows(got, expected) if kind == "explanations" else got == expected) and mutated == originals[kind]:
            hits += 1
        else:
            wrong.append((mutation, kind))
    print(f"1000 mutations: {misses} misses, {hits} unchanged hits, {len(tracebacks)} tracebacks, "
          f"{len(wrong)} wrong values")
    assert tracebacks == [] and wrong == []
    assert misses + hits == 1000 and misses > 950
    # a miss is rewritten by the next store, and then served
    files["records"].write_bytes(b"\x00" * 8 + originals["records"][8:])
    assert cache.load(job, root) is None
    assert cache.store(job, records, (), root) and cache.load(job, root) == records


# ------------------------------------------------------------------------------------------------ the key
HELPER_NET = '''import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch.nn as nn
import helper


def net():
    return nn.Conv2d(1, helper.CHANNELS, 3)
'''


def thop_macs(frame) -> int:
    return frame[(frame.layer == "__total__") & (frame.metric == "macs")].value.item()


@pytest.mark.slow  # seconds: runs thop twice on a user model
def test_editing_a_helper_module_the_model_imports_reruns_the_job(tmp_path, monkeypatch):
    """Before: a helper module the model file imports was not in the key, and its old numbers were served."""
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "helper.py").write_text("CHANNELS = 2\n")
    (tmp_path / "net.py").write_text(HELPER_NET)
    hits = []

    def progress(done, total, job, records, seconds, cached=False):
        hits.append(cached)

    first = api.run(model_file=f"{tmp_path / 'net.py'}:net", input_shape="1,1,8,8", tools="thop", progress=progress)
    again = api.run(model_file=f"{tmp_path / 'net.py'}:net", input_shape="1,1,8,8", tools="thop", progress=progress)
    (tmp_path / "helper.py").write_text("CHANNELS = 4  # edited\n")
    edited = api.run(model_file=f"{tmp_path / 'net.py'}:net", input_shape="1,1,8,8", tools="thop",
                     progress=progress)
    # Conv2d(1, C, 3) on 8x8: 6x6 outputs x 9 weights x C channels = 324 C multiply-accumulates
    assert (thop_macs(first), thop_macs(again), thop_macs(edited)) == (648, 648, 1296)
    assert hits == [False, True, False]
    entry = next((tmp_path / "cache" / "results" / "thop").glob("*.json"))
    imported = json.loads(entry.read_bytes().partition(b"\n")[2])["imports"]
    assert str((tmp_path / "helper.py").resolve()) in [path for path, _ in imported]


def test_the_key_covers_the_transformers_version_and_the_project_code(monkeypatch):
    job = Job("thop", reference("lenet"))
    before = cache.path_of(job)
    real = cache._versions
    monkeypatch.setattr(cache, "_versions", lambda dists: real(dists) + "; transformers 99.0 (another release)")
    cache.code_fingerprint.cache_clear()
    try:
        assert "transformers" in cache.FRAMEWORKS and cache.path_of(job) != before
    finally:
        monkeypatch.undo()
        cache.code_fingerprint.cache_clear()
    assert cache.path_of(job) == before
    assert {"reconcile/runner.py", "reconcile/adapters", "reconcile/frontends"} <= set(cache.RECORD_CODE)


def test_out_of_memory_and_not_run_rows_are_not_kept(tmp_path):
    job = Job("thop", reference("lenet"))
    for message in ("ran out of memory: the job's memory cap is 2.0 GiB", "not run: model 'lenet': tracing timed "
                    "out after 3 s", "timed out after 3 s; killed"):
        row = Record("lenet", "torch", "thop", "0", "__model__", "", "compute", "", None, "error", message)
        assert not cache.store(job, [row], (), tmp_path)


# ------------------------------------------------------------------------------------------------ one cache, where
@pytest.mark.slow  # runs tools or traces in job processes
def test_which_and_run_share_one_cache(tmp_path):
    """which's tool runs go through the same entries run and check use (before: its own .cache/runs without
    code or framework versions in the key)."""
    from reconcile import which

    spec = reference("gconv")
    frame, notes = which.tool_records(spec, ["document"], cache_dir=str(tmp_path), report_records=None)
    assert notes == [f"ran document; cached in {tmp_path}"]
    # Conv2d(8, 16, 3, groups=4) with bias on 10x10: 8x8 outputs x 16 x (8/4 x 9) = 18,432 MACC, FLOPs
    # 2 x 18,432 + 16 x 64 bias adds = 37,888
    flops = frame[(frame.layer == "__total__") & (frame.metric == "flops")].value.item()
    assert flops == 2 * 18_432 + 16 * 64
    hits = []
    api.run_cached([Job("document", spec)], progress=lambda *args, cached=False: hits.append(cached), root=tmp_path)
    assert hits == [True]
    assert sorted(p.parent.name for p in tmp_path.rglob("*.json") if p.parent.parent.name == "results") == \
        ["document"]


@pytest.mark.parametrize("env, where", [
    ({"RECONCILE_CACHE_DIR": "{tmp}/explicit"}, "{tmp}/explicit"),
    ({"XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/reconcile"),
    ({"XDG_CACHE_HOME": "relative/ignored", "HOME": "{tmp}/home"}, "{tmp}/home/.cache/reconcile"),
    ({"HOME": "{tmp}/home"}, "{tmp}/home/.cache/reconcile"),
])
def test_the_cache_folder(tmp_path, monkeypatch, env, where):
    for name in ("RECONCILE_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert cache.cache_root() == Path(where.format(tmp=tmp_path))


@pytest.mark.system  # a fresh process: formulas from another directory
def test_run_from_another_directory_writes_nothing_there(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RECONCILE_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "reconcile", "formulas", "gconv", "--format", "csv"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "__total__,,304,18432,37888"  # params 16 x (2 x 9) + 16 = 304
    assert list(work.iterdir()) == []
    assert list((tmp_path / "xdg" / "reconcile" / "layer_ir" / "torch").glob("gconv-*.json"))


def test_a_module_file_larger_than_the_bound_is_not_hashed_whole(tmp_path):
    big = tmp_path / "big.py"
    with open(big, "wb") as handle:
        handle.truncate(identity.MAX_SOURCE_BYTES + 1)
    assert identity.file_hash(big) == identity.UNREADABLE
    assert identity.unchanged([(str(big), identity.UNREADABLE)]) is False  # never verifies: never a stale hit
    (tmp_path / "ok.py").write_text("def net():\n    pass\n")
    assert identity.identify(from_model_file(f"{tmp_path / 'ok.py'}:net", "1,1,8,8")).complete


@pytest.mark.slow  # runs tools or traces in job processes
def test_a_corrupt_layer_ir_entry_is_retraced_and_rewritten(tmp_path, monkeypatch, capsys):
    """Before: 8 corrupt bytes in a cached IR were a traceback that --fresh did not recover, and `formulas`
    blamed the model."""
    from reconcile import models, runner
    from reconcile.cli import main

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))

    def formulas() -> str:  # as a command of its own: no IR in memory, a trace worker of its own
        runner._close_tracer()
        models.forget_irs(reference("gconv"))
        main(["formulas", "gconv", "--format", "csv"])
        return capsys.readouterr().out

    first = formulas()
    (entry,) = (tmp_path / "layer_ir" / "torch").glob("gconv-*.json")
    good = entry.read_bytes()
    entry.write_bytes(good[:100] + bytes(range(200, 208)) + good[108:])
    assert formulas() == first  # a miss: traced again in a job, the same table
    assert entry.read_bytes() == good  # and the entry written again
    assert first.splitlines()[-1] == "__total__,,304,18432,37888"
