#!/usr/bin/env bash
# The README's embedding example must be tools/embed_example.cc, which the build compiles:
# the first ```cpp block of README.md is compared with that file.
set -euo pipefail
cd "$1"
extracted=$(awk '/^```cpp$/{inside=1; next} /^```$/{if (inside) exit} inside' README.md)
if ! diff <(printf '%s\n' "$extracted") tools/embed_example.cc; then
  echo "README.md's example differs from tools/embed_example.cc (shown above)"; exit 1
fi
echo "README example matches tools/embed_example.cc"
