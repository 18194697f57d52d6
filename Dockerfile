# syntax=docker/dockerfile:1
# The entra-webhook image. `make image` builds it with buildah (no daemon) and writes an OCI archive to dist/;
# docs/operations/image-and-release.md says how, and how to build it with docker instead.
#
# BASE is the production base, pinned by its index digest (a tag can be re-pushed, a digest cannot). Both
# stages use it, so the venv's interpreter symlinks resolve in the final one. Where it cannot be pulled,
# `make image` passes a stand-in with the same layout, built from Debian's packages (scripts/image-base.sh).
ARG BASE=python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5

FROM ${BASE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# The venv gets no pip or setuptools of its own: the base's pip installs into it (--python), so neither
# reaches the runtime image.
RUN python -m venv --without-pip /opt/venv
WORKDIR /src
# Exactly the locked tree (requirements/, written by `make lock`), every file checked against its hash;
# every dependency ships wheels for this Python, so no compiler is needed. pip byte-compiles what it
# installs, so nothing is written at run time on a read-only filesystem. The build backend is the locked
# one beside the venv (not in it). A TLS-intercepting proxy's CA bundle can be given as the build secret
# `ca`: it is mounted into these RUN steps only, never into a layer.
COPY requirements/runtime.txt requirements/build.txt requirements/
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python -m pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes --no-deps \
      -r requirements/runtime.txt \
 && python -m pip install --no-cache-dir --require-hashes --no-deps --target /opt/build -r requirements/build.txt
# pyproject.toml names README.md as the readme, so the build needs it too.
COPY pyproject.toml README.md ./
COPY webhook/ webhook/
# Then what neither process ever imports leaves the venv (the asyncio Kubernetes client and its aiohttp
# stack, the byte-code of API modules the webhook never names): scripts/image_prune.py says what and why,
# imports every webhook module before and after, and prints what it saved.
COPY scripts/image_prune.py /opt/
RUN PYTHONPATH=/opt/build python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps \
      --no-build-isolation . \
 && python /opt/image_prune.py /opt/venv webhook

FROM ${BASE}
ARG BASE
ARG VERSION=unknown
LABEL org.opencontainers.image.title="entra-webhook" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that injects the Microsoft Entra auth sidecar into AI-agent Pods" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="${BASE}"
# Only the venv: no sources, no pip, no build tools. HOME=/tmp: the only writable place in the Pod.
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Numeric, so Kubernetes can check runAsNonRoot without a passwd entry.
USER 65532:65532
# 8443: HTTPS admission endpoint (/mutate, /healthz, /readyz); 9090: plain-HTTP metrics.
EXPOSE 8443 9090
ENTRYPOINT ["entra-webhook"]
# The manifests pass their own args (serve ...); without them, show the subcommands.
CMD ["--help"]
