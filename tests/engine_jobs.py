"""Job functions for tests/test_engines.py: top-level, so an engine can ship them to its workers (Ray imports
this module by name: tests/ is on its workers' PYTHONPATH in those tests)."""
import os
import signal


def fault_job(job):
    """job = (kind, folder, value): "square" returns value**2; "die_once" kills the worker process running it the
    first time (its own pid), then returns value; "die_always" kills it every time. Every attempt appends the
    worker's pid to folder/<value>.attempts, so a test counts how often a job ran, and where."""
    kind, folder, value = job
    with open(os.path.join(folder, f"{value}.attempts"), "a") as handle:
        handle.write(f"{os.getpid()}\n")
    if kind == "die_once":
        try:
            os.close(os.open(os.path.join(folder, f"{value}.died"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return value * value
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "die_always":
        os.kill(os.getpid(), signal.SIGKILL)
    return value * value
