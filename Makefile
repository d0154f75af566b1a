# `make run` and `make test` each set everything up from nothing: the venv, the exact versions in
# requirements.lock, this package (for the `qa` command) and, for the browser tests, Debian's Chromium.
# requirements.txt is the human list; `make lock` re-resolves it into requirements.lock with pip-tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RAY_STAMP := $(VENV)/.ray-stamp
LOCK_VENV := .cache/lock-venv

.PHONY: run test test-fast index bench chromium clean lock

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work offline here).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then (apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) >/dev/null; \
	elif sudo -n true 2>/dev/null; then (sudo apt-get install -y -q chromium || (sudo apt-get update -q && sudo apt-get install -y -q chromium)) >/dev/null; \
	else echo "note: install Chromium for the browser tests: sudo apt-get install chromium"; fi

# A quick loop: no model, no browser (tests marked slow or browser are skipped); `make test` runs all.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

index: $(STAMP)
	$(BIN)/python -m qa index

# Two malloc arenas: the server's threads otherwise each grow their own (measured: ~100 MB less RSS and
# slower growth over a soak, bench/soak.py).
run: $(STAMP)
	MALLOC_ARENA_MAX=2 $(BIN)/python app.py

# Ray (for `qa index --engine ray` and its tests) is installed for the tests only; `make run` never needs it.
$(RAY_STAMP): $(STAMP) requirements-ray.lock
	$(BIN)/python -m pip install -q -r requirements-ray.lock
	touch $(RAY_STAMP)

test: $(STAMP) $(RAY_STAMP) chromium
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/ask.py
	$(BIN)/python bench/build.py

# Newest versions that requirements.txt allows, pinned exactly (pip-tools runs in its own venv so the
# project venv holds only what the lock lists). Then `make test` and commit both files.
lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q pip-tools
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras --allow-unsafe --no-emit-find-links \
		--no-emit-index-url --output-file requirements.lock requirements.txt
	# A local label (torch==2.13.0+cpu, the wheel on this machine's disk) exists on no public index; the
	# plain pin takes that wheel here (PEP 440: it matches 2.13.0+cpu and pip prefers it) and the
	# standard build elsewhere.
	sed -i -E 's/^([A-Za-z0-9_.-]+==[^+ ]+)\+[A-Za-z0-9.]+$$/\1/' requirements.lock
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras --allow-unsafe --no-emit-find-links \
		--no-emit-index-url --output-file requirements-ray.lock requirements-ray.txt

clean:
	rm -rf $(VENV) index .pytest_cache
