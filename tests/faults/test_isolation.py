"""Nothing of the user's runs in the reconcile process, and nothing unbounded either: a package __init__ that
hangs, an hf: configuration that builds for minutes, a FIFO or a /dev/zero link in the working directory, a
forward that allocates far beyond the memory cap. Each is one line and exit 2, or an error row saying what
happened, within its bounds."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, invoke_cli
from reconcile import api, identity, models
from reconcile.errors import UserError


def one_line(result, says):
    err = result.stderr
    assert result.returncode == 2 and says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.fixture
def hanging_package(tmp_path, monkeypatch):
    """pkg/__init__.py sleeps for 10 minutes when imported; pkg/nets.py defines a factory."""
    pkg = tmp_path / "hangpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(f"import time\nopen({str(tmp_path / 'imported')!r}, 'w').close()\n"
                                     "time.sleep(600)\n")
    (pkg / "nets.py").write_text("import torch.nn as nn\n\ndef net():\n    return nn.Conv2d(1, 2, 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_module_spec_is_located_without_running_its_package(hanging_package):
    """Before: module:pkg.mod:f imported pkg/__init__.py in the reconcile process (a sleeping one hung the run
    past --timeout)."""
    spec = models.resolve("module:hangpkg.nets:net?input_shape=1,1,8,8")
    assert "hangpkg" not in sys.modules and not (hanging_package / "imported").exists()
    assert identity.source_files(spec) == [hanging_package / "hangpkg" / "nets.py"]
    with pytest.raises(UserError, match="has no callable 'other'"):  # read from the source, not imported
        models.resolve("module:hangpkg.nets:other?input_shape=1,1,8,8")
    with pytest.raises(UserError, match="no installed module 'hangpkg.nosuch'"):
        models.resolve("module:hangpkg.nosuch:net?input_shape=1,1,8,8")


@pytest.mark.system  # one trace timeout
def test_a_hanging_package_init_is_a_timeout_row(hanging_package):
    df = api.run(models="module:hangpkg.nets:net?input_shape=1,1,8,8", tools="thop", timeout=3)
    (message,) = df.message
    assert message.startswith("not run:") and "tracing timed out after 3 s" in message, message
    assert "hangpkg" not in sys.modules


def test_hf_counts_below_zero_are_refused():
    one_line(invoke_cli("formulas", "hf:gpt2?n_layer=-1"), "n_layer must be 0 or more")


@pytest.mark.system  # transformers in a job, then the timeout
def test_a_huge_hf_config_is_bounded_by_the_timeout():
    """Before: hf:gpt2?num_hidden_layers=100000 built its size probe in the parent for 285 s and 3.9 GiB."""
    result = invoke_cli("formulas", "hf:gpt2?num_hidden_layers=100000", "--timeout", "4")
    one_line(result, "timed out after 4 s (--timeout); killed")


@pytest.mark.system  # a fresh process in a hostile working directory
def test_fifo_and_dev_zero_in_the_working_directory_are_never_read(tmp_path):
    """Before: for a built-in module every *.py of the working directory was hashed in the parent (a FIFO hung
    it, a link to /dev/zero ended in MemoryError)."""
    work = tmp_path / "work"
    work.mkdir()
    os.mkfifo(work / "fifo.py")
    (work / "zero.py").symlink_to("/dev/zero")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RECONCILE_CACHE_DIR": str(tmp_path / "cache")}
    for args, says in ((["run", "--models", "module:math:sqrt?input_shape=1,1", "--tools", "thop", "--out",
                         str(tmp_path / "out"), "--timeout", "30", "--quiet"], None),
                       (["formulas", "fifo.py:net?input_shape=1,1"], "no such file fifo.py"),
                       (["formulas", "--model-file", "zero.py:net", "--input-shape", "1,1"], "no such file zero.py")):
        proc = subprocess.run([sys.executable, "-m", "reconcile", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        assert "Traceback" not in proc.stderr, proc.stderr
        if says:
            assert proc.returncode == 2 and says in proc.stderr, proc.stderr
        else:  # math.sqrt() called with no argument: the factory raised, in its job
            assert proc.returncode == 1 and "no job produced a number" in proc.stderr, proc.stderr
            assert "factory 'sqrt' raised TypeError" in (tmp_path / "out" / "records.csv").read_text()
    assert sorted(p.name for p in work.iterdir()) == ["fifo.py", "zero.py"]


HOG = '''import torch
import torch.nn as nn


class Hog(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        if {where}:
            torch.ones(2 ** 33)  # 32 GiB of float32, far beyond a 2 GiB cap
        return self.conv(x)


def net():
    return Hog()
'''


FIRST_PROCESS = '''

def first_process(path):
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    except FileExistsError:
        pass
    return int(open(path).read())
'''


@pytest.mark.system  # a trace and tool jobs under a 2 GiB cap
def test_a_forward_beyond_the_memory_cap_is_an_error_row_with_the_size(tmp_path):
    """Before: a forward allocating 30 GiB reached 14.8 GB RSS under a ulimit and was reported as 'timed out';
    out of memory was reported as 'does not accept input shape'."""
    always = tmp_path / "hog.py"
    always.write_text(HOG.format(where="True"))
    # only in a process other than the first that ran the forward (the IR job): the tool jobs allocate
    tools_only = tmp_path / "hog_tools.py"
    tools_only.write_text(HOG.format(where=f"first_process({str(tmp_path / 'traced')!r}) != os.getpid()")
                          .replace("import torch\n", "import os\nimport torch\n", 1) + FIRST_PROCESS)
    df = api.run(model_file=f"{always}:net", input_shape="1,1,8,8", tools="thop", memory="2G", timeout=60)
    (message,) = df.message
    assert "ran out of memory" in message and "may use 2.0 GiB (--memory)" in message and "it reached" in message, \
        message
    assert "timed out" not in message and "does not accept input shape" not in message
    df = api.run(model_file=f"{tools_only}:net", input_shape="1,1,8,8", tools="thop,document", memory="2G",
                 timeout=60)
    thop = df[df.tool == "thop"].message.item()
    assert thop.startswith("ran out of memory: the job may use 2.0 GiB (--memory)") and "asked for 32.0 GiB" in thop
    flops = df[(df.tool == "document") & (df.layer == "__total__") & (df.metric == "flops")].value.item()
    assert flops == 2 * 2 * 9 * 36 + 2 * 36  # the document still counts it: 2 x 648 MACC + 72 bias adds


def test_memory_caps_are_parsed_at_the_edge():
    for value in ("0", "1e400", "-3G", "lots", "200%", "100M", "0.1G"):
        one_line(invoke_cli("formulas", "lenet", "--memory", value), "--memory must be a size")
    with pytest.raises(UserError, match="memory must be a size"):
        api.run(models="lenet", tools="thop", memory="huge")
