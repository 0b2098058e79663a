"""The user-model zoo: factories and forwards that raise, hang, segfault, exit, spawn processes, print or allocate
too much, run through `reconcile run` (in-process API, plus end-to-end subprocesses for the crashes) and
`reconcile formulas`. The parent survives, reports each as an error row (or its numbers), never hangs past its
bound, and leaves no process behind."""
import subprocess
import sys

import pytest

import procs
from zoo_models import FAULTS, spawned_pids, write_model
from reconcile import api, models, runner
from reconcile.cli import main
from reconcile.report import write_outputs

TIMEOUT_S = 3
# Expected message per fault, when it fires in the IR job (factory or first forward). Conv 1->2, 3x3 on 8x8:
# 6x6 output, params 2*9+2 = 20, MACC 2*9*36 = 648.
TRACE_FAILS = {
    "raises": "factory 'net' raised RuntimeError: boom from the factory",
    "hangs": f"tracing timed out after {TIMEOUT_S} s; killed",
    "segfaults": "died (killed by SIGSEGV)",
    "os_exit": "died (exit code 3)",
    "sys_exit": "called sys.exit(0)",
    "allocates": "ran out of memory",
}
RUNS = ("spawns", "prints")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    paths = {fault: write_model(folder, fault) for fault in FAULTS}
    return folder, paths


TOOL_FAILS = {"os_exit": "exit code 3", "sys_exit": "sys.exit(0)", "segfaults": "killed by SIGSEGV"}


@pytest.mark.system  # a run over a zoo of faulty models, end to end
def test_run_reports_every_fault_as_rows_and_leaves_nothing(zoo, tmp_path):
    folder, paths = zoo
    # faults in the factory or first forward (the IR job), and forwards that run in the IR job and then kill the
    # tool job: before, the parent re-ran those while building the report and died (exit 3, 0 with no outputs,
    # or 139)
    tool_only = {fault: write_model(folder, fault, when="tool") for fault in TOOL_FAILS}
    specs = [models.from_model_file(f"{p}:net", "1,1,8,8") for p in list(paths.values()) + list(tool_only.values())]
    name = {spec.torch_factory.rpartition("/")[2].removesuffix(".py:net"): spec.name for spec in specs}  # the text
    jobs = api.plan([], "thop,document", specs)
    df = api.execute(jobs, TIMEOUT_S)
    # one IR timeout (hangs) and quick failures; the hanging model's tools are not run (their rows say "not
    # run:", below), so it costs one timeout, not one per tool
    for fault, says in TRACE_FAILS.items():
        rows = df[df.model == name[f"zoo_{fault}"]]
        assert set(rows.status) == {"error"}, (fault, rows.message.tolist())
        assert all(says in m and m.startswith("not run:") for m in rows.message), (fault, rows.message.tolist())
        assert says in df.attrs["ir_errors"][name[f"zoo_{fault}"]]
    for fault in RUNS:
        totals = df[(df.model == name[f"zoo_{fault}"]) & (df.tool == "thop") & (df.layer == "__total__")]
        assert dict(zip(totals.metric, totals.value)) == {"macs": 648, "params": 20}
    for fault, says in TOOL_FAILS.items():
        rows = df[df.model == name[f"zoo_{fault}_tool"]]
        thop = rows[rows.tool == "thop"]
        assert list(thop.status) == ["error"] and says in thop.message.item(), thop.message.tolist()
        flops = rows[(rows.tool == "document") & (rows.layer == "__total__") & (rows.metric == "flops")]
        assert flops.value.item() == 1368  # 2*648 MACC + 72 bias adds, from the IR the IR job shipped
    paths_out = write_outputs(df, tmp_path, df.attrs["specs"])  # the report: no forward runs here
    report = paths_out["report.md"].read_text()
    assert report.count("could not be traced to its layer IR") == len(TRACE_FAILS)
    runner._close_tracer()
    assert procs.descendants() == []
    assert spawned_pids(folder) and not [p for p in spawned_pids(folder) if procs.alive(p)]


