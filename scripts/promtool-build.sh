#!/usr/bin/env bash
# promtool for the alerting rules' checks and unit tests, from Debian's `prometheus` package: the .deb is
# downloaded (apt-get download, verified by apt) and only promtool is unpacked from it, into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/promtool-<package version>/bin/promtool
# Nothing is installed system-wide, so no Prometheus server (the package's main program) starts on the
# machine. A second run only checks the cache and returns at once.
#
# Progress goes to stderr; the last line of stdout is the bin directory:
#   PROMTOOL="$(scripts/promtool-build.sh | tail -n1)/promtool"
set -euo pipefail

TAG=promtool-build
. "$(dirname "${BASH_SOURCE[0]}")/build-cache.sh"

candidate() { apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}'; }
version=$(candidate)
if [[ -z "$version" || "$version" == "(none)" ]]; then
  log "no apt lists for prometheus yet: apt-get update"
  apt-get update >&2 || die "apt-get update failed (needs root)"
  version=$(candidate)
fi
[[ -n "$version" && "$version" != "(none)" ]] || die "Debian's prometheus package is not available from this machine's apt sources"

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/entra-webhook/promtool-${version//[^A-Za-z0-9.+-]/_}"
BIN_DIR="$CACHE_DIR/bin"
complete() { [[ -x "$BIN_DIR/promtool" ]]; }
cached_or_locked complete

WORK=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "downloading prometheus $version to unpack promtool"
# apt runs downloads as _apt, which may not enter a private directory: let it write there.
chmod 0777 "$WORK"
(cd "$WORK" && apt-get download "prometheus=$version" >&2)
dpkg-deb -x "$WORK"/prometheus_*.deb "$WORK/root"
mkdir -p "$WORK/bin"
install -m 0755 "$WORK/root/usr/bin/promtool" "$WORK/bin/promtool"
"$WORK/bin/promtool" --version >&2
rm -rf "$BIN_DIR"
mv -T "$WORK/bin" "$BIN_DIR"
printf '%s\n' "$BIN_DIR"
