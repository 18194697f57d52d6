# syntax=docker/dockerfile:1
# The entra-webhook image: `docker build -t entra-agent-webhook:0.1.0 .`
#
# Both stages use the same pinned base, so the venv's interpreter symlinks resolve in the final one.
# For reproducible builds pin the digest as well, in both FROM lines:
#   docker buildx imagetools inspect python:3.11.11-slim-bookworm   # prints the index digest
#   FROM python:3.11.11-slim-bookworm@sha256:<that digest>

FROM python:3.11.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Exactly the locked tree (requirements/, written by `make lock`), every file checked against its hash.
# Every dependency ships wheels for this Python, so no compiler is needed even here; pip
# byte-compiles what it installs, so nothing is written at run time on a read-only filesystem.
COPY requirements/runtime.txt requirements/build.txt requirements/
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.txt \
 && pip install --no-cache-dir --require-hashes --no-deps --target /opt/build -r requirements/build.txt
# pyproject.toml names README.md as the readme, so the build needs it too. The build backend is
# the locked one beside the venv (not in it): no package is fetched unpinned.
COPY pyproject.toml README.md ./
COPY webhook/ webhook/
RUN PYTHONPATH=/opt/build pip install --no-cache-dir --no-deps --no-build-isolation .

FROM python:3.11.11-slim-bookworm
LABEL org.opencontainers.image.title="entra-webhook" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that injects the Microsoft Entra auth sidecar into AI-agent Pods" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="0.1.0"
# Only the venv: no sources, no build tools. HOME=/tmp: the only writable place in the Pod.
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
