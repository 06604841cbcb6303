#!/usr/bin/env bash
# compile_all.sh <cxx> <source dir> <scratch dir>: compile every library source for the target.
set -euo pipefail
cxx=$1 src=$2 out=$3
mkdir -p "$out"
n=0
while IFS= read -r f; do
  "$cxx" -std=c++20 -Wall -Wextra -Werror -I"$src/include" -I"$src/src" -c "$f" -o "$out/x.o"
  n=$((n + 1))
done < <(find "$src/src" -name '*.cpp' | sort)
echo "compiled $n sources with $cxx"
