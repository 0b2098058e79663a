"""Engines (reconcile/engines), the sweep store (reconcile/store.py) and their faults: a worker killed mid-job is
run once more, then an error row; each job's rows are written once; a rerun runs only what the store lacks; the
builtin engine and Ray give the same bytes; a two-node Ray cluster that loses a node's raylet mid-sweep still does
every job exactly once, and a killed driver's rerun resumes. Tests that need Ray are skipped without it (the
`.[cluster]` extra; `make install` installs it)."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from reconcile import engines, store
from reconcile.engines import Failed
from reconcile.errors import UserError
from reconcile.records import ERROR, MODEL_LEVEL, Emitter

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
HAVE_RAY = importlib.util.find_spec("ray") is not None
HAVE_STORE = importlib.util.find_spec("duckdb") is not None and importlib.util.find_spec("pyarrow") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install -c constraints.txt "
                                                    "'.[cluster]')")
needs_store = pytest.mark.skipif(not HAVE_STORE, reason="duckdb/pyarrow are not installed (the .[cluster] extra)")
sys.path.insert(0, str(TESTS))
from engine_jobs import fault_job  # noqa: E402


def _records(model: str, values: list):
    emit = Emitter(model, "torch", "thop", "9.9")
    return [emit.ok(f"layer{i}", "conv", "compute", "macs", v) for i, v in enumerate(values)]


# ------------------------------------------------------------------------------------------------ the store
@needs_store
def test_store_writes_each_job_once_a_file_per_batch_and_exports_in_key_order(tmp_path):
    writer = store.Store(tmp_path).writer("builtin", batch_jobs=2, batch_seconds=1e9)
    assert writer.add("k3", _records("m3", [288000, 1.5]))
    assert writer.add("k1", _records("m1", [7]))
    assert not writer.add("k1", _records("m1", [8]))  # the same key again: dropped, not a second row
    assert writer.add("k2", _records("m2", [2 ** 53 + 1]))  # beyond a float64's integers: kept exact as text
    writer.close()
    files = store.Store(tmp_path).files()
    assert len(files) == 2 and writer.dropped == 1  # 3 jobs, 2 per batch
    assert store.Store(tmp_path).done_keys() == {"k1", "k2", "k3"}
    lines = store.export_csv(tmp_path).splitlines()
    assert lines[0].split(",")[:3] == ["job_key", "release", "model"]
    values = [(line.split(",")[0], line.split(",")[10]) for line in lines[1:]]
    assert values == [("k1", "7"), ("k2", str(2 ** 53 + 1)), ("k3", "288000"), ("k3", "1.5")]
    # a second driver on the same folder drops what the first wrote, even when it learns of it only at its flush
    late = store.Store(tmp_path).writer("ray", batch_jobs=10)
    late.store._keys_by_file.clear()
    late.written.clear()
    assert late.add("k2", _records("m2", [5])) and late.add("k4", _records("m4", [4]))
    late.close()
    assert late.dropped == 1
    jobs = store.query(tmp_path, "SELECT job_key, rows, status FROM jobs ORDER BY job_key")
    assert list(jobs.job_key) == ["k1", "k2", "k3", "k4"] and list(jobs.rows) == [1, 1, 2, 1]
    raw = store.query(tmp_path, "SELECT count(*) AS n FROM raw WHERE job_key = 'k2'")
    assert raw.n.item() == 1


@needs_store
def test_two_files_holding_one_job_count_once(tmp_path):
    """Two drivers that finished the same job at the same moment: the views keep the file that sorts first."""
    for name in ("a", "b"):
        writer = store.Store(tmp_path).writer(name)
        writer.driver = name  # file names part-a-..., part-b-...
        writer.store.done_keys = set  # the race: b flushes before it sees a's file
        writer.add("k", _records("m", [1 if name == "a" else 2]))
        writer.close()
    assert len(store.Store(tmp_path).files()) == 2
    assert store.query(tmp_path, "SELECT count(*) AS n FROM raw").n.item() == 2
    assert store.export_csv(tmp_path).splitlines()[1].split(",")[10] == "1"


@needs_store
def test_store_queries_fail_in_one_line(tmp_path):
    with pytest.raises(UserError, match=r"^query: .*nope"):
        store.query(tmp_path, "SELECT nope")
    assert store.query(tmp_path, "SELECT count(*) AS n FROM records").n.item() == 0  # an empty store


def test_engine_names_are_checked():
    with pytest.raises(UserError, match="did you mean ray"):
        engines.make("rayy")
    with pytest.raises(UserError, match="--address needs --engine ray"):
        engines.make("builtin", "127.0.0.1:6379")


# ------------------------------------------------------------------------------------------------ worker faults
def _fault_items(folder: Path) -> list:
    kinds = ["square", "die_once", "square", "die_always", "square"]
    return [(f"job{i}", (kind, str(folder), i)) for i, kind in enumerate(kinds)]


def _check_faults(results: dict, folder: Path) -> None:
    assert sorted(results) == [f"job{i}" for i in range(5)]  # every job reported once
    assert results["job0"] == [0] and results["job2"] == [4] and results["job4"] == [16]
    assert results["job1"] == [1]  # killed once, run once more: its result
    (failed,) = results["job3"]
    assert isinstance(failed, Failed), failed
    attempts = {i: (folder / f"{i}.attempts").read_text().split() for i in range(5)}
    assert [len(attempts[i]) for i in range(5)] == [1, 2, 1, 2, 1]
    assert attempts[1][0] != attempts[1][1]  # the second attempt ran in another worker process


def test_builtin_engine_runs_a_killed_workers_job_once_more_then_reports_it(tmp_path):
    results: dict = {}
    engines.make("builtin", workers=2).run(fault_job, _fault_items(tmp_path),
                                          lambda key, result: results.setdefault(key, []).append(result))
    _check_faults(results, tmp_path)
    assert results["job3"][0].reason.count("killed by SIGKILL") == 2


@pytest.fixture()
def ray_local():
    """A local Ray cluster for one test (its workers find tests/engine_jobs.py on PYTHONPATH): a test that kills
    Ray workers on purpose leaves no half-recovered cluster to the next one."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE", "RAY_ADDRESS")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ.pop("RAY_ADDRESS", None)
    engine = engines.make("ray", workers=2)
    try:
        yield engine
    finally:
        engine.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@needs_ray
