"""Benchmark: the everyday commands against their targets, and the default run against its floor, in one sitting.

The floor: what the default suite costs with no harness at all, every framework and tool imported once and every
(tool, model) job run in-process, one process for the torch side (torch, pure-Python and Caffe jobs) and one for
the TF side, run concurrently as the runner runs its two workers; the floor is the slower of the two. Each
measured command runs as a user runs it (`python -m reconcile ...`, a fresh process) with a result cache of the
bench's own (an empty temporary folder: "cold" is really cold, "warm" reuses what the cold run stored).

Targets (issue 16, 2-core machines): default `reconcile run` cold <= 1.5x the floor; the same warm < 5 s;
`run --models lenet --tools thop` (--fresh: the tool runs) < 3 s; `formulas lenet` < 2 s; `make test` < 120 s;
`make test-fast` < 30 s; the slowest prototxt fuzz case < 5 s (the tests assert what happens, never how long it
takes: the timings live here); peak RSS of any process of the default run < 3 GiB. `formulas resnet50_v1` and the
175B-parameter transformer (`preset:gpt3-175b`, if that spec resolves) are printed without a target.
Run: make bench [ARGS="--no-tests" | ARGS="--tests-only"] (prints a table, exits 1 when a target is missed). The
machine's load is printed with it: the other measures are only comparable at a similar load.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECONCILE = [sys.executable, "-m", "reconcile"]
GIB = 2 ** 30


def floor_side(side: str) -> None:
    """In this process: import the side's framework and tools once, run its jobs of the default suite in-process,
    print {"seconds", "imports", "jobs"} as JSON."""
    started = time.monotonic()
    from reconcile import adapters, api, runner

    jobs = [job for job in api.plan() if runner.precheck(job) is None
            and (adapters.get(job.tool).WORKER == "tf") == (side == "tf")]
    runner._warm("tf" if side == "tf" else "torch", frozenset(job.tool for job in jobs))
    imported = time.monotonic()
    if side == "torch":
        import torch

        torch.set_num_threads(1)  # as the runner's jobs run (reconcile/runner.py `_single_threaded`)
    for job in jobs:
        runner.execute(job)
    print(json.dumps({"seconds": time.monotonic() - started, "imports": imported - started, "jobs": len(jobs)}))


def floor(env: dict) -> tuple[float, str]:
    """Both sides concurrently, as two processes; the floor is the slower one."""
    started = time.monotonic()
    sides = {side: subprocess.Popen([sys.executable, __file__, "--floor-side", side], cwd=ROOT, text=True, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for side in ("torch", "tf")}
    results = {}
    for side, process in sides.items():
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"the floor's {side} side failed (exit {process.returncode})")
        results[side] = json.loads(out.strip().splitlines()[-1])
    wall = time.monotonic() - started
    detail = ", ".join(f"{side} {r['imports']:.1f} s imports + {r['seconds'] - r['imports']:.1f} s for {r['jobs']} jobs"
                       for side, r in results.items())
    return max(r["seconds"] for r in results.values()), f"{detail}; both sides together {wall:.1f} s wall"


def fuzz_side() -> None:
    """In this process: every case of the prototxt fuzzer (tests/faults/test_prototxt_fuzz.py `corpus`) through
    `reconcile formulas`, as the test runs them; print {"slowest", "case", "total", "cases"} as JSON. The test
    asserts what each case prints; the seconds are measured here, where a busy machine is a reading, not a
    failure."""
    import contextlib
    import io

    sys.path.insert(0, str(ROOT / "tests" / "faults"))
    from test_prototxt_fuzz import corpus

    from reconcile.cli import main as reconcile_main

    folder = Path(tempfile.mkdtemp(prefix="reconcile-fuzz-"))
    times = []
    for case, path in corpus(folder):
        started = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                reconcile_main(["formulas", str(path), "--format", "csv"])
            except SystemExit:
                pass
        times.append((time.monotonic() - started, case))
    shutil.rmtree(folder, ignore_errors=True)
    slowest = max(times)
    print(json.dumps({"slowest": slowest[0], "case": slowest[1], "total": sum(t for t, _ in times),
                      "cases": len(times)}))


def timed(args: list[str], env: dict, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr.strip()[-500:]}")
    return seconds, result


def children_cpu_s() -> float:
    """User + system seconds of this process's finished children (and theirs, as each waited for them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def test_suite(env: dict) -> tuple[list, list[str]]:
    """`make test-fast` (< 30 s), `make test` (< 120 s) and the prototxt fuzzer's slowest case (< 5 s): the
    timings no test asserts."""
    # PYTHONDONTWRITEBYTECODE (set by some sandboxes and editors, not by Python) would make every run recompile the
    # package and re-rewrite the tests' assertions: timed as a developer's machine runs them, with bytecode caches
    test_env = {k: v for k, v in env.items() if k not in ("RECONCILE_CACHE_DIR", "PYTHONDONTWRITEBYTECODE")}
    # `make bench` has brought the install up to date; -o keeps the nested make from re-checking it
    make = ["make", "--no-print-directory", "-o", ".venv/.installed"]
    rows, notes = [], []
    runs = []
    for target, limit_s in (("test-fast", 30.0), ("test", 120.0)):
        name = f"make {target}"
        cpu_before, load_before = children_cpu_s(), os.getloadavg()[0]
        wall_s, result = timed(make + [target], test_env, check=False)
        rows.append((name, wall_s, limit_s, False))
        runs.append((name, result, children_cpu_s() - cpu_before, load_before))
    for name, result, cpu_s, load_before in runs:
        if result.returncode != 0:
            notes.append(f"{name} FAILED: {result.stdout.strip().splitlines()[-1:]}")
            # pytest's short summary names each failing test: a failure seen only here must be findable
            notes.extend(f"  {line}" for line in result.stdout.splitlines() if line.startswith(("FAILED ", "ERROR ")))
        else:
            notes.append(f"{name}: {(result.stdout.strip().splitlines() or [''])[-1]}")
        # CPU seconds of all its processes: on a busy machine the wall time grows, this much less
        notes.append(f"{name}: {cpu_s:.1f} s CPU (user + system, its processes); 1-min load {load_before:.2f} "
                     "when it started")
    _, fuzz_run = timed([sys.executable, __file__, "--fuzz-side"], test_env)
    fuzz = json.loads(fuzz_run.stdout.strip().splitlines()[-1])
    rows.append((f"prototxt fuzz, slowest of {fuzz['cases']} cases", fuzz["slowest"], 5.0, False))
    notes.append(f"prototxt fuzz: case {fuzz['case']} slowest; all {fuzz['cases']} cases {fuzz['total']:.1f} s")
    return rows, notes


