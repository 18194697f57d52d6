#!/usr/bin/env bash
# Build (once) and cache helm for the chart's lint, render and e2e tests, from the pinned Go module in
# scripts/build/helm (go.mod + go.sum: the exact helm.sh/helm/v4 release and every dependency, by hash).
# Never a release binary: `go build` of that module with the Go toolchain already on this machine
# (GOTOOLCHAIN=local: no toolchain is downloaded either).
#
# The binary ends up in ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/helm-<version>/bin/helm, keyed by
# the version go.mod pins; the Go module and build caches live under .../entra-webhook/go/, so nothing
# lands in ~/go or ~/.cache/go-build. The build happens in a temporary directory and bin/ appears in
# one rename at the end; a second run only checks bin/ and returns at once.
#
# To move to another helm release: (cd scripts/build/helm && go get -tool helm.sh/helm/v4/cmd/helm@vX.Y.Z
# && go mod tidy), commit go.mod and go.sum; the next run builds it into a new cache directory.
#
# Progress goes to stderr; the last line of stdout is the bin directory:
#   HELM="$(scripts/helm-build.sh | tail -n1)/helm"
set -euo pipefail

MODULE_DIR="$(cd "$(dirname "$0")/build/helm" && pwd)"
HELM_MODULE=helm.sh/helm/v4

log() { printf '[helm-build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The pinned version, from go.mod (the one place it is written).
HELM_VERSION=$(awk -v m="$HELM_MODULE" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' \
  "$MODULE_DIR/go.mod" | head -n1)
[[ "$HELM_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no pinned $HELM_MODULE release in $MODULE_DIR/go.mod"
# go.sum pins the whole tree: a changed go.sum under the same version rebuilds.
SUM_DIGEST=$(sha256sum "$MODULE_DIR/go.sum" | cut -d' ' -f1)

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook"
CACHE_DIR="$CACHE_ROOT/helm-$HELM_VERSION"
BIN_DIR="$CACHE_DIR/bin"

bin_complete() {
  [[ -x "$BIN_DIR/helm" && -f "$BIN_DIR/.complete" ]] && grep -qx "go.sum $SUM_DIGEST" "$BIN_DIR/.complete"
}

if bin_complete; then
  log "cached helm $HELM_VERSION in $BIN_DIR"
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null || die "needs Go (1.26+, the version in $MODULE_DIR/go.mod) on PATH"
mkdir -p "$CACHE_DIR"
# Serialise concurrent runs (parallel test workers, two worktrees) on the same cache.
exec 9>"$CACHE_DIR/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.lock; waiting for it"
  flock 9
fi
if bin_complete; then
  log "cached helm $HELM_VERSION in $BIN_DIR (built by a concurrent run)"
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

# Everything Go writes stays under the cache; the module proxy is whatever this machine's Go uses.
export GOPATH="$CACHE_ROOT/go"
export GOMODCACHE="$CACHE_ROOT/go/mod"
export GOCACHE="$CACHE_ROOT/go/build"
export GOTOOLCHAIN=local
export GOWORK=off
export GOFLAGS="-mod=readonly -modcacherw"
export CGO_ENABLED=0
export HOME="$WORK/home" # nothing else of the user's is read or written
mkdir -p "$HOME"
log "$(go version); building $HELM_MODULE $HELM_VERSION (a few minutes on 2 cores when nothing is cached)"

# What helm's own Makefile stamps into a release build. The module proxy does not record the tag's
# commit, so gitCommit stays empty; the tree is the released module zip, hence "clean".
ldflags=(
  -s -w
  "-X $HELM_MODULE/internal/version.version=$HELM_VERSION"
  "-X $HELM_MODULE/internal/version.metadata="
  "-X $HELM_MODULE/internal/version.gitTreeState=clean"
)
(cd "$MODULE_DIR" && go build -trimpath -ldflags "${ldflags[*]}" -o "$WORK/helm" "$HELM_MODULE/cmd/helm") >&2

reported=$("$WORK/helm" version --template '{{.Version}}')
[[ "$reported" == "$HELM_VERSION" ]] || die "the built helm reports '$reported', expected $HELM_VERSION"
"$WORK/helm" version >&2

STAGE=$(mktemp -d "$CACHE_DIR/bin.new.XXXXXX")
install -m 0755 "$WORK/helm" "$STAGE/helm"
printf 'go.sum %s\nbuilt %s\n' "$SUM_DIGEST" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAGE/.complete"
chmod 0755 "$STAGE"
mv -T "$STAGE" "$BIN_DIR"
log "built in $((SECONDS - started))s; helm in $BIN_DIR"
printf '%s\n' "$BIN_DIR"