@pytest.mark.system  # a local Ray cluster starts (~5-10 s)
def test_ray_engine_runs_a_killed_workers_job_once_more_then_reports_it(tmp_path, ray_local):
    results: dict = {}
    ray_local.run(fault_job, _fault_items(tmp_path), lambda key, result: results.setdefault(key, []).append(result))
    _check_faults(results, tmp_path)
    assert "WorkerCrashedError" in results["job3"][0].reason


# ------------------------------------------------------------------------------------------------ tool jobs
HOG = '''
import torch


class Hog(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)

    def forward(self, x):
        if not torch.jit.is_tracing() and x.shape[0] == 1 and getattr(self, "armed", True):
            torch.empty(8 * 2 ** 30, dtype=torch.uint8).fill_(1)
        return self.conv(x)


def net():
    return Hog()
'''

SLEEPER = '''
import os
import subprocess
import time

import torch


class Sleeper(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        subprocess.Popen(["sleep", "300"])  # a process the job spawned: dies with the job's group
        time.sleep(300)
        return self.fc(x)


def net():
    return Sleeper()
'''


@needs_store
@pytest.mark.system  # tool jobs under a memory cap and a timeout
def test_tool_jobs_keep_todays_isolation_memory_cap_and_timeout(tmp_path):
    from reconcile import atlas, models

    (tmp_path / "hog.py").write_text(HOG)
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    hog = models.from_model_file(f"{tmp_path / 'hog.py'}:net", "1,1,8,8")
    sleeper = models.from_model_file(f"{tmp_path / 'sleeper.py'}:net", "1,4")
    plan = atlas.plan([hog, sleeper], ["thop"], {}, 5.0, 2 * 2 ** 30)
    summary = atlas.sweep(plan.jobs, tmp_path / "out", engines.make("builtin", workers=2))
    assert summary.ran == 2 and summary.failed == 0
    rows = store.query(tmp_path / "out", f"SELECT model, message FROM records WHERE layer = '{MODEL_LEVEL}' "
                                         f"AND status = '{ERROR}' ORDER BY model")
    messages = dict(zip(rows.model, rows.message))
    hog_message = messages[hog.name]
    assert "ran out of memory: the job may use 2.0 GiB (--memory)" in hog_message, hog_message
    assert "asked for 8.0 GiB more" in hog_message  # torch.empty(8 * 2**30 bytes)
    assert messages[sleeper.name] == "timed out after 5 s; killed"
    time.sleep(0.5)
    mine = subprocess.run(["pgrep", "-f", "^sleep 300$"], capture_output=True, text=True).stdout.split()
    assert not [pid for pid in mine if _parent_chain_has(int(pid), os.getpid())]


