#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy, every warning an error) over the library, the
# tools and the bench, with the build's compile commands.
# usage: check_tidy.sh SOURCE_ROOT BUILD_DIR
set -euo pipefail
source_root=$(cd "$1" && pwd)
build_dir=$2
runner=$(command -v run-clang-tidy || command -v run-clang-tidy-14 || true)
if [ -z "$runner" ] || ! command -v clang-tidy >/dev/null; then
  echo "clang-tidy is not installed: skipping the clang-tidy check"; exit 77
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if "$runner" -p "$build_dir" -j "$(nproc)" -quiet \
     "$source_root/(engine|transport|tools|bench)/.*\.cc\$" >"$log" 2>&1; then
  echo "clang-tidy: engine/, transport/, tools/ and bench/ clean"
else
  # Only the diagnostics (the runner also echoes each command line).
  grep -E "(warning|error):" "$log" | sed 's/\x1b\[[0-9;]*m//g' | sort -u
  echo "clang-tidy: findings above (see .clang-tidy for the checks)"
  exit 1
fi
