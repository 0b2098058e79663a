"""Misbehaving user models for the fault tests: each FACTORY returns a tiny conv net whose factory or forward
raises, hangs, segfaults, exits, spawns a process, prints or allocates too much. `when` says where the fault
fires: "always", or "tool" (only in a process other than the first one that ran the forward: the IR job runs
first, so the fault hits the tool jobs and would hit a parent that re-ran the forward for its report)."""
import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

TEMPLATE = '''
import os, sys
sys.path.insert(0, {here!r})
from zoo_models import build
def net():
    return build({fault!r}, {when!r}, {scratch!r})
'''

FAULTS = ("raises", "hangs", "segfaults", "os_exit", "sys_exit", "spawns", "prints", "allocates")
# also "spawns_then_hangs": the signal tests' model


def write_model(folder: Path, fault: str, when: str = "always") -> Path:
    """A model file `zoo_<fault>[_tool].py` (the file name is the model's name) with a factory `net`."""
    path = folder / f"zoo_{fault}{'_tool' if when == 'tool' else ''}.py"
    path.write_text(TEMPLATE.format(here=str(Path(__file__).parent), fault=fault, when=when,
                                    scratch=str(folder / f"{path.stem}.scratch")))
    return path


def spawned_pids(folder: Path) -> list[int]:
    pids = []
    for path in folder.glob("*.scratch.pids"):
        pids += [int(line) for line in path.read_text().split()]
    return pids


def build(fault: str, when: str, scratch: str):
    import torch.nn as nn

    if fault == "raises":
        raise RuntimeError("boom from the factory")
    if fault == "prints":
        print("a factory that prints", flush=True)

    class Faulty(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            if self.fires():
                self.fault()
            return self.conv(x)

        def fires(self) -> bool:
            if when == "always":
                return True
            mark = Path(scratch + ".first")
            try:
                fd = os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                return False
            except FileExistsError:
                return mark.read_text() != str(os.getpid())

        def fault(self):
            if fault == "hangs":
                time.sleep(600)
            elif fault == "segfaults":
                ctypes.string_at(0)
            elif fault == "os_exit":
                os._exit(3)
            elif fault == "sys_exit":
                sys.exit(0)
            elif fault in ("spawns", "spawns_then_hangs"):  # would outlive its job if its group were not killed
                child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
                with open(scratch + ".pids", "a") as handle:
                    handle.write(f"{child.pid}\n")
                print("spawned", child.pid, flush=True)
                if fault == "spawns_then_hangs":
                    time.sleep(600)
            elif fault == "allocates":
                bytearray(1 << 50)  # 1 PiB

    return Faulty()
