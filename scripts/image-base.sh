#!/usr/bin/env bash
# The stand-in for the production base image (python:3.11.11-slim-bookworm), which cannot be pulled on a
# machine that reaches only the package registries. Built once from Debian's packages with mmdebstrap,
# from this machine's own apt sources, into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/image-base-<key>/rootfs.tar
# keyed by this script and the Debian versions of its Python, and imported into the project's image store
# (scripts/buildah.sh) under the production base's name, so `--pull=never` builds the Dockerfile from it.
#
# Same layout as the production base where the Dockerfile relies on it: `python` on PATH (a link in
# /usr/local/bin), the venv and pip modules, CA certificates, LANG=C.UTF-8. It differs in the interpreter's
# patch release (Debian's 3.11 instead of 3.11.11 built from source) and in where it lives (/usr/bin).
#
# Progress goes to stderr; the last line of stdout is the image name to pass as the BASE build argument.
set -euo pipefail

TAG=image-base
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/build-cache.sh"
. "$here/buildah.sh"

NAME=docker.io/library/python:3.11.11-slim-bookworm
PACKAGES=(python3 python3-venv python3-pip ca-certificates netbase tzdata)
KEY_LABEL=io.github.entra-webhook.stand-in

need_packages mmdebstrap

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
python=$(candidate python3.11)
if [[ -z "$python" || "$python" == "(none)" ]]; then
  log "no apt lists for python3.11 yet: apt-get update"
  apt-get update >&2 || die "apt-get update failed (needs root)"
  python=$(candidate python3.11)
fi
[[ -n "$python" && "$python" != "(none)" ]] || die "Debian's python3.11 is not available from this machine's apt sources"
key="python3.11-${python//[^A-Za-z0-9.+-]/_}-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/image-base-$key"
BIN_DIR="$CACHE_DIR"
ROOTFS="$CACHE_DIR/rootfs.tar"

imported() { [[ "$(bah inspect --type image --format "{{index .ImageAnnotations \"$KEY_LABEL\"}}" "$NAME" 2>/dev/null)" == "$key" ]]; }

if ! [[ -f "$ROOTFS" ]]; then
  (
    built() { [[ -f "$ROOTFS" ]]; }
    cached_or_locked built >/dev/null
    # This machine's apt sources, as they are (the chroot gets the same mirrors and keys).
    sources=()
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
      [[ -s "$file" ]] && sources+=("$file")
    done
    ((${#sources[@]} > 0)) || die "no apt sources on this machine"
    log "building the stand-in base ($key) with mmdebstrap: $(IFS=,; printf '%s' "${PACKAGES[*]}")"
    started=$SECONDS
    mmdebstrap --mode=root --variant=minbase --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --include="$(IFS=,; printf '%s' "${PACKAGES[*]}")" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='ln -sf /usr/bin/python3 "$1/usr/local/bin/python"' \
      --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' \
      --customize-hook='rm -rf "$1/var/lib/apt/lists"/* "$1/var/cache/apt"/*' \
      bookworm "$CACHE_DIR/rootfs.tar.new" "${sources[@]}" >&2
    mv "$CACHE_DIR/rootfs.tar.new" "$ROOTFS"
    log "built in $((SECONDS - started))s: $ROOTFS ($(du -h "$ROOTFS" | cut -f1))"
  )
fi

if imported; then
  log "stand-in $key is $NAME in the image store"
else
  log "importing the stand-in $key as $NAME"
  container=$(bah from --quiet scratch)
  trap 'bah rm "$container" >/dev/null 2>&1 || true' EXIT
  bah add --quiet "$container" "$ROOTFS" / >/dev/null
  bah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 --label "$KEY_LABEL=$key" --annotation "$KEY_LABEL=$key" \
    --label org.opencontainers.image.description="Stand-in for $NAME, built from Debian's packages" \
    "$container"
  bah commit --quiet --rm "$container" "$NAME" >/dev/null
  trap - EXIT
fi
printf '%s\n' "$NAME"
