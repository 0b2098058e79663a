"""Benchmark: a newcomer's session of `reconcile which` on six well-known published numbers (issue 22).

Each number is asked as a new user asks it: `python -m reconcile which MODEL VALUE` in a fresh process, from a
folder of its own (no reports/records.csv to fall back on) and an empty cache (RECONCILE_CACHE_DIR set to a new
temporary folder per number). Measured:
  - the default answer, from the conventions (no counting tool runs): its wall time (target < 5 s) and its first
    line (it must name the family the paper's convention is in);
  - the same number with the tools confirming (`--confirm`: the tools whose catalogued convention can land in the
    candidate families, run in parallel; the measured training step for training compute), from another empty
    cache: its wall time (no target) and its first line.

    python bench/bench_newcomer.py               # the table; exits 1 when a default answer misses 5 s or its line
    python bench/bench_newcomer.py --no-confirm  # the default answers only
    python bench/bench_newcomer.py --before      # the default command of a checkout without --confirm (tools run
                                                 # on the first call): ROOT=/path/to/checkout
The machine's load is printed with the table: timings are only comparable at a similar load.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 5.0

# (what, model, value, extra arguments, the start of the right first line after "MODEL VALUE: ")
CASES = [
    ("CNN: ResNet-50 (v1.5) 4.1 GFLOPs", "resnet50_v15", "4.1 GFLOPs", [],
     "multiply-accumulates of conv+FC layers"),
    ("ViT-B/16 17.6 GFLOPs (torchvision)", "preset:vit-b-16", "17.6 GFLOPs", [],
     "multiply-accumulates of conv+FC layers and the attention matmuls"),
    ("BERT-base 110M parameters", "preset:bert-base", "Total Parameters=110M", [], "all parameters"),
    ("GPT-3 175B training compute 3.14e23", "preset:gpt3-175b", "3.14e23 FLOPs", ["--tokens", "300e9"],
     "6ND, N = all parameters"),
    ("Llama-2 7B parameters", "preset:llama2-7b", "7B params", [], "all parameters"),
    ("MobileNetV2 300M Mult-Adds", "mobilenet_v2", "300M MAdds", [], "multiply-accumulates of conv+FC layers"),
]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ask(python: str, code_root: Path, model: str, value: str, extra: list[str],
        confirm: bool) -> tuple[float, float, str, str]:
    """One `which` from an empty cache, in a folder of its own: (wall seconds, CPU seconds of the command and the
    job processes it waited for, first line of stdout, error). On a busy machine the wall time grows; the CPU time
    is what the command costs (about its wall time on an idle machine, where its processes run one after another).
    A worker the command leaves to die with it (the tracer of a reference model, the tool workers) is not
    waited for, so its CPU is not counted."""
    work = Path(tempfile.mkdtemp(prefix="reconcile-newcomer-"))
    env = dict(os.environ, RECONCILE_CACHE_DIR=str(work / "cache"), PYTHONPATH=str(code_root))
    args = [python, "-m", "reconcile", "which", model, value, *extra] + (["--confirm"] if confirm else [])
    try:
        cpu = _cpu()
        started = time.monotonic()
        result = subprocess.run(args, cwd=work, capture_output=True, text=True, env=env)
        seconds, cpu = time.monotonic() - started, _cpu() - cpu
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = (result.stdout.splitlines() or [""])[0]
    error = "" if result.returncode == 0 else \
        (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
    return seconds, cpu, first, error


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-confirm", action="store_true", help="the default answers only")
    parser.add_argument("--before", metavar="ROOT", help="time the default command of another checkout (its "
                                                         "tools run on the first call; no --confirm)")
    options = parser.parse_args()
    code_root = Path(options.before).resolve() if options.before else ROOT
    print(f"start: {load()}; code {code_root}", flush=True)
    rows, missed = [], 0
    for what, model, value, extra, expected in CASES:
        seconds, cpu, first, error = ask(sys.executable, code_root, model, value, extra, confirm=False)
        right = first.startswith(f"{model} {value}: {expected}")
        late = seconds >= TARGET_S and not options.before
        missed += (late or not right) and not options.before
        row = [what, f"{seconds:6.1f} s" + (" MISSED" if late else ""), f"{cpu:5.1f} s", "right" if right else "WRONG"]
        if not (options.no_confirm or options.before):
            c_seconds, c_cpu, c_first, c_error = ask(sys.executable, code_root, model, value, extra, confirm=True)
            row += [f"{c_seconds:6.1f} s", f"{c_cpu:5.1f} s",
                    "right" if c_first.startswith(f"{model} {value}: {expected}") else "WRONG"]
            error = error or c_error
        rows.append(row)
        print(f"  {model} {value}: {first[:150]}" + (f" [error: {error}]" if error else ""), flush=True)
    print(f"end: {load()}")
    header = ["number", f"default (target {TARGET_S:g} s)", "CPU", "first line"]
    if not (options.no_confirm or options.before):
        header += ["--confirm", "CPU", "first line"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("CPU: the command and the job processes it waited for; the workers that die with it (a reference model's "
          "tracer, the tool workers) are not counted")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
