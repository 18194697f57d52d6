#!/usr/bin/env bash
# Build (once) and cache helm for the chart's lint, render and e2e tests, from the pinned Go module in
# scripts/build/helm: go.mod + go.sum pin helm.sh/helm/v4 and every dependency by hash, build.env says
# what to build and the version stamps. Never a release binary: `go build` of that module with the Go
# toolchain already on this machine (GOTOOLCHAIN=local: no toolchain is downloaded either).
#
# The binary ends up in ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/helm-<version>/bin/helm; the Go
# module and build caches live under .../entra-webhook/go/, so nothing lands in ~/go or
# ~/.cache/go-build. The build happens in a temporary directory and bin/ appears in one rename at the
# end; a second run only checks bin/ (and that go.sum has not changed) and returns at once.
#
# To move to another helm release:
#   (cd scripts/build/helm && go get -tool helm.sh/helm/v4/cmd/helm@vX.Y.Z && go mod tidy)
# and commit go.mod and go.sum; the next run builds it into a new cache directory.
#
# Progress goes to stderr; the last line of stdout is the bin directory:
#   HELM="$(scripts/helm-build.sh | tail -n1)/helm"
set -euo pipefail

MODULE_DIR="$(cd "$(dirname "$0")/build/helm" && pwd)"

log() { printf '[helm-build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "needs Go (1.26+, the version in $MODULE_DIR/go.mod) on PATH"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook"
# Everything Go writes stays under the cache; the module proxy is whatever this machine's Go uses.
export GOPATH="$CACHE_ROOT/go"
export GOMODCACHE="$CACHE_ROOT/go/mod"
export GOCACHE="$CACHE_ROOT/go/build"
export GOTOOLCHAIN=local
export GOWORK=off
export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false"
export CGO_ENABLED=0

# The version go.mod pins for a module (needs only go.mod, not the module itself).
module_version() { go list -m -f '{{.Version}}' "$1"; }
cd "$MODULE_DIR"
# shellcheck disable=SC1091
. ./build.env
[[ "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no pinned helm release in $MODULE_DIR/go.mod (got '$VERSION')"
# go.sum pins the whole tree: a changed go.sum under the same version rebuilds.
SUM_DIGEST=$(sha256sum go.sum | cut -d' ' -f1)
CACHE_DIR="$CACHE_ROOT/$NAME"
BIN_DIR="$CACHE_DIR/bin"

bin_complete() {
  [[ -x "$BIN_DIR/helm" && -f "$BIN_DIR/.complete" ]] && grep -qx "go.sum $SUM_DIGEST" "$BIN_DIR/.complete"
}

if bin_complete; then
  log "cached helm $VERSION in $BIN_DIR"
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

mkdir -p "$CACHE_DIR"
# Serialise concurrent runs (parallel test workers, two worktrees) on the same cache.
exec 9>"$CACHE_DIR/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.lock; waiting for it"
  flock 9
fi
if bin_complete; then
  log "cached helm $VERSION in $BIN_DIR (built by a concurrent run)"
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

started=$SECONDS
WORK=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Leftovers of builds that were killed hard (SIGKILL skips the trap).
for stale in "$CACHE_DIR"/build.* "$CACHE_DIR"/bin.new.*; do
  [[ -e "$stale" && "$stale" != "$WORK" ]] && rm -rf "$stale"
done
rm -rf "$BIN_DIR" # incomplete or stale by definition here

export HOME="$WORK/home" # nothing else of the user's is read or written
mkdir -p "$HOME"
log "$(go version); building $NAME (4 to 8 minutes on 2 cores when nothing is cached)"
go mod download
for pair in "${TOOLS[@]}"; do
  go build -trimpath -ldflags "-s -w $LDFLAGS" -o "$WORK/${pair#*=}" "${pair%%=*}" >&2
done

reported=$("$WORK/helm" version --template '{{.Version}}')
[[ "$reported" == "$VERSION" ]] || die "the built helm reports '$reported', expected $VERSION"
"$WORK/helm" version >&2

STAGE=$(mktemp -d "$CACHE_DIR/bin.new.XXXXXX")
install -m 0755 "$WORK/helm" "$STAGE/helm"
printf 'go.sum %s\nbuilt %s\n' "$SUM_DIGEST" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAGE/.complete"
chmod 0755 "$STAGE"
mv -T "$STAGE" "$BIN_DIR"
log "built in $((SECONDS - started))s; helm in $BIN_DIR"
printf '%s\n' "$BIN_DIR"
