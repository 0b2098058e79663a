"""The runner: isolation, timeouts, crashes and missing tools become rows; the rest of the run completes."""
import os
import sys
import time
import types

import pytest
import torch

from reconcile import adapters
from reconcile.api import run, to_csv
from reconcile.models import reference
from reconcile.runner import Job, run_jobs


def fake_adapter(name, count, unavailable=lambda: None):
    module = types.ModuleType(f"reconcile.adapters.{name}")
    module.TOOL, module.FRAMEWORK, module.WORKER = name, "torch", "torch"
    module.version = lambda: "0-test"
    module.unavailable = unavailable
    module.count = count
    return module


@pytest.fixture
def fake_tools(monkeypatch):
    def hang(spec, emit):
        time.sleep(600)

    def crash(spec, emit):
        raise RuntimeError("the tool fell over")

    def die(spec, emit):
        os._exit(3)

    def fine(spec, emit):
        return [emit.ok("__total__", "", "compute", "ops", 42)]

    tools = {"t_hang": fake_adapter("t_hang", hang), "t_crash": fake_adapter("t_crash", crash),
             "t_die": fake_adapter("t_die", die), "t_fine": fake_adapter("t_fine", fine),
             "t_missing": fake_adapter("t_missing", fine, lambda: "t_missing is not installed (pip install it)")}
    for name, module in tools.items():
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(adapters, "TOOLS", adapters.TOOLS + tuple(tools))
    return tools


@pytest.mark.system  # waits out a hung job's timeout (the system tier: hung and killed processes)
def test_failures_become_rows_and_the_run_completes(fake_tools):
    spec = reference("gconv")
    records = run_jobs([Job(t, spec) for t in ("t_hang", "t_crash", "t_die", "t_missing", "t_fine")], timeout=3)
    by_tool = {r.tool: r for r in records}  # the run returned: the hanging tool was killed at its timeout
    assert by_tool["t_hang"].status == "error" and "timed out after 3 s" in by_tool["t_hang"].message
    assert by_tool["t_crash"].status == "error" and "RuntimeError: the tool fell over" in by_tool["t_crash"].message
    assert by_tool["t_die"].status == "error" and "exit code 3" in by_tool["t_die"].message
    assert by_tool["t_missing"].status == "skipped" and "not installed" in by_tool["t_missing"].message
    assert by_tool["t_fine"].status == "ok" and by_tool["t_fine"].value == 42


@pytest.mark.slow
def test_torchstat_then_thop_equals_each_alone():
    together = run(models="lenet", tools="torchstat,thop", fresh=True)  # fresh: run them, not the result cache
    alone = run(models="lenet", tools="thop", fresh=True)
    thop_together = together[together.tool == "thop"].reset_index(drop=True)
    assert to_csv(thop_together) == to_csv(alone)
    # the parent's classes are untouched: torchstat's patches died with its job's process
    assert torch.nn.Conv2d.__call__ is torch.nn.Module.__call__
    assert torch.nn.Linear.__call__ is torch.nn.Module.__call__


def test_parent_that_used_torch_does_not_hang_the_jobs():
    # libgomp is not fork-safe: a child forked after the parent ran parallel ops hung until the timeout
    x = torch.randn(256, 256)
    _ = x @ x
    records = run(models="lenet", tools="thop", timeout=60, fresh=True)
    assert set(records.status) == {"ok"}  # a hung child would be an error row "timed out after 60 s"


def _frozen_objects() -> int:
    import gc

    return gc.get_freeze_count()


def test_a_job_starts_with_the_parents_objects_frozen_and_the_parent_collects_as_before():
    """The objects a job inherits are out of its garbage collector's reach (its first full collection would copy
    the parent's whole heap page by page), and the parent's own collector is as it was."""
    import gc

    from reconcile.jobs import fork_call

    held = [[] for _ in range(1000)]  # containers (tracked by the collector) the parent holds when it forks
    assert gc.get_freeze_count() == 0
    state, frozen_in_child = fork_call(_frozen_objects, (), 60)
    assert state == "ok" and frozen_in_child >= len(held)
    assert gc.get_freeze_count() == 0


@pytest.mark.slow
def test_runs_are_deterministic():
    first = run(models="lenet,sepnet", tools="document,thop", fresh=True)
    second = run(models="lenet,sepnet", tools="document,thop", fresh=True)
    assert to_csv(first) == to_csv(second)


def test_user_module_through_the_api():
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
    records = run(module=module, input_shape=(1, 3, 8, 8), name="mine", tools="thop")
    total = records[(records.layer == "__total__") & (records.metric == "macs")].value.item()
    assert total == 3 * 3 * 3 * 8 * 8 * 8  # k*c_in*c_out*H*W = 13,824 (thop: no bias adds)
