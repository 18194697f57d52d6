# Sourced by the build scripts: their log lines, and the one way a cached build is found or made.
# Before sourcing, set TAG (the log prefix); before calling cached_or_locked, CACHE_DIR and BIN_DIR.

log() { printf '[%s] %s\n' "$TAG" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# cached_or_locked CHECK: when the command CHECK says the cache is complete, print BIN_DIR and exit;
# otherwise take the cache's lock (waiting while a concurrent run builds, e.g. parallel test workers)
# and check again, so that the caller builds only when nobody else has.
cached_or_locked() {
  if "$1"; then
    log "cached binaries found in $BIN_DIR"
    printf '%s\n' "$BIN_DIR"
    exit 0
  fi
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/.lock"
  if ! flock -n 9; then
    log "another build holds $CACHE_DIR/.lock; waiting for it"
    flock 9
  fi
  if "$1"; then
    log "cached binaries found in $BIN_DIR (built by a concurrent run)"
    printf '%s\n' "$BIN_DIR"
    exit 0
  fi
}