def tests_only() -> int:
    """make bench ARGS=--tests-only: the test suite's timings alone (no floor, no run)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    print(f"start: {load()}", flush=True)
    rows, notes = test_suite(env)
    print(f"end: {load()}")
    missed = 0
    for name, value, target, _ in rows:
        flag = "  MISSED" if value >= target else ""
        missed += bool(flag)
        print(f"{name:<46} {value:>7.2f} s {target:>7.2f} s{flag}")
    for note in notes:
        print(note)
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor-side", choices=("torch", "tf"), help=argparse.SUPPRESS)
    parser.add_argument("--fuzz-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-tests", action="store_true", help="skip `make test` and `make test-fast`")
    parser.add_argument("--tests-only", action="store_true",
                        help="only `make test-fast`, `make test` and the prototxt fuzzer's slowest case")
    options = parser.parse_args()
    if options.floor_side:
        floor_side(options.floor_side)
        return 0
    if options.fuzz_side:
        fuzz_side()
        return 0
    if options.tests_only:
        return tests_only()

    out = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    env = dict(os.environ, RECONCILE_CACHE_DIR=str(out / "cache"), PYTHONPATH=str(ROOT))
    rows: list[tuple[str, float, "float | None", bool]] = []  # (measure, value, target, value is a ratio to floor)
    print(f"start: {load()}", flush=True)

    cold, cold_run = timed(RECONCILE + ["run", "--fresh", "--out", str(out / "cold")], env)
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB  # so far: the cold run's tree
    floor_s, floor_detail = floor(env)
    warm, _ = timed(RECONCILE + ["run", "--quiet", "--out", str(out / "warm")], env)
    same = all((out / "cold" / f).read_bytes() == (out / "warm" / f).read_bytes()
               for f in ("records.csv", "explanations.csv", "report.md", "report.html"))
    one, _ = timed(RECONCILE + ["run", "--models", "lenet", "--tools", "thop", "--fresh", "--quiet",
                                "--out", str(out / "one")], env)
    formulas_lenet, _ = timed(RECONCILE + ["formulas", "lenet"], env)
    formulas_r50, _ = timed(RECONCILE + ["formulas", "resnet50_v1"], env)
    big, big_run = timed(RECONCILE + ["formulas", "preset:gpt3-175b"], env, check=False)

    rows += [("floor (default suite in-process)", floor_s, None, False),
             ("run, default suite, cold (--fresh)", cold, 1.5 * floor_s, False),
             ("  ratio to the floor", cold / floor_s, 1.5, True),
             ("run, default suite, warm (cache hit)", warm, 5.0, False),
             ("run --models lenet --tools thop --fresh", one, 3.0, False),
             ("formulas lenet", formulas_lenet, 2.0, False),
             ("formulas resnet50_v1", formulas_r50, None, False)]
    notes = [f"floor: {floor_detail}", f"warm outputs byte-identical to cold: {same}"]
    if big_run.returncode == 0:
        rows.append(("formulas preset:gpt3-175b", big, None, False))
    else:
        notes.append("formulas preset:gpt3-175b skipped: the spec does not resolve here "
                     f"({(big_run.stderr.strip().splitlines() or ['no message'])[-1]})")
    if not options.no_tests:
        test_rows, test_notes = test_suite(env)
        rows += test_rows
        notes += test_notes
    rows.append(("peak RSS of a process of the cold run (GiB)", peak_gib, 3.0, True))

    missed = 0 if same else 1
    print(f"end: {load()}")
    print(f"{'measure':<46} {'value':>9} {'target':>9} {'x floor':>8}")
    for name, value, target, unitless in rows:
        flag = "" if target is None or value < target or (name.startswith("  ratio") and value <= target) \
            else "  MISSED"
        missed += bool(flag)
        ratio = "" if unitless else f"{value / floor_s:8.2f}"
        unit = "" if unitless else " s"
        shown_target = "-" if target is None else f"{target:.2f}{unit}"
        print(f"{name:<46} {value:>7.2f}{unit or '  '} {shown_target:>9} {ratio:>8}{flag}")
    for note in notes:
        print(note)
    job_lines = [line for line in cold_run.stderr.splitlines() if line.startswith("[") and line.endswith(" s")]
    slowest = sorted(job_lines, key=lambda line: -float(line.rsplit(None, 2)[-2]))[:5]
    print("slowest jobs of the cold run:\n  " + "\n  ".join(slowest))
    shutil.rmtree(out, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
