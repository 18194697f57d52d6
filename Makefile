# Two commands for a newcomer: `make run` (the webhook, serving locally) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8443
# The Kubernetes versions the e2e suite runs on (comma-separated): `make e2e K8S=1.36` runs one.
K8S ?= 1.20,1.36
export K8S

.PHONY: install run certs test unit e2e lint bench control-plane clean

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

# Builds each version's etcd, kube-apiserver, kube-controller-manager and kubectl once (cached under ~/.cache).
control-plane:
	@for version in $$(echo '$(K8S)' | tr ',' ' '); do scripts/control-plane-build.sh $$version >/dev/null || exit 1; done

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) certs/*.crt certs/*.key .mypy_cache .ruff_cache .pytest_cache