def _parent_chain_has(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
    return False


@needs_ray
@needs_store
@pytest.mark.system  # the same jobs on both engines, a local Ray cluster started
def test_builtin_and_ray_give_the_same_bytes(tmp_path, ray_local):
    from reconcile import atlas, models
    from reconcile.jobs import memory_cap

    specs = [models.reference("lenet"), models.reference("gconv")]
    plan = atlas.plan(specs, ["document", "thop", "torchinfo"], {}, 120.0, memory_cap())
    atlas.sweep(plan.jobs, tmp_path / "builtin", engines.make("builtin"), batch_jobs=2)
    atlas.sweep(plan.jobs, tmp_path / "ray", ray_local, batch_jobs=4)
    exported = store.export_csv(tmp_path / "builtin")
    assert exported == store.export_csv(tmp_path / "ray")
    totals = store.query(tmp_path / "ray", "SELECT model, tool, metric, value FROM records WHERE layer = '__total__' "
                                            "AND status = 'ok'")
    got = {(r.model, r.tool, r.metric): r.value for r in totals.itertuples()}
    # LeNet by hand (docs/document.md): MACC 20*24*24*25 + 50*8*8*500 + 800*500 + 500*10, params 431,080
    lenet_macc = 20 * 24 * 24 * 25 + 50 * 8 * 8 * 500 + 800 * 500 + 500 * 10
    assert got[("lenet", "document", "macc")] == lenet_macc == 2_293_000
    assert got[("lenet", "document", "params")] == 520 + 25_050 + 400_500 + 5_010
    assert got[("lenet", "thop", "macs")] == lenet_macc  # thop 0.1.1: no bias adds
    # gconv: Conv2d(8, 16, 3, groups=4) on 10x10: 16 x 8x8 outputs x (8/4)*3*3 MACs
    assert got[("gconv", "document", "macc")] == 16 * 8 * 8 * 2 * 9
    # a rerun on either engine finds everything done
    assert atlas.sweep(plan.jobs, tmp_path / "ray", ray_local).ran == 0


# ------------------------------------------------------------------------------------------------ a two-node cluster
def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _processes_under(folder: str) -> list[int]:
    """Processes of a node started with --temp-dir=folder: named in their command line, or (Ray's agents rename
    themselves, ray::DashboardAgent) holding a file under it open (their logs)."""
    import psutil

    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(folder in part for part in proc.info["cmdline"] or ()) or \
                    any(f.path.startswith(folder) for f in proc.open_files()):
                out.append(proc.info["pid"])
        except (psutil.Error, TypeError):
            continue
    return out


@pytest.fixture()
def two_nodes():
    """A head node and a second node on this machine (`ray start --head`, `ray start --address`), one CPU each,
    each with its own temp folder; every process of theirs killed at the end (by pid, found by folder)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    head, node = tempfile.mkdtemp(prefix="rh", dir="/tmp"), tempfile.mkdtemp(prefix="rn", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_health_check_period_ms": "1000",
           "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    common = ["--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run([_ray_bin(), "start", "--head", f"--port={port}", f"--temp-dir={head}",
                        "--include-dashboard=false", *common], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([_ray_bin(), "start", f"--address=127.0.0.1:{port}", f"--temp-dir={node}", *common], env=env,
                       check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", node, env
    finally:
        for folder in (node, head):
            for pid in _processes_under(folder):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(head, ignore_errors=True)
        shutil.rmtree(node, ignore_errors=True)


# x the 12 torch-side tools at the venv's versions: 84 jobs, enough that the second node is warm and busy before
# the sweep ends
SWEPT_MODELS = "lenet,lenet_relu_module,sepnet,gconv,mha,block,resblock"


def _sweep(out: Path, address: str, env: dict, stderr) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reconcile", "atlas", "sweep", "--models", SWEPT_MODELS,
                             "--venv-only", "--out", str(out), "--engine", "ray", "--address", address,
                             "--batch-jobs", "3"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr,
                            text=True)


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.2)


def _once_each(out: Path) -> tuple[int, int, list]:
    """(jobs, jobs held by more than one file, messages of jobs the engine gave up on: Ray's reason)."""
    jobs = store.query(out, "SELECT count(*) AS n FROM jobs").n.item()
    twice = store.query(out, "SELECT count(*) AS n FROM (SELECT job_key FROM raw GROUP BY job_key "
                             "HAVING count(DISTINCT filename) > 1)").n.item()
    lost = list(store.query(out, "SELECT message FROM jobs WHERE message LIKE 'ray:%'").message)
    return jobs, twice, lost


@needs_ray
@needs_store
@pytest.mark.system  # a two-node cluster, two sweeps of 84 jobs, a node and a driver killed
def test_two_node_cluster_loses_a_raylet_and_a_driver_and_does_every_job_once(tmp_path, two_nodes):
    import psutil

    address, node_folder, env = two_nodes
    from reconcile import atlas

    total = len(SWEPT_MODELS.split(",")) * len(atlas.tool_list())  # --venv-only: one release per tool
    # 1. the second node's raylet killed mid-sweep: its jobs are rescheduled on the head
    with open(tmp_path / "first.err", "w") as err:
        first = _sweep(tmp_path / "a", address, env, err)
        lines = lambda: re.findall(r"^\[\d+/.* on (\S+)$", (tmp_path / "first.err").read_text(), re.M)  # noqa
        # both nodes have finished jobs: the second one is warm and busy
        _wait_for(lambda: len(set(lines())) >= 2 or first.poll() is not None, 300, "jobs done on both nodes")
        raylets = [pid for pid in _processes_under(node_folder) if "raylet" in psutil.Process(pid).name()]
        assert raylets, "no raylet found for the second node"
        for pid in raylets:
            os.kill(pid, signal.SIGKILL)
        done_at_kill = len(lines())
        out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, (tmp_path / "first.err").read_text()[-2000:]
    assert done_at_kill < total, "the sweep ended before the raylet was killed"
    jobs, twice, lost = _once_each(tmp_path / "a")
    assert (jobs, twice, lost) == (total, 0, []), out  # none lost, none twice, none given up
    assert store.query(tmp_path / "a", "SELECT count(DISTINCT host) AS n FROM jobs").n.item() == 2  # both nodes ran
    # 2. the driver killed after its first batches; the rerun runs only the missing jobs
    with open(tmp_path / "second.err", "w") as err:
        second = _sweep(tmp_path / "b", address, env, err)
        _wait_for(lambda: len(store.Store(tmp_path / "b").files()) >= 2 or second.poll() is not None, 300,
                  "two batch files")
        second.send_signal(signal.SIGKILL)
        second.wait(60)
    kept = len(store.Store(tmp_path / "b").done_keys())
    assert 0 < kept < total
    with open(tmp_path / "third.err", "w") as err:
        third = _sweep(tmp_path / "b", address, env, err)
        out, _ = third.communicate(timeout=600)
    assert third.returncode == 0, (tmp_path / "third.err").read_text()[-2000:]
    assert out.startswith(f"{total - kept} jobs run, {kept} already in the store"), out
    print(f"two nodes: raylet killed after {done_at_kill} of {total} jobs; driver killed with {kept} of {total} "
          f"written, the rerun ran {total - kept}")
    assert _once_each(tmp_path / "b")[:2] == (total, 0)
    assert store.export_csv(tmp_path / "b") == store.export_csv(tmp_path / "a")


@needs_ray
@pytest.mark.system  # one hf model swept twice, a local Ray cluster started
def test_reconcile_sweep_on_ray_writes_what_the_builtin_engine_writes(tmp_path, monkeypatch):
    from conftest import run_cli

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    builtin = run_cli("sweep", "hf", "--models", "gpt2", "--out", str(tmp_path / "b"), "--quiet", "--fresh")
    ray = run_cli("sweep", "hf", "--models", "gpt2", "--out", str(tmp_path / "r"), "--quiet", "--fresh",
                  "--engine", "ray")
    assert builtin.returncode == 0 and ray.returncode == 0, (builtin.stderr[-1500:], ray.stderr[-1500:])
    assert (tmp_path / "b" / "sweep.csv").read_bytes() == (tmp_path / "r" / "sweep.csv").read_bytes()
    assert "1/1 traced" in ray.stdout
