#!/bin/bash
# Runs one of DPDK's own unit tests (dpdk-test from Debian's dpdk-dev) without hugepages or
# NICs, optionally with mbuf/default pools on a mempool ops driver loaded with -d.
#
#   run_autotest.sh <test> [<driver.so or ""> <ops-name> <pool-name>...]
#
# dpdk-test runs the command named by the DPDK_TEST environment variable and exits with its
# result (0 = "Test OK"). --mbuf-pool-ops-name sets rte_mbuf_best_mempool_ops(), which every
# rte_pktmbuf_pool_create() uses (all pools of mbuf_autotest) and which mempool_autotest
# uses for its "default_pool" (the other pools of mempool_autotest name their ops
# explicitly: ring_mp_mc through rte_mempool_create(), and stack).
#
# With a driver, each <pool-name> must be proven to have run on <ops-name>: rte_mempool_dump
# in the test output must show "mempool <pool-name>" with "ops_name: <ops-name>", and, for
# the corepool driver, its own log line "corepool: pool <pool-name> freed ..." must report
# a nonzero number of dequeue calls (the driver counts the calls it served at debug level).
set -u
test_name=$1; shift
driver=${1:-}; ops=${2:-}; shift 2 2>/dev/null || true
dpdk_test=${DPDK_TEST_BIN:-dpdk-test}
log=$(mktemp /tmp/cp-dpdk-test.XXXXXX)
trap 'rm -f "$log"' EXIT

args=(--no-huge -m 512 --no-pci --no-shconf -l 0-1 --file-prefix=cpt$$)
if [ -n "$driver" ]; then
  # EAL refuses to load a plugin from a path with a world-writable directory in it (a clone
  # under /tmp, as CI may use): load a private copy from a directory only we can write.
  safe=$(mktemp -d "${HOME:-/root}/.corepool-dpdk.XXXXXX")
  chmod 700 "$safe"
  cp "$driver" "$safe/"
  driver=$safe/$(basename "$driver")
  trap 'rm -f "$log"; rm -rf "$safe"' EXIT
  args+=(-d "$driver")
fi
[ -n "$ops" ] && args+=(--mbuf-pool-ops-name="$ops")
# the corepool driver counts its enqueue and dequeue calls only at debug level
[ "$ops" = corepool ] && args+=(--log-level=pmd.mempool.corepool:debug)
echo "+ DPDK_TEST=$test_name ${DPDK_TEST_PRELOAD:+LD_PRELOAD=\"$DPDK_TEST_PRELOAD\" }$dpdk_test ${args[*]}"
# DPDK_TEST_PRELOAD: sanitizer runtimes, for a driver built with sanitizers (dpdk-test is not)
preload=()
[ -n "${DPDK_TEST_PRELOAD:-}" ] && preload=("LD_PRELOAD=$DPDK_TEST_PRELOAD")
env DPDK_TEST="$test_name" "${preload[@]}" timeout 300 "$dpdk_test" "${args[@]}" \
  </dev/null >"$log" 2>&1
rc=$?
grep -E "corepool|Test OK|Test Failed|EAL: Error|PANIC" "$log" | head -50
if [ $rc -ne 0 ] || ! grep -q "^Test OK" "$log"; then
  echo "FAIL: $test_name exited with $rc"; tail -40 "$log"; exit 1
fi
for pool in "$@"; do
  dumped=$(awk -v p="mempool <$pool>@" '
        index($0, p) == 1 { inpool = 1; next }
        /^mempool </ { inpool = 0 }
        inpool && /ops_name:/ { print $2; exit }' "$log")
  # rte_mempool_dump output, where the test dumps the pool, must name the ops
  if [ -n "$dumped" ] && [ "$dumped" != "<$ops>" ]; then
    echo "FAIL: pool $pool was dumped with ops $dumped, not <$ops>"; exit 1
  fi
  if [ "$ops" = corepool ]; then
    # the driver's own counters: it served this pool's dequeues
    line=$(grep -E "corepool: pool $pool freed" "$log" | head -1)
    deq=$(echo "$line" | sed -nE 's/.* ([0-9]+) dequeue calls.*/\1/p')
    if [ -z "$deq" ] || [ "$deq" -eq 0 ]; then
      echo "FAIL: the corepool driver served no dequeue for pool $pool: '$line'"; exit 1
    fi
  elif [ -z "$dumped" ]; then
    echo "FAIL: pool $pool was not dumped"; exit 1
  fi
  echo "ok: pool $pool ran on $ops"
done
echo "PASS: $test_name ${ops:+on $ops}"
