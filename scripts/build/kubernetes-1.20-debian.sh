#!/usr/bin/env bash
# Build (once) and cache a Kubernetes 1.20.2 control plane for the e2e tests:
#   kube-apiserver, kube-controller-manager  built from Debian bookworm's
#                                            `kubernetes` source package with
#                                            Go 1.15 from Debian bullseye
#   etcd                                     from bookworm's `etcd-server`
#   kubectl                                  from bookworm's `kubernetes-client`
#
# Everything comes from Debian's archive, located at run time from this
# machine's own apt sources; nothing is installed system-wide except a few
# build tools (rsync, make, dpkg-dev, ...) and openssl.
#
# The binaries end up in ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/
# kubernetes-1.20.2-go1.15/bin. The build happens in a temporary directory
# and bin/ appears in one rename at the very end, so an interrupted build
# never leaves a half-filled cache. A second run only checks that bin/ is
# complete and returns in well under a second.
#
# Progress goes to stderr; the last line of stdout is the bin directory:
#   BIN=$(scripts/control-plane-build.sh | tail -n1)
set -euo pipefail

K8S_UPSTREAM_VERSION=1.20.2
K8S_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56 # upstream tag v1.20.2
GO_SERIES=1.15
GO_SUITE=bullseye # the Debian release that still ships Go 1.15
BIN_NAMES=(kube-apiserver kube-controller-manager etcd kubectl)
# Debian packages this script or the test harness runs on the host.
HOST_PACKAGES=(rsync make dpkg-dev xz-utils patch openssl ca-certificates)

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook"
CACHE_DIR="$CACHE_ROOT/kubernetes-${K8S_UPSTREAM_VERSION}-go${GO_SERIES}"
BIN_DIR="$CACHE_DIR/bin"

TAG=control-plane-build
. "$(dirname "${BASH_SOURCE[0]}")/../build-cache.sh"

bin_complete() {
  local name
  for name in "${BIN_NAMES[@]}"; do
    [[ -x "$BIN_DIR/$name" ]] || return 1
  done
  [[ -f "$BIN_DIR/.complete" ]]
}

# --- host packages ---------------------------------------------------------
missing_host_packages() {
  local pkg status
  for pkg in "${HOST_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == installed ]] || printf '%s\n' "$pkg"
  done
}

