#!/usr/bin/env bash
# Debian's buildah (installed on first use) on the project's own image store. Sourced by the image scripts
# (they call `bah`), or run as `scripts/buildah.sh ARGS` (the tests run the image's content so).
#
# The store lives under ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/containers (vfs: no kernel overlay
# needed), so images and buildah's layer cache survive between runs and nothing touches the machine's
# default store. Builds and runs use chroot isolation: no daemon, no runtime, no cgroups.

[[ -n "${TAG:-}" ]] || TAG=buildah
declare -F log >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/build-cache.sh"

IMAGE_STORE="${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/containers"

# need_packages PACKAGE...: install Debian packages that are missing (root; apt-get update once if needed).
need_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  local install=(apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}")
  DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2; } \
    || die "could not install ${missing[*]} (needs root and the Debian archive)"
}

need_packages buildah

# bah ARGS...: buildah on the project's store.
bah() {
  buildah --root "$IMAGE_STORE/storage" --runroot "$IMAGE_STORE/run" --storage-driver vfs "$@"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  exec buildah --root "$IMAGE_STORE/storage" --runroot "$IMAGE_STORE/run" --storage-driver vfs "$@"
fi
