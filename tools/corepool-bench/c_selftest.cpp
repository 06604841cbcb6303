// A contender for corepool-bench's own test, registered only when CPB_SELFTEST=1: its W2
// hands out objects for 16 bursts and then never returns from get() (as a pool spinning on a
// preempted ring producer would), so the test can check that the run is cut off at its
// deadline and reported as stalled with the pairs it completed.
#include <cstdlib>
#include <cstring>

#include "bench.h"

namespace cpb {
namespace {

struct StallAfter {
  Slab slab;
  void *free_list[kBurst];
  unsigned top = 0;
  unsigned runs = 0;  // runs started: the warm-up, then the measured run
  uint64_t gets = 0;  // gets in the current run
  static std::unique_ptr<StallAfter> create(const Params &p, std::string &err) {
    auto c = std::make_unique<StallAfter>();
    if (!c->slab.init(p.size, kBurst)) return err = "out of memory", nullptr;
    for (unsigned i = 0; i < kBurst; i++) c->free_list[c->top++] = c->slab.obj(i);
    return c;
  }
  void thread_init() {
    runs++;
    gets = 0;
  }
  void *get() {
    // The measured run completes 16 bursts, then its get spins forever.
    if (runs >= 2 && ++gets > 16 * uint64_t(kBurst))
      for (;;) cpu_relax();
    return top ? free_list[--top] : nullptr;
  }
  void put(void *p) { free_list[top++] = p; }
};

void reg() {
  const char *e = std::getenv("CPB_SELFTEST");
  if (e == nullptr || std::strcmp(e, "1") != 0) return;
  add_inproc<StallAfter>("selftest-stall", "selftest", Kind::peer,
                         "W2 stalls inside get() after 16 bursts of the measured run", {"W2"});
}
Registrar r(reg);

}  // namespace
}  // namespace cpb
