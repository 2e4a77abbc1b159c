#!/usr/bin/env bash
# Every public header must compile on its own (it includes what it uses).
# usage: check_headers.sh SOURCE_ROOT BUILD_DIR CXX [CXXFLAGS...] -- HEADER...
set -euo pipefail
root=$1 build=$2; shift 2
cxx=()
while [ "$1" != "--" ]; do cxx+=("$1"); shift; done
shift
failed=0
for header in "$@"; do
  if ! echo "#include \"$header\"" |
      "${cxx[@]}" -std=c++20 -fsyntax-only -Wall -Wextra -I"$root" -I"$build" -x c++ - ; then
    echo "not self-contained: $header"; failed=1
  fi
done
[ $failed -eq 0 ] && echo "headers: $# compile on their own"
exit $failed
