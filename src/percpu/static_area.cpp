// Static per-CPU variables (CP_DEFINE_PER_CPU): the reserved first areas of each module.
//
// Each variable contributes a descriptor {&handle, size, align} to its module's section
// cp_percpu_vars, and a constructor of priority 101 that calls cp_percpu_static_init with the
// section's bounds. The first such call of a module packs all of the module's variables not
// yet placed into areas of at most kMaxAllocSize bytes, allocates each area once from the
// allocator (before main that creates the first chunk: the kernel's reserved first chunk),
// and writes the handles; later calls find nothing left to place. Each area starts with an
// 8-byte guard, so no variable is the start of an allocation and cp_free_percpu rejects them.
//
// Synchronization: g_static_lock serialises registrations (constructors of one module run
// on one thread, but dlopen may run on several); it is taken before the allocator lock and
// never the other way. The handles are written before main (or before dlopen returns), so
// every later reader is ordered after them by the program's start (or by dlopen).
#include <corepool/percpu.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "percpu/percpu_access.h"
#include "percpu/percpu_internal.h"
#include "platform/fd.h"
#include "platform/thread.h"

namespace corepool::pcpu {
namespace {

std::mutex g_static_lock;
constexpr size_t kGuard = 8;

bool placed(const cp_percpu_static_var &v) {
  void *h;
  std::memcpy(&h, v.handle, sizeof h);
  return h != nullptr;
}

size_t align_up(size_t x, size_t a) {
  return (x + a - 1) & ~(a - 1);
}

[[noreturn]] void die(const char *msg) {
  (void)corepool::platform::write_all(2, msg, std::strlen(msg));
  std::abort();
}

// Places [first, last) into one area of `bytes` bytes aligned to `align`.
void place(cp_percpu_static_var *first, cp_percpu_static_var *last, size_t bytes, size_t align) {
  char *area = static_cast<char *>(alloc_at_load(bytes, align));
  if (!area) die("corepool: cannot reserve static per-CPU variables at load time\n");
  size_t off = kGuard;
  for (cp_percpu_static_var *v = first; v != last; v++) {
    if (placed(*v)) continue;
    off = align_up(off, v->align);
    void *h = area + off;
    std::memcpy(v->handle, &h, sizeof h);  // the handle is a `type *`: same representation
    off += v->size;
  }
}

// Held across fork() (taken before the allocator's lock, so registered after its handlers).
void fork_handlers_init_static() {
  static std::once_flag once;
  std::call_once(once, [] {
    fork_handlers_init();
    corepool::platform::on_fork([] { g_static_lock.lock(); }, [] { g_static_lock.unlock(); },
                                [] { g_static_lock.unlock(); });
  });
}

}  // namespace
}  // namespace corepool::pcpu

extern "C" int cp_percpu_static_init(cp_percpu_static_var *begin, cp_percpu_static_var *end) {
  using namespace corepool::pcpu;
  fork_handlers_init_static();
  std::lock_guard<std::mutex> g(g_static_lock);
  // One pass: extend the current area while the next variable fits in kMaxAllocSize bytes,
  // else place it and start the next one.
  cp_percpu_static_var *first = begin;
  size_t off = kGuard, align = kGuard;
  for (cp_percpu_static_var *v = begin; v != end; v++) {
    if (placed(*v)) continue;
    if (v->size == 0 || v->size > kMaxAllocSize - kGuard || (v->align & (v->align - 1)) != 0 ||
        v->align > 4096)
      die("corepool: bad static per-CPU variable descriptor\n");
    if (v->align == 0) v->align = 1;
    size_t at = align_up(off, v->align);
    if (at + v->size > kMaxAllocSize) {
      place(first, v, off, align);
      first = v;
      off = kGuard;
      align = kGuard;
      at = align_up(off, v->align);
    }
    off = at + v->size;
    if (v->align > align) align = v->align;
  }
  if (off > kGuard) place(first, end, off, align);
  return 0;
}
