# Set-up and the two everyday commands. Everything installs into .venv with the exact pins of constraints.txt.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# ultralytics-thop installs into the same `thop` package folder as thop: it lives outside the venv (see constraints.txt).
ULTRA_THOP := .cache/tools/ultralytics-thop-$(shell sed -n 's/^ultralytics-thop==//p' constraints.txt)
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install reconcile test test-all test-fast bench atlas which-verdicts clean

install: $(STAMP) $(ULTRA_THOP)/thop/__init__.py

# Re-install only when the pins or the package metadata change. The `cluster` extra (Ray, DuckDB, pyarrow: the sweep
# store and --engine ray) is installed too, so CI runs the engine tests (tests/test_engines.py) instead of skipping them.
# DeepSpeed: sdist whose setup.py imports torch; without build isolation it builds against the venv's pinned torch
# (isolation would fetch another torch), with its C++/CUDA ops switched off (DS_BUILD_OPS=0, CPU accelerator).
$(STAMP): constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[tools,test,cluster]'
	DS_BUILD_OPS=0 DS_ACCELERATOR=cpu $(PIP_INSTALL) --no-build-isolation deepspeed
	test -f $(ULTRA_THOP)/thop/__init__.py || $(PIP_INSTALL) --no-deps --upgrade --target $(ULTRA_THOP) ultralytics-thop
	touch $(STAMP)

# The folder name carries the pinned version, so a new pin is a new target; an existing one is never redone.
$(ULTRA_THOP)/thop/__init__.py:
	$(PIP_INSTALL) --no-deps --upgrade --target $(ULTRA_THOP) ultralytics-thop
	touch $@

reconcile: $(STAMP)
	$(VENV)/bin/reconcile run --out reports

# Every test but the system tier (pyproject.toml markers). Target: under 2 minutes on an idle 2-core machine.
test: $(STAMP)
	$(PY) -m pytest -q -m "not system"

# Every test, the system tier included: what CI runs (.ci/run).
test-all: $(STAMP)
	$(PY) -m pytest -q

# Tests not marked system, slow or registry (tests/conftest.py marks the rest `fast`). Target: under 30 s.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m fast

# Times the everyday commands against their targets (bench/bench_run.py); exits 1 when one is missed.
# make bench ARGS=--no-tests leaves out `make test` and `make test-fast`; ARGS=--tests-only times only them and the
# prototxt fuzzer's slowest case (no test asserts a time: they are measured here). bench_newcomer.py: `which` on six
# published numbers from an empty cache, each < 5 s, and the same with --confirm.
bench: $(STAMP)
	status=0; $(PY) bench/bench_run.py $(ARGS) || status=1; $(PY) bench/bench_overhead.py || status=1; \
	$(PY) bench/bench_training.py time || status=1; $(PY) bench/bench_engines.py || status=1; \
	$(PY) bench/bench_newcomer.py || status=1; exit $$status

# The discrepancy atlas: the sweep (every atlas model x counter x release, then every transformers architecture the
# hf sweep built x every counter at its pin, ~2.5 h on 2 cores; on this machine's builtin engine; add
# ENGINE=ray for a local Ray cluster, RAY_ADDRESS for a running one) into .cache/atlas-sweep, rendered into
# reports/atlas/ (a rerun adds only the jobs the store lacks). RELEASES=all: every release the registry lists
# (reconcile/releases.json) of thop, torchinfo, ptflops, fvcore, calflops, torchstat and torchsummary.
ENGINE ?= builtin
RELEASES ?=
atlas: $(STAMP)
	$(VENV)/bin/reconcile atlas sweep --out .cache/atlas-sweep --engine $(ENGINE) $(if $(RELEASES),--releases $(RELEASES))
	$(VENV)/bin/reconcile atlas sweep --architectures --venv-only --timeout 300 --out .cache/atlas-sweep --engine $(ENGINE)
	$(VENV)/bin/reconcile atlas .cache/atlas-sweep --out reports/atlas

# which-verdicts: `which` on every row of reference_models/published.csv (conventions only), rendered into
# reports/which/published_verdicts.md.
which-verdicts: $(STAMP)
	$(PY) -m reconcile.published_verdicts

clean:
	rm -rf $(VENV) .pytest_cache
