# Two commands do all set-up on a fresh machine (Python 3.11, make and a shell):
#   make run    - create .venv, install requirements.txt, migrate, start the service under supervisord
#   make test   - create .venv, install requirements-dev.txt (which includes requirements.txt), run every test
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.requirements.sha256
DEV_STAMP := $(VENV)/.requirements-dev.sha256
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: run test lint bench fuzz samples n8n ctl status clean-data

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# Reinstall only when a requirements file changes (each stamp holds the checksums it was made from).
$(RUN_STAMP): requirements.txt | $(PY)
	@sha256sum -c --status $@ 2>/dev/null || { echo "installing requirements.txt into $(VENV)"; \
		$(PIP) -r requirements.txt && sha256sum requirements.txt > $@; }

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	@sha256sum -c --status $@ 2>/dev/null || { echo "installing requirements-dev.txt into $(VENV)"; \
		$(PIP) -r requirements-dev.txt && sha256sum requirements.txt requirements-dev.txt > $@; }

run: $(RUN_STAMP)
	$(PY) -m ops.run

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

bench: $(DEV_STAMP)
	$(PY) -m bench.run $(if $(filter-out 0,$(BENCH_QUICK)),--plan quick)

# Fuzz the real service from its own /api/openapi.json (schemathesis, every phase, a new seed each run):
# fails on any 5xx or when a product gets no job accepted. make fuzz FUZZ_EXAMPLES=500 for a longer run.
fuzz: $(DEV_STAMP)
	$(PY) -m tests.e2e.fuzz_run --max-examples $(or $(FUZZ_EXAMPLES),200)

# A real n8n (and the Node it needs) from the npm registry, once per machine, for the tests of the shipped
# workflows (tests/e2e/test_n8n_workflows.py; they skip without it): 2.8 GB in ~/.cache/pdfjobs, a few minutes.
n8n: $(DEV_STAMP)
	$(PY) -m tests.e2e.n8n install

# Every sample report and form as PDF and one PNG per page, to look at: var/samples/*.png
samples: $(DEV_STAMP)
	$(PY) -m render.samples var/samples

# Control the running service: make ctl cmd="restart pdf_worker:*" (plain supervisorctl works too: see README)
ctl: $(RUN_STAMP)
	$(PY) -m ops.ctl $(cmd)

status: ctl

clean-data:
	rm -rf var
