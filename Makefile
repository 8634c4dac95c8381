# Tributary: make run · make test · make demo · make bench · make lint
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HTMX   := webapp/static/vendor/htmx.min.js

.PHONY: install lock run test test-pg demo bench lint system clean

install: $(STAMP) $(HTMX)

# Exact versions (with hashes) from requirements.lock, then the project itself without deps.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Re-pin requirements.lock after changing the ranges in pyproject.toml.
lock:
	@test -x $(VENV)/bin/pip-compile || $(PY) -m pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --extra dev --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

# htmx comes from the npm registry (version pinned in package-lock.json), served from static/.
$(HTMX): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@mkdir -p $(dir $(HTMX))
	cp node_modules/htmx.org/dist/htmx.min.js $(HTMX)

# System packages the browser tests need (Debian chromium); installed when missing and root.
system:
	@bash scripts/ensure_system.sh

run: install
	$(PY) scripts/devrun.py

test: install system
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) node_modules $(dir $(HTMX)) .pytest_cache
