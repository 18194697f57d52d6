#!/usr/bin/env bash
# Build (once) and cache the Kubernetes control plane the e2e suite runs, for one version:
#   scripts/control-plane-build.sh 1.20   kube-apiserver and kube-controller-manager 1.20.2 from Debian's
#                                         `kubernetes` source package (Go 1.15 from Debian), etcd 3.4 and
#                                         kubectl 1.20 from Debian's packages (scripts/build/kubernetes-1.20-debian.sh)
#   scripts/control-plane-build.sh 1.36   kube-apiserver, kube-controller-manager and kubectl from the pinned
#                                         k8s.io/kubernetes module (scripts/build/kubernetes), etcd from the
#                                         pinned go.etcd.io/etcd/server/v3 module (scripts/build/etcd)
# Each ends up under ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/, keyed by version; a second run returns
# at once. Progress goes to stderr; the last line of stdout is the directory holding etcd, kube-apiserver,
# kube-controller-manager and kubectl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The harness makes its PKI with the openssl CLI (the 1.20 builder installs it with its other host packages).
if ! command -v openssl >/dev/null; then
  apt-get install -y --no-install-recommends openssl >&2 || { apt-get update >&2 && apt-get install -y --no-install-recommends openssl >&2; }
fi
case "${1:-}" in
  1.20) exec "$here/build/kubernetes-1.20-debian.sh" ;;
  1.36) exec "$here/go-tools-build.sh" "$here/build/kubernetes" "$here/build/etcd" ;;
  *) echo "usage: $0 1.20|1.36" >&2; exit 2 ;;
esac
