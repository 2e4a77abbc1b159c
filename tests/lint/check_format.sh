#!/usr/bin/env bash
# Fails when a C++ source differs from what .clang-format makes of it.
set -euo pipefail
cd "$1"
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.h' '*.cc' 2>/dev/null ||
                     find engine transport tools bench tests -name '*.h' -o -name '*.cc')
if ! command -v clang-format >/dev/null; then
  echo "clang-format is not installed: skipping the format check"; exit 77
fi
clang-format --dry-run --Werror "${files[@]}"
echo "format: ${#files[@]} files clean"
