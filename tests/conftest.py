import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The result cache (reconcile/cache.py) of a test session lives in the session's temp folder, so tests never read a
# developer's .cache/results and jobs run once per session: the first test that needs a (tool, model) job runs it,
# later ones get the same records. Set before any test runs; subprocesses inherit it.
SESSION_CACHE = Path(tempfile.gettempdir()) / f"reconcile-test-cache-{os.getpid()}"
os.environ["RECONCILE_CACHE_DIR"] = str(SESSION_CACHE)
# Old tool releases (`reconcile matrix`) are installed once and kept across sessions, beside the venv.
os.environ.setdefault("RECONCILE_TOOL_CACHE", str(ROOT / ".cache" / "tools"))


def _import_transformers_models() -> None:
    """Jobs (reconcile/jobs.py) are forked from the test process and inherit its modules. Each job that builds a
    transformers model (hf: specs, presets, sweeps) would otherwise import transformers' modeling code itself
    (transformers.modeling_utils: ~2 s of CPU, most of a small job); imported here once, every job forked later has
    it. torchvision first where installed, as reconcile.zoo_import.torchvision_first does in the jobs."""
    if importlib.util.find_spec("transformers") is None:
        return
    from reconcile.zoo_import import torchvision_first

    torchvision_first()
    import transformers.modeling_utils  # noqa: F401


# Fixtures whose tests are system tests: the default suite end to end (every tool on every default model), local
# Ray clusters.
SYSTEM_FIXTURES = ("default_run", "ray_local", "two_nodes")


def pytest_collection_modifyitems(config, items):
    """Three tiers (markers registered in pyproject.toml): `system` (end to end: the default suite over every tool,
    Ray clusters, killed and faulty processes; `make test-all` and CI), `slow` and `registry`, and `fast` (every
    other test: `make test-fast`). `make test` runs all but the system tier. A test using a system fixture is a
    system test; those using the session's default run go last: the default run starts in the background when
    collection ends (pytest_collection_finish) and runs on the second core while the other tests run."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in SYSTEM_FIXTURES):
            item.add_marker(pytest.mark.system)
        if not any(item.get_closest_marker(name) for name in ("slow", "registry", "system")):
            item.add_marker(pytest.mark.fast)
    # stable (order kept otherwise): the tests that import TensorFlow into this process after the others, for a
    # job forked from a process holding TensorFlow costs more (~20 ms more each, of ~70); the default run's last
    items.sort(key=lambda item: ("default_run" in getattr(item, "fixturenames", ()),
                                 item.get_closest_marker("tensorflow") is not None))


_TENSORFLOW_SEEN: list = []


def pytest_runtest_teardown(item, nextitem):
    """The first test after which TensorFlow is in this process must be marked `tensorflow` (ordered last)."""
    if not _TENSORFLOW_SEEN and "tensorflow" in sys.modules:
        _TENSORFLOW_SEEN.append(item.nodeid)
        if item.get_closest_marker("tensorflow") is None:
            item.warn(pytest.PytestWarning("imports TensorFlow into the test process: mark it `tensorflow` "
                                           "(tests/conftest.py runs those after the others)"))


_DEFAULT_RUN: dict = {}  # "process": the background `reconcile run`, "folder": its --out and its stderr


def pytest_collection_finish(session):
    if any("default_run" in getattr(item, "fixturenames", ()) for item in session.items):
        folder = Path(tempfile.mkdtemp(prefix="reconcile-default-run-"))
        with open(folder / "stderr.txt", "w") as stderr:  # a file, not a pipe nobody reads until the end
            _DEFAULT_RUN.update(folder=folder, process=subprocess.Popen(
                # a generous job timeout: on a busy machine a TF-profiler job of ResNet-50 took 182 s, and a job
                # that times out is not cached (tests/test_cache.py compares this run with the same run warm)
                [sys.executable, "-m", "reconcile", "run", "--out", str(folder / "out"), "--quiet", "--timeout", "900"],
                cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=stderr))
    _import_transformers_models()  # before the first test forks a job


def pytest_sessionfinish(session, exitstatus):
    process = _DEFAULT_RUN.get("process")
    if process is not None and process.poll() is None:  # interrupted before a test waited for it
        process.kill()
        process.wait()
    if "folder" in _DEFAULT_RUN:
        shutil.rmtree(_DEFAULT_RUN["folder"], ignore_errors=True)
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The real console entry point, in a fresh process (as a user runs it): for the end-to-end tests only."""
    return subprocess.run([sys.executable, "-m", "reconcile", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@dataclass
class Result:
    """What run_cli returns, for an in-process run."""
    args: list
    returncode: int
    stdout: str
    stderr: str


def invoke_cli(*args: str, cwd: Path = ROOT) -> Result:
    """The console entry point (reconcile.cli.main: one-line errors, exit codes) run in this process with click's
    test runner capturing stdout and stderr apart; no interpreter start-up, no `import torch` per call. An
    exception main() lets through is returned as exit 1 with its traceback on stderr, as a real process shows."""
    from click.testing import CliRunner

    from reconcile.cli import main

    code = 0
    saved = os.getcwd()
    with CliRunner().isolation() as (out, err, _):
        os.chdir(cwd)
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # noqa: BLE001 (shown like the interpreter would)
            sys.stderr.write(traceback.format_exc())
            code = 1
        finally:
            os.chdir(saved)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return Result(list(args), code, stdout, stderr)


@pytest.fixture
def cli():
    return invoke_cli


@pytest.fixture(scope="session")
def default_run() -> Path:
    """`reconcile run` over the default suite (every tool on every default model), end to end in a fresh process,
    once per session, started in the background when collection ends: its records fill the session's result
    cache, so later runs of any of these jobs (`check`, api.run of a subset) reuse them. Returns the --out
    folder (records.csv, report.md, ...)."""
    process, folder = _DEFAULT_RUN["process"], _DEFAULT_RUN["folder"]
    process.wait(timeout=1800)
    assert process.returncode == 0, (folder / "stderr.txt").read_text()
    return folder / "out"
