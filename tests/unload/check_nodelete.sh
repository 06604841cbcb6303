#!/bin/sh
# Every shared object built here that contains restartable sequences (a __rseq_cs section)
# must be marked NODELETE (linked with -z nodelete): dlclose must never unmap a descriptor
# that a thread's rseq_cs may still point at. Also checks each EXPECTED object by name, so
# that the scan cannot pass by finding nothing.
#   usage: check_nodelete.sh BUILD_DIR EXPECTED.so...
build=$1
shift
fail=0
has_nodelete() { readelf -d "$1" | grep -q 'FLAGS_1.*NODELETE'; }
for so in "$@"; do
  if [ ! -f "$so" ]; then
    echo "FAIL: $so is missing"; fail=1
  elif has_nodelete "$so"; then
    echo "ok: $so is NODELETE"
  else
    echo "FAIL: $so is not NODELETE (link it with -Wl,-z,nodelete)"; fail=1
  fi
done
n=0
for so in $(find "$build" -name '*.so*' -type f); do
  readelf -h "$so" >/dev/null 2>&1 || continue
  readelf -S -W "$so" | grep -q ' __rseq_cs ' || continue
  n=$((n + 1))
  if ! has_nodelete "$so"; then
    echo "FAIL: $so has restartable sequences and is not NODELETE"; fail=1
  fi
done
echo "$n shared objects with restartable sequences under $build"
exit $fail
