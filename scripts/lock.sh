#!/usr/bin/env bash
# The dependency lock: uv.lock (the whole tree, every file's hash, all platforms and Pythons that
# pyproject.toml allows) and its exports under requirements/, which pip installs with
# --require-hashes (the Makefile's venv and the Dockerfile). uv itself comes from the lock, so run
# this from the project's venv (make lock).
#
#   scripts/lock.sh            re-resolve after pyproject.toml changed, and re-export
#   scripts/lock.sh --check    fail if uv.lock or requirements/ does not match pyproject.toml
set -euo pipefail
cd "$(dirname "$0")/.."

UV=${UV:-.venv/bin/uv}
# A missing interpreter is an error, never a download.
export UV_PYTHON_DOWNLOADS=never

export_to() {
  local dir=$1
  local common=(export --frozen --format requirements.txt --no-emit-project --quiet)
  mkdir -p "$dir"
  # The image: the runtime dependencies only.
  "$UV" "${common[@]}" --no-default-groups -o "$dir/runtime.txt"
  # Development and CI: runtime plus the dev extra.
  "$UV" "${common[@]}" --no-default-groups --extra dev -o "$dir/dev.txt"
  # The build backend, for pip --no-build-isolation.
  "$UV" "${common[@]}" --only-group build -o "$dir/build.txt"
}

if [[ "${1:-}" == --check ]]; then
  if ! "$UV" lock --check --quiet; then
    echo "uv.lock does not match pyproject.toml: run \`make lock\` and commit uv.lock and requirements/" >&2
    exit 1
  fi
  fresh=$(mktemp -d)
  trap 'rm -rf "$fresh"' EXIT
  export_to "$fresh"
  # The exports name their output file in their header; compare what they pin.
  for name in runtime dev build; do
    if ! diff -u -I '^#' "requirements/$name.txt" "$fresh/$name.txt" >&2; then
      echo "requirements/$name.txt is not the export of uv.lock: run \`make lock\` and commit requirements/" >&2
      exit 1
    fi
  done
  exit 0
fi

"$UV" lock
export_to requirements
