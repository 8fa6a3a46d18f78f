# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run run-network test test-fast lint demo-assets venv clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install -q -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) install -q -e ".[test]"
	touch $@

venv: $(STAMP)

# The demo model and its held-out results are committed; this rebuilds them only when missing.
checkpoints/default/bundle.json: | $(STAMP)
	$(VENV)/bin/echocmr demo-assets --out checkpoints/default

demo-assets: $(STAMP)
	$(VENV)/bin/echocmr demo-assets --out checkpoints/default --force

# Loopback only (127.0.0.1, .streamlit/config.toml): the operator is the only user.
run: $(STAMP) checkpoints/default/bundle.json
	$(VENV)/bin/streamlit run dashboard/Home.py

# Network mode (README, "Security"): sign-in through OpenID Connect, roles from roles.toml,
# listening on every interface for the host name users type: make run-network HOST=echo.example.org
run-network: $(STAMP) checkpoints/default/bundle.json
	@test -n "$(HOST)" || { echo "usage: make run-network HOST=<the host name users type>"; exit 1; }
	@test -f .streamlit/secrets.toml || { echo "network mode needs .streamlit/secrets.toml with an [auth] section (README, Security)"; exit 1; }
	ECHOCMR_AUTH=oidc $(VENV)/bin/streamlit run dashboard/Home.py --server.address 0.0.0.0 --server.allowedHosts $(HOST)

# Two pytest-xdist workers (one per core); a test module stays on one worker (--dist loadscope),
# so its module fixtures (a Streamlit server, a cohort) are built once. tests/conftest.py shares
# the session fixtures between the workers. One process instead: make test XDIST=
XDIST ?= -n 2 --dist loadscope

# Lint and type-check the package, then every test (browser and slow ones included), slowest 15 listed.
test: lint
	$(PY) -m pytest $(XDIST) --durations=15

# The quick run to use while working: no browser, no slow fault/demo tests (<= 90 s on 2 cores).
test-fast: $(TEST_STAMP)
	$(PY) -m pytest $(XDIST) -m "not slow and not browser" --durations=15

lint: $(TEST_STAMP)
	$(PY) -m ruff check echocmr dashboard bench
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/bootstrap.py
	$(PY) bench/predict_cpu.py
	$(PY) bench/study_cpu.py
	$(PY) bench/robustness.py
	$(PY) bench/faults.py
	$(PY) bench/loader.py
	$(PY) bench/prepare_scale.py
	$(PY) bench/reduced_decode.py
	$(PY) bench/gpu_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache
