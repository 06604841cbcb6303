#!/usr/bin/env bash
# consumer.sh <build dir> <scratch dir> <this dir>
# Installs into a scratch prefix, then builds outside programs against both libraries: with
# find_package(corepool) and with pkg-config (corepool: shared, corepool-static: static).
set -euo pipefail
build=$1 work=$2 here=$3
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix"
# The default install is the library, headers and packaging only: no programs.
if [ -d "$prefix/bin" ] && [ -n "$(ls -A "$prefix/bin")" ]; then
  echo "programs installed by default: $(ls "$prefix/bin")" >&2
  exit 1
fi
libdir=$(dirname "$(find "$prefix" -name libcorepool.a | head -1)")
test -f "$libdir/libcorepool.a"
test -e "$libdir/libcorepool.so"

# linked_shared <program> yes|no: whether it needs libcorepool.so at run time.
linked_shared() {
  if readelf -d "$1" | grep -q 'NEEDED.*libcorepool\.so'; then got=yes; else got=no; fi
  if [ "$got" != "$2" ]; then
    echo "$1: expected shared corepool '$2', found '$got'" >&2
    exit 1
  fi
}

# 1. CMake package: one program per exported target.
cmake -S "$here/cmake_consumer" -B "$work/cm" -G Ninja -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$work/cm"
linked_shared "$work/cm/consumer_shared" yes
linked_shared "$work/cm/consumer_static" no
"$work/cm/consumer_shared"  # found through the RUNPATH CMake writes into the build tree
"$work/cm/consumer_static"

# 2. pkg-config, plain C11 programs.
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs corepool)
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror "$here/consumer.c" -o "$work/c_shared" $flags
linked_shared "$work/c_shared" yes
LD_LIBRARY_PATH=$libdir "$work/c_shared"
sflags=$(pkg-config --cflags --libs corepool-static)
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror "$here/consumer.c" -o "$work/c_static" $sflags
linked_shared "$work/c_static" no
"$work/c_static"
echo "install consumer: ok"
