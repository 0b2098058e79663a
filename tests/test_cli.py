"""The command line as a user runs it: exact output for the document's LeNet, one-line errors with status 2."""
import json

import pytest

LENET_CSV = """layer,kind,params,macc,flops
conv1,conv,520,288000,587520
pool1,pool_max,0,,11520
conv2,conv,25050,1600000,3203200
pool2,pool_max,0,,3200
ip1,linear,400500,400000,800500
relu1,act,0,,
ip2,linear,5010,5000,10010
__total__,,431080,2293000,4615950
"""  # numbers: the document's own (docs/document.md): 520/288k/587.52k, 11.52k, 25.05k/1.6M/3203.2k, 3.2k, 400.5k/400k/800.5k,
# 5.01k/5k/10.01k; totals 520+25,050+400,500+5,010 = 431,080 params, 288,000+1,600,000+400,000+5,000 MACC


def test_formulas_lenet_csv_is_exact(cli):
    result = cli("formulas", "lenet", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout == LENET_CSV


def test_formulas_json_and_table(cli):
    result = cli("formulas", "sepnet", "--format", "json")
    data = json.loads(result.stdout)
    rows = {row["layer"]: row for row in data["layers"]}
    assert rows["pool1"]["flops"] == 16 * 32 * 32 and "36,864" in rows["pool1"]["note"]  # 3x3/2 pool: IN != WINDOW
    assert rows["bn1"]["flops"] is None
    table = cli("formulas", "lenet").stdout
    assert "587,520" in table and "no document formula for act" in table


def test_formulas_from_a_model_file(cli, tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("import torch.nn as nn\n"
                    "def net():\n    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())\n")
    result = cli("formulas", "--model-file", f"{path}:net", "--input-shape", "1,3,9,9", "--format", "csv")
    assert result.returncode == 0, result.stderr
    # out 5x5: params 3*3*3*8+8 = 224, macc 216*25 = 5,400, flops (2*216+8)*25 = 11,000
    assert "0,conv,224,5400,11000" in result.stdout


@pytest.mark.parametrize("args, fragment", [
    (["formulas", "nosuchnet"], "unknown model 'nosuchnet'"),
    (["formulas", "missing.prototxt"], "no such prototxt file"),
    (["formulas", "--model-file", "/nonexistent/x.py:f", "--input-shape", "1,3,8,8"], "no such file"),
    (["formulas", "lenet", "--input-shape", "1,x,28"], "malformed input shape"),
    (["formulas", "lenet", "--input-shape", "1,3,28,28"], "does not accept input shape 1,3,28,28"),
    (["run", "--tools", "nosuchtool", "--models", "lenet"], "unknown tool 'nosuchtool'"),
    (["run", "--models", "nosuchnet"], "unknown model 'nosuchnet'"),
])
def test_bad_input_is_one_line_and_status_2(cli, args, fragment, tmp_path):
    result = cli(*args, "--out", str(tmp_path / "out")) if args[0] == "run" else cli(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize("body, fragment", [
    ("def other():\n    pass\n", "has no callable 'net'"),
    ("def net():\n    raise RuntimeError('boom')\n", "raised RuntimeError: boom"),
    ("def net():\n    return 42\n", "not a torch nn.Module"),
    ("def net(:\n", "importing"),  # a syntax error, found without running the file
    ("this is not python\ndef net():\n    pass\n", "importing"),  # parses; fails when imported (in a child)
])
def test_bad_model_file(cli, tmp_path, body, fragment):
    path = tmp_path / "m.py"
    path.write_text(body)
    result = cli("formulas", "--model-file", f"{path}:net", "--input-shape", "1,3,8,8")
    assert result.returncode == 2
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_malformed_prototxt(cli, tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\ninput: "data"\nlayer {\n  name: "conv1"\n')
    result = cli("formulas", str(path))
    assert result.returncode == 2
    assert "bad.prototxt" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow  # seconds: left out of make test-fast, run by make test
def test_console_entry_point_end_to_end(tmp_path):
    """The tests above call reconcile.cli.main in-process; this one runs `python -m reconcile` as a user does:
    the exact CSV on stdout, and a bad name as one line on stderr with status 2 and nothing written."""
    from conftest import run_cli

    result = run_cli("formulas", "lenet", "--format", "csv")
    assert result.returncode == 0 and result.stdout == LENET_CSV, result.stderr
    bad = run_cli("run", "--tools", "nosuchtool", "--models", "lenet", "--out", str(tmp_path / "out"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown tool 'nosuchtool'" in bad.stderr
    assert not (tmp_path / "out").exists()
