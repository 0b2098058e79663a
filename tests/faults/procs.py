"""Which processes are still alive: by session (a subprocess started with start_new_session=True), by pid."""
import os
from pathlib import Path

try:
    import psutil
except ImportError:  # /proc scanning below
    psutil = None


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    if psutil is not None:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def in_session(sid: int) -> list[int]:
    """Live processes of session `sid` (workers and jobs change process group, never session)."""
    if psutil is None:
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[3]) == sid and fields[0] != "Z":
                    out.append(int(entry.name))
        return out
    out = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return out


def descendants() -> list[int]:
    """Live descendants of this process, apart from the session's background default run (tests/conftest.py
    starts it with its own process tree, which these tests do not own)."""
    if psutil is None:
        return []
    from conftest import _DEFAULT_RUN

    background = _DEFAULT_RUN.get("process")
    theirs = set()
    if background is not None and background.poll() is None:
        try:
            root = psutil.Process(background.pid)
            theirs = {root.pid} | {p.pid for p in root.children(recursive=True)}
        except psutil.Error:
            pass
    return [p.pid for p in psutil.Process().children(recursive=True) if alive(p.pid) and p.pid not in theirs]
