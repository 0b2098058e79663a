"""TensorFlow is not fork-safe once imported: a caller that imported it before running tf_profiler (an API user's
script, a test module that builds Keras twins) gets its TF worker started afresh (reconcile/runner.py _Worker)
instead of forked, whose first session would hang until the job's timeout."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# LeNet as the TF profiler counts it (frozen graph; docs/document.md): 2 FLOPs per multiply-accumulate, the conv and
# FC bias adds, and the pooling windows (2x2 max pooling: one op per input element).
LENET_MACC = 20 * 24 * 24 * 25 + 50 * 8 * 8 * 500 + 800 * 500 + 500 * 10
TF_FLOPS = 2 * LENET_MACC + (20 * 24 * 24 + 50 * 8 * 8) + (500 + 10) + (20 * 24 * 24 + 50 * 8 * 8)

SCRIPT = f"""
import tensorflow  # the caller's own import and use, before any job
tensorflow.reduce_sum(tensorflow.ones((4, 4)))
from reconcile.api import run
records = run(models="lenet", tools="tf_profiler", timeout=240, fresh=True)
total = records[(records.layer == "__total__") & (records.metric == "float_ops")]
print(int(total.value.iloc[0]) if len(total) else records[["layer", "status", "message"]].head().to_string())
"""


@pytest.mark.system  # TensorFlow in two processes; before the fix, a job hung until its timeout
def test_tf_profiler_runs_after_the_caller_imported_tensorflow(tmp_path):
    pytest.importorskip("tensorflow")
    env = {"RECONCILE_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(TF_FLOPS) == "4615950"
