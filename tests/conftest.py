import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The real console entry point, in a fresh process (as a user runs it)."""
    return subprocess.run([sys.executable, "-m", "reconcile", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def cli():
    return run_cli
