#!/usr/bin/env bash
# Install the Debian packages named as arguments, unless they are installed already (as root, or
# through sudo). The project's scripts and make targets call it for what they run on the host, so
# a fresh machine needs nothing installed by hand:
#   scripts/host-packages.sh prometheus     # promtool, for the alerting rules
set -euo pipefail

log() { printf '[host-packages] %s\n' "$*" >&2; }

missing=()
for pkg in "$@"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { log "ERROR: need root (or sudo) to install: ${missing[*]}"; exit 1; }
  sudo=(sudo)
fi
log "installing host packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
  log "apt-get install failed; running apt-get update and retrying"
  "${sudo[@]}" apt-get update >&2
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
