"""Benchmark: wall time and peak memory of the everyday commands, with targets.

Targets (2 cores, 24 GiB): `reconcile formulas lenet` < 5 s; one tool on one model < 8 s (torch imported once;
it includes explaining and writing the whole report, whose "published numbers" section ranks the conventions of
every row of published.csv; measured 2026-11-27: 7.05 s = ~1.7 s run + ~1.2 s explain + ~2.4 s report + start-up);
each extra torch job adds < 1.5 s (it forks from a worker that already imported torch, so it must cost less
than an `import torch`); the default `reconcile run` < 10 min; peak RSS of any process < 4 GiB.
Run: make bench (prints a table, exits 1 if a target is missed).
"""
from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECONCILE = [sys.executable, "-m", "reconcile"]


def timed(args: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(RECONCILE + args, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr.strip()[-500:]}")
    return time.monotonic() - started, result.stderr


def main() -> int:
    out = tempfile.mkdtemp(prefix="reconcile-bench-")
    rows = []
    seconds, _ = timed(["formulas", "lenet"])
    rows.append(("formulas lenet", seconds, 5.0))
    one, _ = timed(["run", "--models", "lenet", "--tools", "thop", "--out", out, "--quiet"])
    rows.append(("run lenet x thop", one, 8.0))
    six, _ = timed(["run", "--models", "lenet,lenet_relu_module,sepnet,gconv,mha,block", "--tools", "thop",
                    "--out", out, "--quiet"])
    rows.append(("per extra torch job", (six - one) / 5, 1.5))
    full, log = timed(["run", "--out", out])
    rows.append(("run (default suite, all tools)", full, 600.0))
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    rows.append(("peak RSS of a child process (GiB)", peak_gib, 4.0))
    missed = 0
    print(f"{'measure':<36} {'value':>10} {'target':>10}")
    for name, value, target in rows:
        flag = "" if value < target else "  MISSED"
        missed += bool(flag)
        print(f"{name:<36} {value:>10.2f} {target:>10.2f}{flag}")
    slowest = sorted((line for line in log.splitlines() if line.startswith("[")),
                     key=lambda line: -float(line.rsplit(None, 2)[-2]))[:5]
    print("slowest jobs:\n  " + "\n  ".join(slowest))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
