#!/usr/bin/env bash
# Build the Dockerfile with Debian's buildah (no daemon, chroot isolation, the project's own image store:
# scripts/buildah.sh), tag it localhost/entra-agent-webhook:<version> and write it as an OCI archive to
#   dist/entra-agent-webhook-<version>.oci.tar
# IMAGE_BASE picks the base image of both stages (the Dockerfile's BASE build argument):
#   stand-in (default)  the stand-in built from Debian's packages (scripts/image-base.sh), for machines that
#                       reach no container registry; the image's org.opencontainers.image.base.name says so
#   pinned              the Dockerfile's own: python:3.11.11-slim-bookworm pinned by its digest (pulled)
#   any other value     that image reference
# A second run on the same inputs (the build context, this script, the base image's ID) only checks them.
# The build prints what the image adds on top of its base and fails over IMAGE_BUDGET_MB (default 120).
# The machine's CA bundle is passed as the build secret `ca` (mounted into the pip steps only), so pip
# trusts a TLS-intercepting proxy if the machine does.
#
# Progress goes to stderr; the last line of stdout is the image reference.
set -euo pipefail

TAG=image-build
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/build-cache.sh"
. "$here/buildah.sh"
cd "$here/.."

NAME=entra-agent-webhook
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' webhook/__init__.py)
[[ -n "$version" ]] || die "no __version__ in webhook/__init__.py"
image="localhost/$NAME:$version"
archive="dist/$NAME-$version.oci.tar"
budget=${IMAGE_BUDGET_MB:-120}
ca=${IMAGE_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}

build_args=(--build-arg "VERSION=$version")
case "${IMAGE_BASE:=stand-in}" in
  stand-in) base=$("$here/image-base.sh" | tail -n1); build_args+=(--build-arg "BASE=$base" --pull=never) ;;
  pinned) base=$(sed -n 's/^ARG BASE=//p' Dockerfile) ;;
  *) base=$IMAGE_BASE; build_args+=(--build-arg "BASE=$base") ;;
esac
base_id=$(bah inspect --type image --format '{{.FromImageID}}' "$base" 2>/dev/null) || {
  log "pulling $base"
  bah pull --quiet "$base" >/dev/null || die "cannot pull $base (a machine that reaches no registry builds with IMAGE_BASE=stand-in)"
  base_id=$(bah inspect --type image --format '{{.FromImageID}}' "$base")
}

# The build context exactly as .dockerignore lets it through, plus the recipe and the base.
inputs() {
  {
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
      --exclude=__pycache__ --exclude='*.py[cod]' -cf - \
      Dockerfile .dockerignore pyproject.toml README.md requirements/runtime.txt requirements/build.txt \
      webhook scripts/image_prune.py "${BASH_SOURCE[0]}"
    printf 'base %s %s\n' "$base" "$base_id"
  } | sha256sum | cut -c1-32
}
key=$(inputs)
# What this store built last: "KEY IMAGE-ID".
marker="$IMAGE_STORE/$NAME-$version.inputs"
built() {
  local recorded id
  read -r recorded id 2>/dev/null <"$marker" || return 1
  [[ "$recorded" == "$key" && "$(bah inspect --type image --format '{{.FromImageID}}' "$image" 2>/dev/null)" == "$id" ]]
}

CACHE_DIR=$IMAGE_STORE
BIN_DIR=$image
if ! built; then
  (
    cached_or_locked built >/dev/null
    log "building $image from $base"
    started=$SECONDS
    [[ -s "$ca" ]] && build_args+=(--secret "id=ca,src=$ca")
    bah bud --isolation chroot --network host "${build_args[@]}" \
      -t "$image" . >&2
    printf '%s %s\n' "$key" "$(bah inspect --type image --format '{{.FromImageID}}' "$image")" >"$marker"
    log "built in $((SECONDS - started))s"
    bah rmi --prune >/dev/null 2>&1 || true # the image this one replaces (unless a container still uses it)
  )
fi

# The archive is rewritten whenever the image it was written from is not this one.
image_id=$(bah inspect --type image --format '{{.FromImageID}}' "$image")
if [[ ! -s "$archive" || "$(cat "$archive.id" 2>/dev/null)" != "$image_id" ]]; then
  mkdir -p dist
  rm -f "$archive" "$archive.id"
  bah push --quiet "$image" "oci-archive:$archive.new:$NAME:$version" >&2
  mv "$archive.new" "$archive"
  printf '%s\n' "$image_id" >"$archive.id"
  log "wrote $archive ($(du -h "$archive" | cut -f1))"
fi
base_layers=$(bah inspect --type image --format '{{len .OCIv1.RootFS.DiffIDs}}' "$base")
python3 "$here/image_layers.py" "$archive" "$base_layers" "$budget" >&2 || die "$image is over its size budget"
printf '%s\n' "$image"
