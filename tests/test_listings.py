"""`reconcile --version`, `reconcile tools` and `reconcile models`: thin listings over reconcile.api."""
from __future__ import annotations

import csv
import io
import json
import re

import reference_models


def test_version(cli):
    result = cli("--version")
    assert result.returncode == 0 and re.fullmatch(r"reconcile \d+\.\d+\.\d+\n", result.stdout)


def test_tools_lists_installed_and_pinned_versions(cli):
    from pathlib import Path

    result = cli("tools", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = {r["tool"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    from reconcile import adapters

    assert list(rows) == list(adapters.TOOLS)
    pins = Path(__file__).resolve().parent.parent / "constraints.txt"
    assert "thop==0.1.1.post2209072238" in pins.read_text()  # the pin the row must show
    assert rows["thop"]["pinned"] == "thop==0.1.1.post2209072238"
    assert rows["thop"]["installed"] == "0.1.1.post2209072238"
    assert rows["tf_profiler"]["pinned"].startswith("tensorflow-cpu==") and "Keras" in rows["tf_profiler"]["reads"]
    assert "prototxt" in rows["netscope"]["reads"]


def test_models_lists_what_each_pins_down(cli):
    result = cli("models", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert set(reference_models.MODELS) <= set(rows)
    assert rows["lenet"]["default_suite"] == "yes" and rows["vgg16"]["default_suite"] == "no"
    assert rows["lenet"]["forms"] == "torch,keras,caffe" and rows["lenet"]["input_shape"] == "1x1x28x28"
    assert "15,470,264,320" in rows["vgg16"]["pins_down"]