ensure_host_packages() {
  local missing
  mapfile -t missing < <(missing_host_packages)
  ((${#missing[@]} == 0)) && return 0
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
    sudo=(sudo)
  fi
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    log "apt-get install failed; running apt-get update and retrying"
    "${sudo[@]}" apt-get update >&2
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

# --- warm path -------------------------------------------------------------
ensure_host_packages
cached_or_locked bin_complete

log "no complete cache in $BIN_DIR; building (about 3-4 minutes on 2 cores)"
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
rm -rf "$BIN_DIR" # incomplete by definition here

# --- private apt configuration ------------------------------------------------
# Emit "URI<TAB>SUITE<TAB>COMPONENTS<TAB>SIGNED_BY" for every enabled `deb`
# entry of this machine's apt sources (deb822 *.sources and one-line files).
machine_deb_entries() {
  local f
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    awk '
      function flush(   i, j, nu, ns, u, s, isdeb, nt, t) {
        if (types != "" && tolower(enabled) != "no") {
          nt = split(types, t, /[ \t]+/); isdeb = 0
          for (i = 1; i <= nt; i++) if (t[i] == "deb") isdeb = 1
          if (isdeb) {
            nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
            for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
              if (u[i] != "" && s[j] != "")
                printf "%s\t%s\t%s\t%s\n", u[i], s[j], comps, signedby
          }
        }
        types = uris = suites = comps = signedby = enabled = ""; field = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]/ { next }                     # continuation (e.g. inline key)
      {
        key = tolower($0); sub(/:.*/, "", key)
        val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "components") comps = val
        else if (key == "signed-by") { if (val ~ /^\//) signedby = val }
        else if (key == "enabled") enabled = val
      }
      END { flush() }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk '
      /^[ \t]*deb[ \t]/ {
        line = $0; sub(/#.*/, "", line); opts = ""; signedby = ""
        if (match(line, /\[[^]]*\]/)) {
          opts = substr(line, RSTART + 1, RLENGTH - 2)
          line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
          n = split(opts, o, /[ \t]+/)
          for (i = 1; i <= n; i++) if (o[i] ~ /^signed-by=/) { signedby = o[i]; sub(/^signed-by=/, "", signedby) }
        }
        n = split(line, w, /[ \t]+/); k = 0
        for (i = 1; i <= n; i++) if (w[i] != "") f[++k] = w[i]
        if (k < 3) next
        comps = ""; for (i = 4; i <= k; i++) comps = comps (comps == "" ? "" : " ") f[i]
        printf "%s\t%s\t%s\t%s\n", f[2], f[3], comps, signedby
      }
    ' "$f"
  done
}

# shellcheck disable=SC1091
CODENAME=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
ARCH=$(dpkg --print-architecture)
APT_DIR="$WORK/apt"
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/sources.list.d"
SOURCES_LIST="$APT_DIR/sources.list"
: >"$SOURCES_LIST"
go_entry=""
while IFS=$'\t' read -r uri suite comps signedby; do
  opt=""
  [[ -n "$signedby" ]] && opt="[signed-by=$signedby] "
  printf 'deb %s%s %s %s\n' "$opt" "$uri" "$suite" "$comps" >>"$SOURCES_LIST"
  printf 'deb-src %s%s %s %s\n' "$opt" "$uri" "$suite" "$comps" >>"$SOURCES_LIST"
  # The release's own suite (not -security/-updates) of the main archive
  # tells where the Go toolchain's suite lives.
  if [[ -z "$go_entry" && "$suite" == "$CODENAME" && " $comps " == *" main "* ]]; then
    go_entry="$uri"$'\t'"$signedby"
  fi
done < <(machine_deb_entries | sort -u)
[[ -s "$SOURCES_LIST" ]] || die "found no enabled 'deb' entries in /etc/apt/sources.list{,.d}"
[[ -n "$go_entry" ]] || die "found no apt entry for suite '$CODENAME' with component main"
IFS=$'\t' read -r go_uri go_signedby <<<"$go_entry"
opt="arch=$ARCH"
[[ -n "$go_signedby" ]] && opt="$opt signed-by=$go_signedby"
printf 'deb [%s] %s %s main\n' "$opt" "$go_uri" "$GO_SUITE" >>"$SOURCES_LIST"
log "private apt sources ($SOURCES_LIST):"
sed 's/^/    /' "$SOURCES_LIST" >&2

APT_OPTS=(
  -o "Dir::Etc::sourcelist=$SOURCES_LIST"
  -o "Dir::Etc::sourceparts=$APT_DIR/sources.list.d"
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::Cache=$APT_DIR/cache"
  -o "Acquire::Languages=none"
  -o "APT::Architectures=$ARCH"
  -o "APT::Get::List-Cleanup=false"
)
log "apt-get update (private lists)"
apt-get "${APT_OPTS[@]}" -q update >&2

# --- downloads ----------------------------------------------------------------
# apt runs its downloads as _apt, which cannot enter a private $HOME; the
# "unsandboxed" warnings that result are harmless (hashes are still checked).
mkdir -p "$WORK/dl/src" "$WORK/dl/deb"
log "fetching source package kubernetes"
(cd "$WORK/dl/src" && apt-get "${APT_OPTS[@]}" -q source --download-only kubernetes >&2)
log "fetching golang-${GO_SERIES}-go, golang-${GO_SERIES}-src ($GO_SUITE), etcd-server, kubernetes-client"
# Go is only in $GO_SUITE; etcd-server and kubernetes-client resolve to the
# machine's own release, whose versions are higher than $GO_SUITE's.
(cd "$WORK/dl/deb" && apt-get "${APT_OPTS[@]}" -q download \
  "golang-${GO_SERIES}-go" "golang-${GO_SERIES}-src" etcd-server kubernetes-client >&2)
for deb in "$WORK"/dl/deb/kubernetes-client_*.deb; do
  [[ "$(dpkg-deb -f "$deb" Version)" == *"$K8S_UPSTREAM_VERSION"* ]] ||
    die "kubernetes-client is $(dpkg-deb -f "$deb" Version), expected $K8S_UPSTREAM_VERSION"
done

# --- unpack -------------------------------------------------------------------
log "unpacking Go ${GO_SERIES}"
for deb in "$WORK"/dl/deb/golang-*.deb; do dpkg-deb -x "$deb" "$WORK/go"; done
log "unpacking etcd-server, kubernetes-client"
for deb in "$WORK"/dl/deb/etcd-server_*.deb "$WORK"/dl/deb/kubernetes-client_*.deb; do
  dpkg-deb -x "$deb" "$WORK/pkgroot"
done
log "unpacking the kubernetes source package"
dsc=$(ls "$WORK"/dl/src/kubernetes_*.dsc)
[[ "$dsc" == *"$K8S_UPSTREAM_VERSION"* ]] || die "source package is $dsc, expected upstream $K8S_UPSTREAM_VERSION"
dpkg-source -x "$dsc" "$WORK/kubernetes" >&2
rm -rf "$WORK/dl"

# --- build (as debian/rules does) --------------------------------------------
export GOROOT="$WORK/go/usr/lib/go-${GO_SERIES}"
export PATH="$GOROOT/bin:$PATH"
export GOPATH="$WORK/kubernetes/.go"
export GOCACHE="$WORK/gocache"
export GO111MODULE=off
export CGO_ENABLED=0
export GOFLAGS=""
export GOPROXY=off
export HOME="$WORK/home"
mkdir -p "$HOME" "$GOCACHE" "$GOPATH/src/k8s.io"
ln -sfn ../../.. "$GOPATH/src/k8s.io/kubernetes"
go version >&2
[[ "$(go version)" == *"go${GO_SERIES}."* ]] || die "unexpected Go: $(go version)"

# Pin the version stamped into the binaries (reported by /version); the
# tarball's git-archive placeholders give the same, this just does not
# depend on them or on a git checkout around the cache.
cat >"$WORK/version-vars" <<EOF
KUBE_GIT_COMMIT='$K8S_GIT_COMMIT'
KUBE_GIT_TREE_STATE='archive'
KUBE_GIT_VERSION='v$K8S_UPSTREAM_VERSION'
KUBE_GIT_MAJOR='${K8S_UPSTREAM_VERSION%%.*}'
KUBE_GIT_MINOR='$(cut -d. -f2 <<<"$K8S_UPSTREAM_VERSION")'
EOF
export KUBE_GIT_VERSION_FILE="$WORK/version-vars"

log "building kube-apiserver and kube-controller-manager with $(go version | cut -d' ' -f3)"
make -C "$WORK/kubernetes" WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2

# --- publish --------------------------------------------------------------------
STAGE=$(mktemp -d "$CACHE_DIR/bin.new.XXXXXX")
install -m 0755 "$WORK/kubernetes/_output/bin/kube-apiserver" \
  "$WORK/kubernetes/_output/bin/kube-controller-manager" \
  "$WORK/pkgroot/usr/bin/etcd" "$WORK/pkgroot/usr/bin/kubectl" "$STAGE/"
"$STAGE/kube-apiserver" --version >&2
"$STAGE/kube-apiserver" --version | grep -qx "Kubernetes v$K8S_UPSTREAM_VERSION" ||
  die "kube-apiserver reports '$("$STAGE/kube-apiserver" --version)'"
"$STAGE/etcd" --version >&2
"$STAGE/kubectl" version --client --short >&2
date -u +%Y-%m-%dT%H:%M:%SZ >"$STAGE/.complete"
chmod 0755 "$STAGE"
mv -T "$STAGE" "$BIN_DIR"
log "built in $((SECONDS - started))s; binaries in $BIN_DIR"
printf '%s\n' "$BIN_DIR"
