// striped_counter: slow paths and the owning counter (protocol in striped_counter.h).
#include "ds/striped_counter.h"

#include <cstring>
#include <new>

#include "platform/topology.h"

namespace corepool::ds {
namespace detail {

__thread bool t_stripe_force_atomic = false;

namespace {
// Per-thread atomic stripe index: 0 until the thread's first atomic add, then 1 + a
// round-robin value (plain TLS: async-signal-safe in a signal handler's first use too).
__thread uint32_t t_atomic_index __attribute__((tls_model("initial-exec"))) = 0;
std::atomic<uint32_t> g_next_index{0};

// T1: the bit is set before the first add to stripe i (the OR precedes the add).
inline void touch(std::atomic<uint64_t> &mask, uint64_t i) noexcept {
  if (!((mask.load(std::memory_order_relaxed) >> i) & 1))
    mask.fetch_or(uint64_t{1} << i, std::memory_order_seq_cst);
}
}  // namespace

// Without a usable sequence on the fast path: primes the thread's rseq area and retries the
// sequence (after an abort: preempted, migrated or signalled), else adds atomically.
[[gnu::noinline]] void striped_add_slow(stripe_set &s, std::atomic<int64_t> *lines,
                                        int64_t d) noexcept {
  if (platform::rseq_arch_supported() && platform::rseq_registered_area() &&
      !(kStripeTestHooks && t_stripe_force_atomic)) {
    for (;;) {
      int cpu = platform::rseq_cpu_start();
      if (cpu < 0 || static_cast<uint64_t>(cpu) >= s.nstripes) break;
      touch(s.touched_plain, static_cast<unsigned>(cpu));
      if (platform::rseq_addv(
              reinterpret_cast<intptr_t *>(stripe(lines, static_cast<unsigned>(cpu))), d, cpu) ==
          platform::CP_RSEQ_OK)
        return;
    }
  }
  if (t_atomic_index == 0)
    t_atomic_index = 1 + g_next_index.fetch_add(1, std::memory_order_relaxed);
  const uint64_t i = (t_atomic_index - 1) & (s.nstripes - 1);
  touch(s.touched_atomic, i);
  stripe(lines, s.nstripes + i)->fetch_add(d, std::memory_order_relaxed);
}

}  // namespace detail

uint64_t striped_stripes_for_machine() noexcept {
  uint64_t n = 1;
  while (n < platform::nr_cpu_ids() && n < 64) n <<= 1;
  return n;
}

void striped_init(stripe_set &s, std::atomic<int64_t> *lines, uint64_t nstripes,
                  int64_t initial) noexcept {
  s.nstripes = nstripes;
  s.touched_plain.store(0, std::memory_order_relaxed);
  // S2: the initial value sits in atomic stripe 0, marked touched.
  stripe(lines, nstripes)->store(initial, std::memory_order_relaxed);
  s.touched_atomic.store(1, std::memory_order_relaxed);
}

void striped_bank::add(unsigned k, int64_t d) noexcept {
  if (lines) striped_add(set, lines + k, d);
}

void striped_bank_init(striped_bank &b, std::atomic<int64_t> *lines, uint64_t nstripes) noexcept {
  striped_init(b.set, lines, nstripes, 0);
  b.lines = lines;
}

striped_counter::striped_counter() noexcept {
  const uint64_t n = striped_stripes_for_machine();
  void *m = ::operator new (striped_bytes(n), std::align_val_t{64}, std::nothrow);
  if (!m) return;
  std::memset(m, 0, striped_bytes(n));
  striped_bank_init(bank_, static_cast<std::atomic<int64_t> *>(m), n);
}

striped_counter::~striped_counter() {
  if (bank_.lines) ::operator delete (static_cast<void *>(bank_.lines), std::align_val_t{64});
}

}  // namespace corepool::ds
