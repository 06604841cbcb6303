// Preloaded into dpdk-test by mempool_perf.sh -s N: rte_get_tsc_hz() reports the TSC
// frequency divided by COREPOOL_TSC_SCALE (N), so that a DPDK test that runs each case for a
// fixed time measured with rte_get_timer_hz() runs 1/N of it. The test divides its count by
// its own fixed duration, so every rate it prints is 1/N of the true one: the script
// multiplies them back. Nothing else of DPDK is changed.
#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>

extern "C" uint64_t rte_get_tsc_hz(void) {
  using fn = uint64_t (*)(void);
  static fn real = reinterpret_cast<fn>(dlsym(RTLD_NEXT, "rte_get_tsc_hz"));
  static const uint64_t scale = [] {
    const char *s = std::getenv("COREPOOL_TSC_SCALE");
    const uint64_t v = s ? std::strtoull(s, nullptr, 10) : 1;
    return v ? v : 1;
  }();
  return real ? real() / scale : 0;
}
