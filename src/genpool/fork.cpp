// gen_pool across fork(): a private pool's add lock is held across the fork (a child never
// finds it held by a thread that does not exist there). A shared pool's lock needs nothing:
// its holder lives in a process of its own and unlocks it there.
#include <mutex>

#include "genpool/internal.h"
#include "platform/thread.h"

namespace corepool::genpool {
namespace {

// The private pools of this process. Order across a fork: g_private, then each pool's add
// lock. Nothing takes g_private while holding an add lock.
std::mutex g_private;
cp_gen_pool *g_first = nullptr;  // guarded by g_private

void fork_prepare() {
  g_private.lock();
  for (cp_gen_pool *p = g_first; p; p = p->fork_next)
    (void)platform::pshared_mutex_lock(&p->hdr->lock);
}
void fork_release() {
  for (cp_gen_pool *p = g_first; p; p = p->fork_next) platform::pshared_mutex_unlock(&p->hdr->lock);
  g_private.unlock();
}

}  // namespace

void fork_track(cp_gen_pool *p) noexcept {
  static std::once_flag once;
  std::call_once(once, [] { platform::on_fork(fork_prepare, fork_release, fork_release); });
  std::lock_guard<std::mutex> g(g_private);
  p->fork_prev = nullptr;
  p->fork_next = g_first;
  if (g_first) g_first->fork_prev = p;
  g_first = p;
}

void fork_untrack(cp_gen_pool *p) noexcept {
  std::lock_guard<std::mutex> g(g_private);
  if (p->fork_prev)
    p->fork_prev->fork_next = p->fork_next;
  else
    g_first = p->fork_next;
  if (p->fork_next) p->fork_next->fork_prev = p->fork_prev;
}

}  // namespace corepool::genpool
