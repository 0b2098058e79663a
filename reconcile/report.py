"""Write a run's outputs: records.csv now; explanations and reports once the diff engine lands."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .api import to_csv, write_atomic


def write_outputs(records: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    paths = {name: out_dir / name for name in ("records.csv", "explanations.csv", "report.md", "report.html")}
    write_atomic(paths["records.csv"], to_csv(records))
    return paths
