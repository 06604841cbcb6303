#!/bin/sh
# Fails when an #include crosses a layer boundary that docs/ARCHITECTURE.md forbids:
#   src/platform/  includes nothing from include/corepool/, src/ds/, a pool, src/capi/, and
#                  not error.h / inject.h (it is the bottom layer);
#   src/ds/        includes nothing from include/corepool/, a pool (src/<pool>/) or src/capi/;
#   bench/, tools/, examples/ and the DPDK driver (dpdk/) include no header of src/ (platform/,
#                  ds/, a pool's, capi/, inject.h, *_internal.h): they use the public API.
# Usage: check_layers.sh <source root>. Prints each crossing as file:line: include.
set -u
root=${1:?usage: check_layers.sh <source root>}
cd "$root" || exit 2

# Allowed crossings, one "file include" pair per line, each with the reason.
exceptions='
bench/platform_bench.cpp platform/rseq.h
bench/objpool/objpool_bench.cpp platform/rseq.h
bench/qmempool/qmempool_bench.cpp platform/rseq.h
tools/corepool-bench/c_bounds.cpp platform/rseq.h
tools/corepool-bench/c_bounds.cpp ds/thread_cache.h
tools/corepool-bench/percpu_seq.h platform/rseq.h
bench/percpu/percpu_bench.cpp platform/memory.h
dpdk/corepool_mempool.cpp ds/pcpu_cache.h
dpdk/corepool_mempool.cpp ds/cas_array.h
dpdk/corepool_mempool.cpp inject.h
'
# Why: platform_bench measures the rseq primitives themselves. The objpool, qmempool and
# c_bounds baselines are hand-written per-CPU caches that must read the CPU id exactly as the
# pools do (one TLS load, rseq_cpu_start) to be a fair bound; the public cp_current_cpu() is
# an out-of-line call. percpu_seq.h (the bound-percpu-seq bounds) runs the platform's
# restartable sequences, the ones the this_cpu operations run. c_bounds's bound-tier-inline
# compiles the pools' own thread-tier fast path (ds::thread_cache_get / put, no public API)
# into the caller, to measure what the call in front of it costs. percpu_bench's librseq-style
# baseline maps its per-CPU ranges the way the per-CPU allocator does (platform::os_alloc).
# The DPDK driver is built from ds tiers
# (the per-CPU cache, the overflow CAS array), which have no public API, and uses its
# fault-injection points in tests.

pools=$(for d in src/*/; do
  n=$(basename "$d")
  case $n in platform | ds | capi) ;; *) printf '%s|' "$n" ;; esac
done)
pools=${pools%|}

fail=0
# check <files-or-dirs> <extended regex of forbidden included paths>
check() {
  pat=$2
  files=$(find $1 -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' \) \
    2>/dev/null | sort)
  for f in $files; do
    grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" | while IFS= read -r line; do
      inc=$(printf '%s\n' "$line" | sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]*)[">].*/\1/')
      printf '%s\n' "$inc" | grep -qE "$pat" || continue
      if printf '%s\n' "$exceptions" | grep -qxF "$f $inc"; then continue; fi
      echo "$f:${line%%:*}: includes $inc"
    done
  done
}

out=$(
  check src/platform "^(corepool/|ds/|capi/|($pools)/|error\.h$|inject\.h$|\.\./)"
  check src/ds "^(corepool/|capi/|($pools)/|\.\./)"
  check "bench tools examples dpdk" "^(platform/|ds/|capi/|($pools)/|\.\./)|(^|/)inject\.h$|_internal\.h$"
)
if [ -n "$out" ]; then
  echo "layering check: includes that cross a layer boundary (see docs/ARCHITECTURE.md):"
  printf '%s\n' "$out"
  fail=1
fi

# Every exception must still be needed, so the list shrinks as the code is fixed.
stale=$(printf '%s\n' "$exceptions" | while read -r f inc; do
  [ -n "$f" ] || continue
  grep -qE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]$inc[\">]" "$f" 2>/dev/null ||
    echo "layering check: stale exception (no longer included): $f $inc"
done)
if [ -n "$stale" ]; then
  printf '%s\n' "$stale"
  fail=1
fi

[ $fail -eq 0 ] && echo "layering check: ok"
exit $fail