def test_run_exit_statuses(tmp_path, monkeypatch, capsys):
    """0 when every job ran (a tool's crash is a row), 1 when no job produced a number, 1 with --strict when a
    row is an error. (The report itself is exercised above; here it is stubbed to keep the test fast.)"""
    import reconcile.report

    monkeypatch.setattr(reconcile.report, "write_outputs",
                        lambda df, out, specs, *rest: {"report.md": out / "report.md",
                                                       "report.html": out / "report.html"})
    path = write_model(tmp_path, "os_exit", when="tool")
    args = ["run", "--model-file", f"{path}:net", "--input-shape", "1,1,8,8", "--timeout", "20", "--quiet",
            "--out", str(tmp_path / "out")]
    main(args + ["--tools", "thop,document"])  # returns: exit 0
    for extra, says in ((["--tools", "thop,document", "--strict"], "1 error row (--strict)"),
                        (["--tools", "thop"], "no job produced a number (1 error row)")):
        with pytest.raises(SystemExit) as exited:
            main(args + extra)
        assert exited.value.code == 1 and says in capsys.readouterr().err


@pytest.mark.slow  # seconds: left out of make test-fast, run by make test; the hung model in the system tier
@pytest.mark.parametrize("fault", [pytest.param(f, marks=pytest.mark.system) if f == "hangs" else f for f in FAULTS])
def test_formulas_one_line_per_fault(zoo, capsys, fault):
    folder, paths = zoo
    try:
        main(["formulas", "--model-file", f"{paths[fault]}:net", "--input-shape", "1,1,8,8", "--format", "csv",
              "--timeout", str(TIMEOUT_S)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    if fault in TRACE_FAILS:
        assert code == 2 and TRACE_FAILS[fault] in err and len(err.strip().splitlines()) == 1, err
    else:  # what the factory or forward prints never reaches stdout: the CSV stays parseable
        assert code == 0 and out == ("layer,kind,params,macc,flops\nconv,conv,20,648,1368\n"
                                     "__total__,,20,648,1368\n"), out
    assert not [p for p in spawned_pids(folder) if procs.alive(p)]


@pytest.mark.system
def test_end_to_end_segfault_in_a_tool_job(tmp_path):
    """As a user runs it: a segfaulting forward is a row; exit 0; no process left in the run's session."""
    path = write_model(tmp_path, "segfaults", when="tool")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "reconcile", "run", "--model-file", f"{path}:net",
                             "--input-shape", "1,1,8,8", "--tools", "thop,document", "--timeout", "20", "--out", str(out),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "the tool's process died (killed by SIGSEGV) without a result" in (out / "records.csv").read_text()
    assert procs.in_session(proc.pid) == []


@pytest.mark.system  # waits out a hung job's timeout (the system tier: hung and killed processes)
def test_explain_in_the_users_interpreter_never_runs_the_forward(tmp_path, monkeypatch):
    """reconcile.explain() on records without their IRs (a loaded records.csv): the IR comes from a job process,
    so a model that segfaults or hangs there costs an error, not the user's interpreter."""
    import pandas as pd

    import reconcile

    specs = {}
    for fault in ("segfaults", "hangs"):
        spec = models.from_model_file(f"{write_model(tmp_path, fault)}:net", "1,1,8,8")
        specs[spec.name] = spec
    records = pd.DataFrame([{"model": name, "framework": "torch", "tool": "thop", "tool_version": "0",
                             "layer": "conv", "layer_kind": "conv", "quantity": "compute", "metric": "macs",
                             "value": 648, "status": "ok", "message": ""} for name in specs])
    monkeypatch.setattr(runner, "TRACE_TIMEOUT_S", TIMEOUT_S)
    explained = reconcile.explain(records, specs)
    assert explained.empty  # no IR, nothing to explain with; and this process is still here
