#!/usr/bin/env bash
# Installs the build into a scratch directory and consumes it as another project would:
# builds the README's embedding example out of tree with `pkg-config ringmesh` alone, and
# compiles every installed header on its own against the installed tree only, so a public
# header that pulls in a private (uninstalled) one fails here; and configures a project that
# takes ringmesh as a meson subproject.
# usage: check_install.sh SOURCE_ROOT BUILD_DIR
set -euo pipefail
source_root=$(cd "$1" && pwd)
build_dir=$(cd "$2" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
meson install -C "$build_dir" --destdir "$scratch/root" --no-rebuild --quiet >/dev/null
pc=$(find "$scratch/root" -name ringmesh.pc | head -1)
[ -n "$pc" ] || { echo "install: no ringmesh.pc was installed"; exit 1; }
# Relocated to where it was installed (a sysroot would also move the system's -I paths).
prefix=$(sed -n 's/^prefix=//p' "$pc")
sed -i "s|^prefix=.*|prefix=$scratch/root$prefix|" "$pc"
export PKG_CONFIG_PATH="$(dirname "$pc")"
read -r -a cflags <<<"$(pkg-config --cflags ringmesh)"
read -r -a libs <<<"$(pkg-config --libs ringmesh)"
cxx=${CXX:-c++}
# 1. The embedding example, out of tree, with nothing but what was installed.
"$cxx" "${cflags[@]}" "$source_root/tools/embed_example.cc" "${libs[@]}" -o "$scratch/embed_example"
# 2. Every installed header on its own (two at a time), warnings on: the public headers
#    include what they use, and nothing private.
include_root=$(dirname "$(find "$scratch/root" -path '*/include/ringmesh/engine' -type d | head -1)")
mapfile -t headers < <(cd "$include_root" && find . -name '*.h' | sed 's|^\./||' | sort)
printf '%s\n' "${headers[@]}" | xargs -P 2 -I{} sh -c \
  'printf "#include \"%s\"\n" "$1" | "$0" -fsyntax-only -Wall -Wextra -x c++ - '"${cflags[*]}"' ||
   { echo "install: $1 does not compile on its own from the installed tree"; exit 255; }' \
  "$cxx" {}
# 3. As a meson subproject: dependency('ringmesh', fallback : ...) resolves (configure only;
#    building it again would take minutes).
mkdir -p "$scratch/consumer/subprojects"
ln -s "$source_root" "$scratch/consumer/subprojects/ringmesh"
cat >"$scratch/consumer/meson.build" <<'MESON'
project('consumer', 'cpp', default_options : ['cpp_std=c++20'])
ringmesh = dependency('ringmesh', fallback : ['ringmesh', 'ringmesh_dep'])
executable('embed_example', 'embed_example.cc', dependencies : ringmesh)
MESON
cp "$source_root/tools/embed_example.cc" "$scratch/consumer/"
meson setup "$scratch/consumer/build" "$scratch/consumer" -Dringmesh:tests=disabled \
  -Dringmesh:bench=disabled -Dringmesh:tools=disabled >"$scratch/subproject.log" 2>&1 ||
  { cat "$scratch/subproject.log"; echo "install: ringmesh does not configure as a subproject"; exit 1; }
# 4. With the tools built: the daemon and its example systemd unit are installed, and the
#    unit is one systemd accepts (where systemd-analyze exists).
node_binary=$(find "$scratch/root" -name ringmesh_node -type f | head -1)
if [ -n "$node_binary" ]; then
  unit=$(find "$scratch/root" -name ringmesh-node.service | head -1)
  [ -n "$unit" ] || { echo "install: the example systemd unit was not installed"; exit 1; }
  if command -v systemd-analyze >/dev/null; then
    sed "s|^ExecStart=[^ ]*|ExecStart=$node_binary|" "$unit" >"$scratch/ringmesh-node.service"
    systemd-analyze verify --man=no "$scratch/ringmesh-node.service"
  fi
fi
echo "install: ${#headers[@]} headers, ringmesh.pc and the libraries consumed out of tree;" \
  "configured as a meson subproject"
