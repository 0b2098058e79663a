"""Training compute (issue 23): timing target and the measured table.

    python bench/bench_training.py time    # `reconcile formulas preset:gpt3-175b --training`: wall time and peak
                                           # RSS (targets: < 60 s, < 2 GiB; the model is traced on the meta device)
    python bench/bench_training.py table [--no-counters]
                                           # GPT-2 small, BERT-base, Llama-7B (seq 128, meta), ResNet-50: measured
                                           # training FLOPs per token/sample, ratio to forward, every convention's
                                           # distance, every training-FLOPs counter explained; writes
                                           # reports/training/{training.md, training.csv, training_summary.csv}
"""
from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_time() -> int:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "reconcile", "formulas", "preset:gpt3-175b", "--training"],
                            cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    if result.returncode != 0:
        print(result.stderr.strip()[-500:])
        return 1
    print(f"formulas preset:gpt3-175b --training: {seconds:.1f} s (target 60), peak RSS {peak_gib:.2f} GiB "
          "(target 2)")
    return 0 if seconds < 60 and peak_gib < 2 else 1


def bench_table(with_counters: bool) -> int:
    from reconcile import training_report

    started = time.monotonic()
    rows, detail = training_report.measure_table(
        with_counters=with_counters, progress=lambda text: print(f"[{time.monotonic() - started:5.0f} s] {text}",
                                                                 file=sys.stderr))
    paths = training_report.write_tables(ROOT.joinpath(*training_report.TABLE_DIR), rows, detail)
    print(training_report.table_markdown(rows, detail))
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in paths), file=sys.stderr)
    return 0


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "time"
    if what == "time":
        sys.exit(bench_time())
    sys.exit(bench_table("--no-counters" not in sys.argv))
