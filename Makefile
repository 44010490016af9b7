# Two commands do all set-up on a fresh machine (Python 3.11, make and a shell):
#   make run    - create .venv, install, migrate, start API + workers + scheduler under supervisord
#   make test   - create .venv, install, run the whole test suite
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.sha256

.PHONY: run test lint bench ctl status clean-data

# Reinstall only when requirements.txt changes (the stamp holds its checksum).
$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ ! -f $(STAMP) ] || ! sha256sum -c --status $(STAMP) 2>/dev/null; then \
		echo "installing requirements into $(VENV)"; \
		$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip && \
		$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt && \
		sha256sum requirements.txt > $(STAMP); \
	fi
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m ops.run

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m bench.run

# Control the running service: make ctl cmd="restart pdf_worker:*"
ctl: $(STAMP)
	$(PY) -m ops.ctl $(cmd)

status: ctl

clean-data:
	rm -rf var
