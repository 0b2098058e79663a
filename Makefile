# Set-up and the two everyday commands. Everything installs into .venv with the exact pins of constraints.txt.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install reconcile test bench clean

install: $(STAMP)

# Re-install only when the pins or the package metadata change.
$(STAMP): constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[tools,test]'
	touch $(STAMP)

reconcile: $(STAMP)
	$(VENV)/bin/reconcile run --out reports

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/bench_run.py

clean:
	rm -rf $(VENV) .pytest_cache
