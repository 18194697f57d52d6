# Two commands for a newcomer: `make run` (the webhook, serving locally) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8443

.PHONY: install run certs test unit e2e lint bench fuzz soak control-plane clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

certs/tls.crt: | install
	$(BIN)/entra-webhook certs --out certs --dns localhost --ip 127.0.0.1 >/dev/null

certs: certs/tls.crt

run: install certs
	@echo "Serving on https://$(HOST):$(PORT)/mutate with examples/ as config. In another shell:"
	@echo
	@echo "  curl -sS --cacert certs/ca.crt -H 'Content-Type: application/json' \\"
	@echo "    --data @examples/admission-review.json https://$(HOST):$(PORT)/mutate \\"
	@echo "    | $(BIN)/python -m webhook.decode"
	@echo
	$(BIN)/entra-webhook serve --host $(HOST) --port $(PORT) --metrics-host $(HOST) --config examples \
		--cert-file certs/tls.crt --key-file certs/tls.key

# The whole suite: unit, HTTPS server, CLI, and e2e against a real control plane.
test: install control-plane lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest -m 'not e2e'

e2e: install control-plane
	$(BIN)/pytest -m e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Builds kube-apiserver and kube-controller-manager once (cached under ~/.cache), installs etcd and kubectl.
control-plane:
	scripts/control-plane-build.sh >/dev/null

bench: install
	$(BIN)/python -m bench

# The property suites' long campaign (core, served endpoint, API server dry runs); prints the counts.
# `make test` runs the same suites with a short budget.
fuzz: install control-plane
	HYPOTHESIS_PROFILE=long $(BIN)/pytest --hypothesis-show-statistics \
		tests/test_fuzz_core.py tests/test_fuzz_server.py tests/test_index.py tests/e2e/test_fuzz_apiserver.py

# Minutes of Pod creations through a real API server while certificates rotate, CRs change every
# second and the API server restarts once. SOAK_SECONDS (default 300), SOAK_CREATORS (16), K8S (default 1.20).
soak: install control-plane
	$(BIN)/python -m tests.soak

clean:
	rm -rf $(VENV) certs/*.crt certs/*.key .mypy_cache .ruff_cache .pytest_cache
