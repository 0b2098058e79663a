"""Benchmark: the same sweep on the builtin engine and on a local Ray cluster (reconcile/engines).

The sweep is the atlas's (reconcile/atlas.py: its CORE_MODELS x every counter x the releases it sweeps, 348 jobs;
release installs happen before the clock starts). Each engine gets a fresh store and a fresh cache folder (the
layer IRs the first job of a model keeps there would otherwise favour the engine that runs second). Measured:
  - each engine's sweep wall time and throughput (jobs/s), from the first job submitted to the last result written
    (worker start-up and imports included on both); the Ray cluster's own start-up apart;
  - the ratio Ray / builtin (target >= 0.8 on a 2-core machine);
  - the two stores' CSV exports, compared byte for byte (target: identical);
  - the per-job scheduling overhead: N jobs that do nothing on each engine (wall x workers / N), and on the real
    sweep, wall x workers / jobs minus the mean job time measured inside the workers.
Run: python bench/bench_engines.py [--models a,b] [--venv-only] (prints the figures, exits 1 if a target is
missed; skips with a note when Ray is not installed).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_RATIO = 0.8
NOOP_JOBS = 200


def noop(job):
    return job


def _sweep(name: str, jobs, failed, scratch: Path) -> dict:
    from reconcile import atlas, engines, store

    os.environ["RECONCILE_CACHE_DIR"] = str(scratch / f"cache-{name}")  # before the workers start
    started = time.monotonic()
    engine = engines.make(name)
    ready = time.monotonic()
    described = engine.describe()
    try:
        t0 = time.monotonic()
        summary = atlas.sweep(jobs, scratch / name, engine, failed)
        wall = time.monotonic() - t0
        t1 = time.monotonic()
        list(engine.results(noop, [(str(i), i) for i in range(NOOP_JOBS)]))
        noop_wall = time.monotonic() - t1
    finally:
        engine.close()
    job_wall = store.query(scratch / name, "SELECT sum(wall_s) AS s, count(*) AS n FROM jobs WHERE engine <> ''")
    export = store.export_csv(scratch / name)
    print(f"{name}: {summary.ran} jobs in {wall:.1f} s", flush=True)
    return {"engine": described, "workers": engine.workers, "start_s": ready - started, "wall_s": wall,
            "ran": summary.ran, "rate": summary.ran / wall, "noop_s": noop_wall,
            "job_s": float(job_wall.s.item() or 0.0), "export": export}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=None)
    parser.add_argument("--venv-only", action="store_true")
    args = parser.parse_args()
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("duckdb") is None:
        print("engines: skipped, Ray/DuckDB not installed (pip install -c constraints.txt '.[cluster]')")
        return 0
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local cluster for this process only
    os.environ.pop("RAY_ADDRESS", None)
    from reconcile import atlas
    from reconcile.jobs import memory_cap

    scratch = Path(tempfile.mkdtemp(prefix="reconcile-bench-engines-"))
    try:
        specs = atlas.resolve_models(args.models.split(",") if args.models else list(atlas.CORE_MODELS))
        plan = atlas.plan(specs, atlas.tool_list(), {} if args.venv_only else dict(atlas.RELEASES), 120.0,
                          memory_cap())
        jobs = len(plan.jobs)
        results = {name: _sweep(name, plan.jobs, plan.failed, scratch) for name in ("builtin", "ray")}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for r in results.values():
        per_job_ms = 1000 * (r["wall_s"] * r["workers"] - r["job_s"]) / max(r["ran"], 1)
        noop_ms = 1000 * r["noop_s"] * r["workers"] / NOOP_JOBS
        print(f"{r['engine']}: {r['ran']} jobs in {r['wall_s']:.1f} s = {r['rate']:.2f} jobs/s "
              f"(start-up {r['start_s']:.1f} s apart); scheduling overhead {noop_ms:.1f} ms "
              f"per no-op job ({NOOP_JOBS} in {r['noop_s']:.2f} s), {per_job_ms:.0f} ms per sweep job outside the job")
    ratio = results["ray"]["rate"] / results["builtin"]["rate"]
    same = results["ray"]["export"] == results["builtin"]["export"]
    digest = hashlib.sha256(results["builtin"]["export"].encode()).hexdigest()[:16]
    rows = results["builtin"]["export"].count("\n") - 1
    print(f"sweep of {jobs} jobs ({len(plan.failed)} more that could not install): CSV exports "
          f"{'byte-identical' if same else 'DIFFERENT'} ({rows} rows, sha256 {digest})" + ("" if same else "  MISSED"))
    missed = ratio < TARGET_RATIO
    print(f"throughput ray / builtin: {ratio:.2f} (target >= {TARGET_RATIO})" + ("  MISSED" if missed else ""))
    return int(missed or not same)


if __name__ == "__main__":
    sys.exit(main())
