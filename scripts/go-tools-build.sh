#!/usr/bin/env bash
# Build (once) and cache test infrastructure from pinned Go modules:
#   scripts/go-tools-build.sh scripts/build/kubernetes scripts/build/etcd
#
# Each argument is a small wrapper module (go.mod + go.sum, committed) whose `tool` lines
# name what to build, plus a `build.env` that this script sources. build.env sets:
#   NAME     the cache key part of this module, e.g. kubernetes-v1.36.3 (may use `module_version`)
#   TOOLS    an array of "package=binary" pairs to build
#   LDFLAGS  optional extra -ldflags (e.g. the version stamps /version reports)
#
# The binaries of all arguments land together in one directory,
#   ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/<NAME1>+<NAME2>/bin
# which appears in one rename at the end, so an interrupted build never leaves a half-filled
# cache; a second run only checks it (and that no go.sum changed) and returns at once. Modules and
# the Go build cache live under ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/go/, so nothing is
# written elsewhere. Everything comes from the Go module proxy the machine's `go` is configured for,
# verified against the committed go.sum (-mod=readonly), built with the Go already on the machine
# (GOTOOLCHAIN=local: no toolchain is downloaded either); nothing is fetched by URL.
#
# To move a module to another release, e.g. helm:
#   (cd scripts/build/helm && go get -tool helm.sh/helm/v4/cmd/helm@vX.Y.Z && go mod tidy)
# and commit go.mod and go.sum; the next run builds it into a new cache directory.
#
# Progress goes to stderr; the last line of stdout is the bin directory:
#   BIN=$(scripts/go-tools-build.sh scripts/build/helm | tail -n1)
set -euo pipefail

TAG=go-tools-build
. "$(dirname "${BASH_SOURCE[0]}")/build-cache.sh"

(($# > 0)) || die "usage: $0 MODULE_DIR [MODULE_DIR...]"
command -v go >/dev/null || die "needs the go command (Go 1.26+)"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook"
export GOPATH="$CACHE_ROOT/go"
export GOMODCACHE="$CACHE_ROOT/go/mod"
export GOCACHE="$CACHE_ROOT/go/build"
export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false"  # -modcacherw: the cache can be deleted with rm -rf
export GOWORK=off
export CGO_ENABLED=0
export GOTOOLCHAIN=local

# The version a wrapper module pins for MODULE (run inside the wrapper's directory).
module_version() { go list -m -f '{{.Version}}' "$1"; }

declare -a names=() dirs=()
for dir in "$@"; do
  dir=$(cd "$dir" && pwd)
  [[ -f "$dir/go.mod" && -f "$dir/go.sum" && -f "$dir/build.env" ]] || die "$dir needs go.mod, go.sum and build.env"
  NAME=$(cd "$dir" && unset NAME && . ./build.env && printf '%s' "$NAME")
  [[ -n "$NAME" ]] || die "$dir/build.env sets no NAME"
  names+=("$NAME")
  dirs+=("$dir")
done
key=$(IFS=+; printf '%s' "${names[*]}")
CACHE_DIR="$CACHE_ROOT/$key"
BIN_DIR="$CACHE_DIR/bin"
# go.sum pins the whole tree: a changed go.sum under the same versions rebuilds.
sums=$(for dir in "${dirs[@]}"; do sha256sum "$dir/go.sum" | cut -d' ' -f1; done | paste -sd' ')
complete() { [[ -f "$BIN_DIR/.complete" ]] && grep -qxF "go.sum $sums" "$BIN_DIR/.complete"; }

cached_or_locked complete

started=$SECONDS
log "building $key with $(go version | cut -d' ' -f3) (a first build downloads its modules: about 6 minutes for Kubernetes on 2 idle cores)"
for stale in "$CACHE_DIR"/bin.new.*; do [[ -e "$stale" ]] && rm -rf "$stale"; done
STAGE=$(mktemp -d "$CACHE_DIR/bin.new.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

for dir in "${dirs[@]}"; do
  (
    cd "$dir"
    unset NAME TOOLS LDFLAGS
    # shellcheck disable=SC1091
    . ./build.env
    ((${#TOOLS[@]} > 0)) || die "$dir/build.env sets no TOOLS"
    log "$NAME: downloading modules (verified against go.sum)"
    go mod download
    for pair in "${TOOLS[@]}"; do
      package=${pair%%=*}
      binary=${pair#*=}
      log "$NAME: go build $package -> $binary"
      go build -trimpath -ldflags "-s -w ${LDFLAGS:-}" -o "$STAGE/$binary" "$package"
    done
  )
done

printf 'built %s\ngo.sum %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$sums" >"$STAGE/.complete"
chmod 0755 "$STAGE"
rm -rf "$BIN_DIR"
mv -T "$STAGE" "$BIN_DIR"
trap - EXIT
log "built in $((SECONDS - started))s; binaries in $BIN_DIR ($(du -sh "$BIN_DIR" | cut -f1))"
printf '%s\n' "$BIN_DIR"
