#!/bin/bash
# testpmd io forwarding between two net_null vdevs, no hugepages or NICs, with the mbuf pool
# on each mempool ops in turn; prints the forwarded packets per second (Rx-pps of both
# ports summed, as testpmd measures it over one interval) for each ops, rounds interleaved
# so that every ops sees the same machine load, and the median per ops.
#
#   testpmd_pps.sh [-d driver.so] [-o "corepool ring_mp_mc stack"] [-r rounds]
#                  [-w warmup_s] [-t measure_s] [-c mbcache] [-v vdev-kind]
#
# testpmd runs interactively (-i) with commands on stdin: after the warm-up a first
# "show port stats all" starts the interval, the second one reports Rx-pps; then stop, quit.
# -c 0 turns testpmd's per-lcore mempool cache off, so that every mbuf alloc/free reaches
# the ops driver (with the default cache of 250 most never do).
set -u
driver=""; ops_list="corepool ring_mp_mc stack"; rounds=3; warm=2; meas=3; mbcache=250
vdev=net_null
while getopts "d:o:r:w:t:c:v:" o; do
  case $o in
    d) driver=$OPTARG ;; o) ops_list=$OPTARG ;; r) rounds=$OPTARG ;; w) warm=$OPTARG ;;
    t) meas=$OPTARG ;; c) mbcache=$OPTARG ;; v) vdev=$OPTARG ;;
    *) sed -n 2,14p "$0"; exit 2 ;;
  esac
done
testpmd=${DPDK_TESTPMD_BIN:-dpdk-testpmd}
log=$(mktemp /tmp/cp-testpmd.XXXXXX)
trap 'rm -f "$log"' EXIT

run_one() {  # $1 = ops; prints the pps or "fail"
  local ops=$1 eal=(--no-huge -m 1024 --no-pci --no-shconf -l 0-1 --file-prefix=cpb$$
                    --vdev="${vdev}0" --vdev="${vdev}1" --mbuf-pool-ops-name="$ops")
  [ -n "$driver" ] && eal+=(-d "$driver")
  { sleep "$warm"; echo "show port stats all"; sleep "$meas"; echo "show port stats all"
    echo stop; echo quit; } |
    timeout $((warm + meas + 60)) "$testpmd" "${eal[@]}" -- -i --forward-mode=io \
      --auto-start --total-num-mbufs=16384 --mbcache="$mbcache" >"$log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] || ! grep -q "preferred mempool ops selected: $ops" "$log"; then
    echo fail; echo "testpmd on $ops failed (rc $rc):" >&2; tail -20 "$log" >&2; return
  fi
  # the last two Rx-pps lines are the second report's ports 0 and 1
  grep "Rx-pps:" "$log" | tail -2 | awk '{ s += $2 } END { printf "%d\n", s }'
}

declare -A all
echo "testpmd io forwarding, ${vdev}0 <-> ${vdev}1, --total-num-mbufs=16384 --mbcache=$mbcache," \
     "lcores 0-1, ${meas}s intervals after ${warm}s warm-up, $rounds rounds"
for ((r = 1; r <= rounds; r++)); do
  line="round $r:"
  for ops in $ops_list; do
    pps=$(run_one "$ops")
    all[$ops]="${all[$ops]:-} $pps"
    line+=" $ops=$pps"
  done
  echo "$line"
done
printf "%-12s %14s   %s\n" ops "median pps" "all rounds"
for ops in $ops_list; do
  med=$(echo ${all[$ops]} | tr ' ' '\n' | grep -v fail | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "fail" }')
  printf "%-12s %14s   %s\n" "$ops" "$med" "${all[$ops]}"
done
