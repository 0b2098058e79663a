"""Every parameter validated at the edge: one line on stderr, exit 2, before any job runs."""
import os
from pathlib import Path

import pytest

from reconcile import api
from reconcile.cli import main
from reconcile.drift import pip_error
from reconcile.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
LENET_PROTOTXT = str(ROOT / "reference_models" / "prototxt" / "lenet.prototxt")


def run_main(args, capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_jobs(monkeypatch):
    """Fail the test if anything would run."""
    def refuse(*args, **kwargs):
        raise AssertionError("a job started although the input is bad")

    from reconcile import golden, runner

    monkeypatch.setattr(api, "execute", refuse)
    monkeypatch.setattr(runner, "run_jobs", refuse)
    monkeypatch.setattr(runner, "trace_irs", refuse)
    monkeypatch.setattr(golden, "available_tools", refuse)


def one_line(code, err, says):
    assert code == 2, err
    assert says in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


COMMANDS = {
    "run": ["run", "--models", "lenet", "--tools", "thop"],
    "check": ["check", "--tools", "thop", "--models", "lenet"],
    "formulas": ["formulas", "lenet"],
    "matrix": ["matrix", "--tool", "thop", "--versions", "0.1.1.post2209072238", "--models", "lenet"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("value", ["inf", "1e400", "1e12", "0", "-5", "nan", "-inf", "abc"])
def test_timeouts_must_be_finite_positive_and_sane(tmp_path, capsys, no_jobs, command, value):
    code, _, err = run_main(COMMANDS[command] + ["--timeout", value] +
                            (["--out", str(tmp_path / "o")] if command in ("run", "matrix") else []), capsys)
    one_line(code, err, "--timeout")
    assert not (tmp_path / "o").exists()


def test_api_timeout_is_checked_too():
    with pytest.raises(UserError, match="above 0 and at most 86400"):
        api.run(models="lenet", tools="thop", timeout=float("nan"))


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5"])
def test_tolerance_must_be_finite(capsys, no_jobs, value):
    one_line(*run_main(["which", "lenet", "2e6", "--tolerance", value, "--tools", ""], capsys)[::2], "--tolerance")


@pytest.mark.parametrize("args, says", [
    (["formulas", LENET_PROTOTXT, "--input-shape", "1,1,28,28"], "does not apply to a prototxt"),
    (["formulas", "lenet", "--input-shape", "1,3,64"], "takes a 4-D input like 1,1,28,28, not 3-D"),
    (["formulas", "lenet", "--input-shape", "abc"], "malformed input shape"),
    (["formulas", "lenet", "--input-shape", "1," * 17 + "1"], "malformed input shape"),
    (["formulas", "lenet", "--input-shape", "100000,100000,100,100"], "elements, more than"),
    (["run", "--models", LENET_PROTOTXT, "--tools", "netscope", "--input-shape", "1,1,28,28"],
     "does not apply to a prototxt"),
    (["run", "--models", "lenet", "--tools", "thop", "--input-shape", "1,1,28"], "takes a 4-D input"),
    (["run", "--models", "lenet", "--tools", "thop", "--input-shape", "2,1,28,28", "--batch", "2"],
     "--batch and --input-shape together"),
    (["run", "--tools", ""], "--tools is empty"),
    (["run", "--models", "", "--tools", "thop"], "--models is empty"),
    (["check", "--tools", ""], "--tools is empty"),
    (["which", "lenet", "1e1000000", "--tools", ""], "not a count a paper could print"),
    (["which", "lenet", "1e-400", "--tools", ""], "not a count a paper could print"),
])
def test_bad_parameters_are_one_line(tmp_path, capsys, no_jobs, args, says):
    code, _, err = run_main(args + (["--out", str(tmp_path / "o")] if args[0] == "run" else []), capsys)
    one_line(code, err, says)


def test_model_file_input_shape_needs_a_batch_dimension(tmp_path, capsys, no_jobs):
    path = tmp_path / "m.py"
    path.write_text("def net():\n    pass\n")
    code, _, err = run_main(["formulas", "--model-file", f"{path}:net", "--input-shape", "8"], capsys)
    one_line(code, err, "needs a batch dimension first")


def test_records_without_the_records_columns(tmp_path, capsys, no_jobs):
    other = tmp_path / "other.csv"
    other.write_text("name,score\nx,1\n")
    code, _, err = run_main(["which", "lenet", "2e6", "--records", str(other), "--tools", "thop"], capsys)
    one_line(code, err, "not a records.csv of `reconcile run` (missing columns model, framework")


def test_reference_input_shape_is_applied_in_run():
    jobs = api.plan("lenet", "thop", input_shape="3,1,32,32")
    assert [job.spec.input_shape for job in jobs] == [(3, 1, 32, 32)]


def test_duplicates_run_once_with_a_note(tmp_path, capsys, monkeypatch):
    seen = []

    def fake_execute(jobs, timeout, progress, *rest):
        seen.extend(jobs)
        raise SystemExit(0)

    monkeypatch.setattr(api, "execute", fake_execute)
    code, _, err = run_main(["run", "--models", "lenet,lenet", "--tools", "thop,document,thop", "--quiet",
                             "--out", str(tmp_path / "o")], capsys)
    assert [(j.tool, j.spec.name) for j in seen] == [("thop", "lenet"), ("document", "lenet")]
    assert "note: --tools lists 'thop' more than once; it runs once" in err
    assert "note: --models lists 'lenet' more than once; it runs once" in err


def test_unreachable_index_is_named():
    stderr = ("WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after "
              "connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object>: "
              "Failed to establish a new connection: [Errno 101] Network is unreachable')': /simple/thop/\n"
              "ERROR: Could not find a version that satisfies the requirement thop==0.0.31 (from versions: none)\n"
              "ERROR: No matching distribution found for thop==0.0.31\n")
    assert pip_error(stderr).startswith("the package index could not be reached (NewConnectionError)")
    assert pip_error("ERROR: No matching distribution found for thop==9.9.9\n") == \
        "No matching distribution found for thop==9.9.9"


@pytest.mark.parametrize("body, says", [
    ("def other():\n    pass\n", "has no callable 'net'"),
    ("def net(:\n", "SyntaxError"),
    ("(" * 300 + ")" * 300 + "\n", "importing"),
])
def test_a_bad_model_file_is_reported_before_any_job(tmp_path, capsys, no_jobs, body, says):
    path = tmp_path / "m.py"
    path.write_text(body)
    code, _, err = run_main(["run", "--model-file", f"{path}:net", "--input-shape", "1,3,8,8", "--tools", "thop",
                             "--out", str(tmp_path / "o")], capsys)
    one_line(code, err, says)
    assert not (tmp_path / "o").exists()


def test_import_time_code_runs_once_and_never_in_the_parent(tmp_path, capsys):
    marker = tmp_path / "imported"
    path = tmp_path / "m.py"
    path.write_text(f"import os\nopen({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')\n"
                    "print('import-time output')\n"
                    "import torch.nn as nn\ndef net():\n    print('factory output')\n    return nn.Linear(4, 2)\n")
    code, out, err = run_main(["formulas", "--model-file", f"{path}:net", "--input-shape", "1,4", "--format", "csv",
                               "--timeout", "60"], capsys)
    assert code == 0, err
    # Linear 4->2 with bias: params 4*2+2 = 10, MACC 8, FLOPs 2*8+2 = 18; nothing the file printed in between
    assert out == "layer,kind,params,macc,flops\nlinear,linear,10,8,18\n__total__,,10,8,18\n", out
    pids = marker.read_text().split()
    assert len(pids) == 1 and int(pids[0]) != os.getpid()


def test_run_help_states_the_exit_statuses(capsys):
    code, out, _ = run_main(["run", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "Exit status: 0 when every job ran" in text and "1 when no job produced a number" in text
    assert "--strict" in text and "2 on bad input" in text


# ------------------------------------------------------------------------------------------------ shared parsers
@pytest.mark.parametrize("args, says", [
    (["formulas", "preset:gpt3-125m", "--tokens", "inf"], "--tokens must be a positive finite number"),
    (["formulas", "preset:gpt3-125m", "--tokens", "nan"], "--tokens must be a positive finite number"),
    (["formulas", "preset:gpt3-125m", "--tokens", "-3e9"], "--tokens must be a positive finite number"),
    (["which", "preset:gpt3-125m", "3e20", "--quantity", "train-compute", "--tokens", "1e400"],
     "--tokens must be a positive finite number"),
    (["formulas", "hf:gpt2?n_embd=inf"], "n_embd=inf is not a finite number"),
    (["formulas", "lenet", "--input-shape", "1x1x28"], "takes a 4-D input"),
    (["formulas", "lenet", "--input-shape", "1x1,28,28"], "malformed input shape"),
    (["formulas", "lenet", "--input-shape", "1x0x28x28"], "malformed input shape"),
    (["formulas", "module:json:loads?input_shape=14"], "needs a batch dimension first"),
    (["matrix", "--tool", "thop", "--versions", "abc"], "'abc' is not a version number"),
    (["matrix", "--tool", "thop", "--versions", "0.1.1,../../x"], "'../../x' is not a version number"),
])
def test_shared_parsers_refuse_in_one_line(tmp_path, capsys, no_jobs, args, says):
    code, _, err = run_main(args + (["--out", str(tmp_path / "o")] if args[0] == "matrix" else []), capsys)
    one_line(code, err, says)
    assert not (tmp_path / "o").exists()


def test_shapes_read_with_commas_or_x():
    from reconcile.validate import parse_shape

    assert parse_shape("1,3,32,32") == parse_shape("1x3x32x32") == parse_shape(" 1X3x32x32 ") == (1, 3, 32, 32)
    jobs = api.plan("lenet", "thop", input_shape="2x1x28x28")
    assert [job.spec.input_shape for job in jobs] == [(2, 1, 28, 28)]


def test_formulas_takes_a_shape_written_as_reconcile_models_prints_it(capsys):
    code, out, err = run_main(["formulas", "lenet", "--input-shape", "1x1x28x28", "--format", "csv"], capsys)
    assert code == 0, err
    # the document's LeNet: params 431,080, MACC 288,000 + 1,600,000 + 400,000 + 5,000 = 2,293,000
    assert out.splitlines()[-1].startswith("__total__,,431080,2293000,")


@pytest.mark.parametrize("call, says", [
    (lambda: api.run(module=object(), input_shape="14", tools="thop"), "needs a batch dimension first"),
    (lambda: api.run(module=object(), input_shape=(1, 2.5), tools="thop"), "input_shape must be a shape"),
    (lambda: api.run(module=object(), input_shape=(True, 3), tools="thop"), "input_shape must be a shape"),
    (lambda: api.run(models="lenet", tools="thop", batch=2.5), "batch must be a whole number of at least 1"),
    (lambda: api.run(models="lenet", tools="thop", batch="two"), "batch must be a whole number"),
    (lambda: api.run(models="lenet", tools="thop", batch=True), "batch must be a whole number"),
    (lambda: api.run(models="lenet", tools="thop", timeout=True), "must be a finite number of seconds"),
    (lambda: api.run(models="lenet", tools="thop", input_shape="1,1,-28,28"), "malformed input_shape"),
    (lambda: api.run(models=["lenet", 3], tools="thop"), "expected names as text"),
    (lambda: api.run(module=object(), input_shape=(1, 3), name="../x", tools="thop"), "name must be a Python"),
    (lambda: __import__("reconcile").which("lenet", "2e6", batch=2.5, tools=[]), "--batch must be a whole"),
    (lambda: __import__("reconcile").matrix("thop", "abc", models="lenet"), "'abc' is not a version number"),
])
def test_the_api_checks_its_arguments_before_anything_runs(no_jobs, call, says):
    with pytest.raises(UserError, match=says):
        call()


def test_which_train_compute_with_a_model_file_is_one_line(tmp_path, capsys, no_jobs):
    path = tmp_path / "m.py"
    path.write_text("def net():\n    pass\n")
    code, _, err = run_main(["which", "--model-file", f"{path}:net", "--input-shape", "1,4", "3e20", "--quantity",
                             "train-compute", "--tokens", "3e11"], capsys)
    one_line(code, err, "--quantity train-compute needs a token model")


@pytest.mark.parametrize("how", ["head -0", "closed"])
def test_a_closed_stdout_exits_cleanly(how):
    import subprocess
    import sys

    command = [sys.executable, "-m", "reconcile", "models"]
    if how == "closed":
        proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120,
                              cwd=ROOT, preexec_fn=lambda: os.close(1))
        code, err = proc.returncode, proc.stderr
    else:  # the reader leaves before reading anything
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        proc.stdout.close()
        code, err = proc.wait(timeout=120), proc.stderr.read()
    assert code == 0 and err == "", err
