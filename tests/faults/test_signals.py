"""SIGTERM or SIGKILL of a parent `reconcile run` leaves no process behind: its workers, the job they run and
what the job's forward spawned all go (workers hold no copy of the parent's pipe ends, get a signal
when the parent dies, and kill their job's process group)."""
import signal
import subprocess
import sys
import time

import pytest

import procs
from zoo_models import spawned_pids, write_model



def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.system  # a parent killed with its job processes running (make test-all)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_parent_leaves_no_process(tmp_path, sig):
    # the forward spawns a sleeper, then hangs: parent -> torch worker -> IR job -> sleeper, all in one session
    path = write_model(tmp_path, "spawns_then_hangs")
    parent = subprocess.Popen([sys.executable, "-m", "reconcile", "run", "--model-file", f"{path}:net",
                               "--input-shape", "1,1,8,8", "--tools", "thop,torchstat", "--timeout", "600",
                               "--out", str(tmp_path / "out"), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: spawned_pids(tmp_path), 60), "the forward never ran"
        assert len(procs.in_session(parent.pid)) >= 4  # parent, worker, job, sleeper
        parent.send_signal(sig)
        parent.wait(60)
        # the bound only ends a failing test (processes left for good): no claim on how fast they go
        assert wait_for(lambda: procs.in_session(parent.pid) == [], 60), procs.in_session(parent.pid)
        assert not [p for p in spawned_pids(tmp_path) if procs.alive(p)]
    finally:
        for pid in procs.in_session(parent.pid):  # never leave them to the next test
            try:
                import os
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
