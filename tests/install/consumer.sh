#!/usr/bin/env bash
# consumer.sh <build dir> <scratch dir> <this dir>
set -euo pipefail
build=$1 work=$2 here=$3
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" 

# 1. CMake package
cmake -S "$here/cmake_consumer" -B "$work/cm" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" 
cmake --build "$work/cm" 
"$work/cm/consumer"

# 2. pkg-config, plain C11 program
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/lib64/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig
flags=$(pkg-config --cflags --libs corepool)
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror "$here/consumer.c" -o "$work/c_consumer" $flags
"$work/c_consumer"
sflags=$(pkg-config --static --cflags --libs corepool)
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror "$here/consumer.c" -o "$work/c_consumer_static" $sflags
"$work/c_consumer_static"
echo "install consumer: ok"
