#!/bin/sh
# Runs a program in a private mount namespace where /sys/devices/system/cpu/possible reads
# LIST (e.g. "0": a container whose possible-CPU mask is smaller than the CPUs its threads
# run on). Exits 77 (ctest: skipped) when a mount namespace or the bind mount is not
# permitted here (not root, no unshare(1)).
#   usage: with_possible_cpus.sh LIST PROGRAM [ARGS...]
list=$1
shift
command -v unshare >/dev/null 2>&1 || { echo "skipped: no unshare(1)"; exit 77; }
file=$(mktemp) || exit 1
trap 'rm -f "$file"' EXIT
echo "$list" >"$file"
unshare -m true 2>/dev/null || { echo "skipped: unshare -m is not permitted"; exit 77; }
unshare -m sh -c '
  f=$1; l=$2; shift 2
  mount --bind "$f" /sys/devices/system/cpu/possible 2>/dev/null ||
    { echo "skipped: cannot bind-mount over /sys/devices/system/cpu/possible"; exit 77; }
  [ "$(cat /sys/devices/system/cpu/possible)" = "$l" ] || { echo "skipped: the mount did not take"; exit 77; }
  echo "possible CPUs: $l (online: $(cat /sys/devices/system/cpu/online))"
  exec "$@"' sh "$file" "$list" "$@"
