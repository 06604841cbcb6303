#!/bin/bash
# DPDK's own mempool_perf_autotest (dpdk-test from Debian's dpdk-dev) with its "default_pool"
# on each mempool ops in turn, beside the test's own ring_mp_mc pool of the same run.
#
#   mempool_perf.sh [-d driver.so] [-o "corepool stack"] [-r rounds] [-s scale]
#                   [-p tsc_scale.so] [-k csv]
#
# The test first runs every case (get bulk x put bulk x objects kept, on 1, 2 and all lcores)
# on a pool without cache created by rte_mempool_create() (ring_mp_mc), then the same cases
# on "default_pool", whose ops --mbuf-pool-ops-name names: those two parts are compared here,
# and the script stops the test when it reaches its cached pools (ring_mp_mc again).
# Lcores 0-1: "all lcores" is 2 again and counts as a second sample of the 2-lcore case.
# Each case runs 5 s; -s N (with -p, the library built from tsc_scale.cpp) divides the TSC
# frequency DPDK reports by N, so each case runs 5/N s; rates are multiplied back by N.
# Prints the cases with equal get and put bulks and 128 objects kept, the geometric mean of
# ops / ring_mp_mc over all cases, per lcore count; -k keeps every sample as CSV.
set -u
driver=""; ops_list="corepool stack"; rounds=1; scale=1; shim=""; keep=""
while getopts "d:o:r:s:p:k:" o; do
  case $o in
    d) driver=$OPTARG ;; o) ops_list=$OPTARG ;; r) rounds=$OPTARG ;; s) scale=$OPTARG ;;
    p) shim=$OPTARG ;; k) keep=$OPTARG ;;
    *) sed -n 2,17p "$0"; exit 2 ;;
  esac
done
if [ "$scale" != 1 ] && [ -z "$shim" ]; then echo "-s needs -p tsc_scale.so" >&2; exit 2; fi
dpdk_test=${DPDK_TEST_BIN:-dpdk-test}
log=$(mktemp /tmp/cp-mempool-perf.XXXXXX)
csv=$(mktemp /tmp/cp-mempool-perf-csv.XXXXXX)
trap 'rm -f "$log" "$csv"' EXIT

run_one() {  # $1 = ops, $2 = round: appends "round,pool,cores,get,put,keep,const,rate" to $csv
  local ops=$1 round=$2 pid
  local eal=(--no-huge -m 512 --no-pci --no-shconf -l 0-1 --file-prefix=cpm$$
             --mbuf-pool-ops-name="$ops")
  [ -n "$driver" ] && eal+=(-d "$driver")
  local env_args=(DPDK_TEST=mempool_perf_autotest COREPOOL_TSC_SCALE="$scale")
  [ -n "$shim" ] && env_args+=(LD_PRELOAD="$(realpath "$shim")")
  # line-buffered, so the log is complete up to the moment the test is stopped
  env "${env_args[@]}" stdbuf -oL "$dpdk_test" "${eal[@]}" </dev/null >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if grep -q "start performance test (with cache)" "$log"; then kill "$pid"; break; fi
    sleep 1
  done
  wait "$pid" 2>/dev/null
  if ! grep -q "start performance test (with cache)" "$log"; then
    echo "dpdk-test on $ops stopped early:" >&2; tail -20 "$log" >&2; return 1
  fi
  awk -v round="$round" -v scale="$scale" '
    /^start performance test \(without cache\)/ { pool = "ring_mp_mc"; next }
    /^start performance test for .* \(without cache\)/ { pool = $5; next }
    /^start performance test \(with cache\)/ { exit }
    /^mempool_autotest cache=0 / && pool != "" {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["rate_persec"] == "") next
      printf "%s,%s,%s,%s,%s,%s,%s,%.0f\n", round, pool, f["cores"], f["n_get_bulk"],
             f["n_put_bulk"], f["n_keep"], f["constant_n"], f["rate_persec"] * scale
    }' "$log" >>"$csv"
}

echo "mempool_perf_autotest, lcores 0-1, default_pool on each of: $ops_list;" \
     "$rounds round(s), $(awk -v s="$scale" 'BEGIN { print 5 / s }') s per case"
for ((r = 1; r <= rounds; r++)); do
  for ops in $ops_list; do run_one "$ops" "$r" || exit 1; done
done
[ -n "$keep" ] && cp "$csv" "$keep"
# ring_mp_mc runs in every ops's run: its median over all of them is the reference
awk -F, -v ops_list="$ops_list" '
  function median(key,   n, i, j, t, a) {
    n = split(samples[key], a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0
  }
  { key = $2 SUBSEP $3 SUBSEP $4 SUBSEP $5 SUBSEP $6 SUBSEP $7
    samples[key] = samples[key] " " $8; cases[$3 SUBSEP $4 SUBSEP $5 SUBSEP $6 SUBSEP $7] = 1 }
  END {
    n_ops = split(ops_list, ops, " ")
    for (c = 1; c <= 2; c++) {
      printf "\n%d lcore(s), Mobj/s (median)       ring_mp_mc", c
      for (k = 1; k <= n_ops; k++) printf " %12s %7s", ops[k], "/ ring"
      printf "\n"
      for (b = 1; b <= 32; b *= 2) {
        if (b == 2 || b == 16) continue
        r = median("ring_mp_mc" SUBSEP c SUBSEP b SUBSEP b SUBSEP 128 SUBSEP 0)
        if (r == 0) continue
        printf "get %2d put %2d keep 128              %10.1f", b, b, r / 1e6
        for (k = 1; k <= n_ops; k++) {
          v = median(ops[k] SUBSEP c SUBSEP b SUBSEP b SUBSEP 128 SUBSEP 0)
          printf " %12.1f %6.2fx", v / 1e6, v / r
        }
        printf "\n"
      }
      printf "geometric mean over all cases          "
      for (k = 1; k <= n_ops; k++) {
        s = 0; n = 0
        for (cs in cases) {
          split(cs, p, SUBSEP); if (p[1] != c) continue
          r = median("ring_mp_mc" SUBSEP cs); v = median(ops[k] SUBSEP cs)
          if (r > 0 && v > 0) { s += log(v / r); n++ }
        }
        printf " %12s %6.2fx", "(" n " cases)", n ? exp(s / n) : 0
      }
      printf "\n"
    }
  }' "$csv"
