"""Benchmark: how much of `reconcile run --models lenet --tools thop` is spent outside the tool job.

Outside the job = the time from the job's progress line ("[1/1] thop on lenet  ok  3.6 s") to the end of the
command: explaining the numbers and writing the report (start-up, the worker's framework import and the job
itself come before that line). The target is under 10% of the wall time (issue 14: the report used to spend over
half the run rebuilding a section unrelated to the model, with no progress output).
Run: python bench/bench_overhead.py (prints the split, exits 1 if the target is missed).
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_PERCENT = 10.0


def measure() -> dict[str, float]:
    out = tempfile.mkdtemp(prefix="reconcile-bench-")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "reconcile", "run", "--models", "lenet", "--tools", "thop",
                             "--fresh", "--out", out], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines, job_done = [], None
    for line in proc.stderr:  # timestamps as the lines arrive
        lines.append(line.rstrip("\n"))
        if line.startswith("[1/1] "):
            job_done = time.monotonic()
    if proc.wait() != 0 or job_done is None:
        raise SystemExit("reconcile run failed: " + "\n".join(lines[-5:]))
    wall = time.monotonic() - started
    log = "\n".join(lines)
    job = float(re.search(r"^\[1/1\] thop on lenet .* (\d+\.\d) s$", log, re.M).group(1))
    steps = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(explaining|writing report).*: (\d+\.\d) s$",
                                                                log, re.M)}
    return {"wall_s": wall, "job_s": job, "until_job_s": job_done - started, "after_job_s": wall - (job_done - started),
            "explain_s": steps.get("explaining", 0.0), "report_s": steps.get("writing report", 0.0),
            "outside_percent": 100 * (wall - (job_done - started)) / wall}


def main() -> int:
    m = measure()
    print(f"wall {m['wall_s']:.2f} s = {m['until_job_s']:.2f} s until the job's line (the job itself "
          f"{m['job_s']:.1f} s) + {m['after_job_s']:.2f} s after it (explain {m['explain_s']:.1f} s, report "
          f"{m['report_s']:.1f} s)")
    missed = m["outside_percent"] >= TARGET_PERCENT
    print(f"outside the tool job: {m['outside_percent']:.1f}% (target < {TARGET_PERCENT:g}%)"
          + ("  MISSED" if missed else ""))
    return int(missed)


if __name__ == "__main__":
    sys.exit(main())
