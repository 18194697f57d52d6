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

.PHONY: install run certs test unit e2e e2e-image image release lint docs bench bench-apiserver fuzz soak control-plane helm manifests lock promtool clean

install: $(VENV)/.installed

# Exactly the locked tree (requirements/, every file pinned by hash), in a fresh venv;
# the build backend comes from the lock too, so nothing unpinned is installed.
$(VENV)/.installed: pyproject.toml requirements/build.txt requirements/dev.txt
	$(PYTHON) -m venv --clear $(VENV)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/pip install --quiet --require-hashes --no-deps \
		-r requirements/build.txt -r requirements/dev.txt
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

certs/tls.crt: | install
	$(BIN)/entra-webhook certs --out certs --dns localhost --ip 127.0.0.1 >/dev/null

certs: certs/tls.crt

run: install certs
	@echo "Serving on https://$(HOST):$(PORT)/mutate with examples/ as config. In another shell:"
	@echo
	@echo "  curl -sS --cacert certs/ca.crt -H 'Content-Type: application/json' \\"
	@echo "    --data @examples/admission-review.json https://$(HOST):$(PORT)/mutate \\"
	@echo "    | $(BIN)/python -m scripts.decode"
	@echo
	$(BIN)/entra-webhook serve --host $(HOST) --port $(PORT) --metrics-host $(HOST) --config examples \
		--cert-file certs/tls.crt --key-file certs/tls.key

# The whole suite: unit, HTTPS server, CLI, and e2e against a real control plane; then the e2e tests
# of both processes again, run from the image.
test: install control-plane lint image
	$(BIN)/pytest
	$(MAKE) --no-print-directory e2e-image

unit: install
	$(BIN)/pytest -m 'not e2e'

e2e: install control-plane
	$(BIN)/pytest -m e2e

# The image (Dockerfile), built with Debian's buildah without a daemon: localhost/entra-agent-webhook:<version>
# in the project's image store (~/.cache) and dist/entra-agent-webhook-<version>.oci.tar; prints what it adds
# on top of its base. IMAGE_BASE=stand-in (default: a stand-in made from Debian's packages, for machines that
# reach no container registry), pinned (the Dockerfile's base, pulled by digest) or any image reference.
# docs/operations/image-and-release.md
IMAGE_BASE ?= stand-in
export IMAGE_BASE
image:
	scripts/image-build.sh >/dev/null

# The e2e tests of the webhook and the controller with both processes started from the image's content,
# as the chart runs them (uid 65532, read-only root; tests/image.py), on Kubernetes 1.36.
E2E_IMAGE_TESTS ?= tests/e2e/test_injection.py tests/e2e/test_controller.py tests/e2e/test_image.py
e2e-image: install control-plane image
	ENTRA_WEBHOOK_IMAGE=$$(scripts/image-build.sh 2>/dev/null | tail -n1) K8S=1.36 $(BIN)/pytest $(E2E_IMAGE_TESTS)

# The release artefacts in dist/: the image's OCI archive, the chart (helm package), a CycloneDX SBOM of
# the image's Python packages (from the lock) and SHA256SUMS.
release: install helm image
	$(BIN)/python -m scripts.release --helm $(HELM)

# Also: the lock matches pyproject.toml, manifests/ is the chart's render, the chart lints,
# the alerting rules are valid, the Dockerfile passes hadolint, the generated docs pages are
# current and the docs site builds with every link and anchor checked.
lint: install helm promtool
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	scripts/lock.sh --check
	$(BIN)/python -m scripts.render_manifests --check --helm $(HELM)
	$(HELM) lint --strict charts/entra-webhook
	$(PROMTOOL) check rules manifests/monitoring/alerts.yaml
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m scripts.render_docs --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Write docs/reference/ (and docs/changelog.md) from the sources they describe; commit the result.
# `.venv/bin/mkdocs serve` previews the site.
docs: install
	$(BIN)/python -m scripts.render_docs

# Builds each version's etcd, kube-apiserver, kube-controller-manager and kubectl once (cached under ~/.cache).
control-plane:
	@for version in $$(echo '$(K8S)' | tr ',' ' '); do scripts/control-plane-build.sh $$version >/dev/null || exit 1; done

# helm built from the pinned Go modules in scripts/build/helm (Helm 4: lint, manifests/, chart tests) and
# scripts/build/helm3 (Helm 3: chart tests), cached under ~/.cache.
HELM = $(shell scripts/go-tools-build.sh scripts/build/helm 2>/dev/null | tail -n1)/helm
helm:
	scripts/go-tools-build.sh scripts/build/helm >/dev/null
	scripts/go-tools-build.sh scripts/build/helm3 >/dev/null

# Re-render manifests/ from the chart (commit the result; `make lint` fails while they differ).
manifests: install helm
	$(BIN)/python -m scripts.render_manifests --helm $(HELM)

# Re-lock after a change to pyproject.toml (e.g. after a merge): only what changed moves; commit
# requirements/. `scripts/lock.sh --upgrade [NAME]` moves pins on purpose.
lock: install
	scripts/lock.sh

# promtool, unpacked from Debian's prometheus package into ~/.cache (nothing installed system-wide).
PROMTOOL = $(shell scripts/promtool-build.sh 2>/dev/null | tail -n1)/promtool
promtool:
	scripts/promtool-build.sh >/dev/null

# Medians and ratios from one run: the core, the stage budget, served req/s against a fixed-patch server,
# the 10,000-identity configuration, a profile of the served path. `make bench ARGS=--quick` for a smoke run.
bench: install
	$(BIN)/python -m bench $(ARGS)

# What the webhook adds to Pod creations through a real API server (K8S: its newest, 1.36, unless one is named).
bench-apiserver: install control-plane
	$(BIN)/python -m bench.apiserver

# The property suites' long campaign (core, served endpoint, API server dry runs); prints the counts.
# `make test` runs the same suites with a short budget.
fuzz: install control-plane
	HYPOTHESIS_PROFILE=long $(BIN)/pytest --hypothesis-show-statistics \
		tests/test_fuzz_core.py tests/test_fuzz_server.py tests/test_index.py tests/e2e/test_fuzz_apiserver.py

# Minutes of Pod creations through a real API server while certificates rotate, CRs change every
# second and the API server restarts once. SOAK_SECONDS (default 300), SOAK_CREATORS (16), K8S (its newest: 1.36).
soak: install control-plane
	$(BIN)/python -m tests.soak

clean:
	rm -rf $(VENV) certs/*.crt certs/*.key .mypy_cache .ruff_cache .pytest_cache site
