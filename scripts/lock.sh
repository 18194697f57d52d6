#!/usr/bin/env bash
# The dependency lock: requirements/*.txt pin the whole tree (every version, and the sha256 of every
# file of it) for every platform and Python that pyproject.toml allows (uv pip compile --universal).
# pip installs them with --require-hashes: the Makefile's venv (dev.txt + build.txt) and the image
# (runtime.txt + build.txt). uv itself comes from dev.txt, so run this from the project's venv.
#
#   scripts/lock.sh                     after pyproject.toml changed: add, drop or move only what it
#                                       asks for, keeping every other pin (make lock)
#   scripts/lock.sh --upgrade [NAME..]  move everything (or the named packages) to the newest allowed
#   scripts/lock.sh --check             fail if requirements/ does not satisfy pyproject.toml exactly
#
# Why not uv.lock: it records the index's URL for every package and file, and this project names no
# registry host in its files; these exports carry the same pins and hashes without them.
set -euo pipefail
cd "$(dirname "$0")/.."

UV=$(realpath "${UV:-.venv/bin/uv}")
export UV_PYTHON_DOWNLOADS=never # a missing interpreter is an error, never a download

# compile DIR [uv options]: (re)write DIR/{dev,runtime,build}.txt, keeping the pins they hold.
compile() {
  local dir=$1
  shift
  local common=(pip compile --quiet --universal --python-version 3.11 --generate-hashes
    --custom-compile-command "make lock" "$@")
  # Development and CI: the project's dependencies and the dev extra.
  "$UV" "${common[@]}" pyproject.toml --extra dev -o "$dir/dev.txt"
  # The image: the project's dependencies only, at the versions dev.txt pins.
  "$UV" "${common[@]}" pyproject.toml -c "$dir/dev.txt" -o "$dir/runtime.txt"
  # The build backend, for pip --no-build-isolation.
  "$UV" "${common[@]}" --group pyproject.toml:build -o "$dir/build.txt"
}

case "${1:-}" in
--check)
  # Compile again in a copy (same relative paths, so the files come out byte for byte the same).
  fresh=$(mktemp -d)
  trap 'rm -rf "$fresh"' EXIT
  mkdir "$fresh/requirements"
  cp pyproject.toml "$fresh/"
  cp requirements/dev.txt requirements/runtime.txt requirements/build.txt "$fresh/requirements/"
  (cd "$fresh" && compile requirements)
  for name in dev runtime build; do
    if ! diff -u "requirements/$name.txt" "$fresh/requirements/$name.txt" >&2; then
      echo "requirements/$name.txt does not match pyproject.toml: run \`make lock\` and commit requirements/" >&2
      exit 1
    fi
  done
  ;;
--upgrade)
  shift
  if (($# == 0)); then
    compile requirements --upgrade
  else
    compile requirements "${@/#/--upgrade-package=}"
  fi
  ;;
"")
  compile requirements
  ;;
*)
  echo "usage: $0 [--check | --upgrade [PACKAGE...]]" >&2
  exit 2
  ;;
esac
