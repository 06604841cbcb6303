// objpool under the chaos harness: T = 1, 2, 8, 32 threads, migrations, a signal storm whose
// handler pops and pushes, in the kernel test's modes (lib/test_objpool.c): sync, async,
// bulk, overrun; plus bounded rings (overflow path) and parked threads. Every case runs
// twice: without and with the thread tier (each thread's own stack in front of the caches,
// stolen from when a pop finds everything else empty).
//
// Every object carries an owner stamp that only the test writes (the pool never touches
// contents): taking an object CASes owner 0 -> holder, giving it back CASes holder -> 0.
// A failed CAS means two holders at once. After each run every object must be in the pool
// exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <corepool/objpool.h>

#include "chaos.h"

namespace {

struct tobj {
  std::atomic<int> owner;  // 0 = in the pool, else the holder
  int id;
};

enum class mode { sync, async, bulk, overrun };
const char *name(mode m) {
  switch (m) {
    case mode::sync:
      return "sync";
    case mode::async:
      return "async";
    case mode::bulk:
      return "bulk";
    case mode::overrun:
      return "overrun";
  }
  return "?";
}

constexpr int kTransit = -1;  // owner while in an async mailbox
constexpr int kMailboxes = 16;

constexpr int kScale = corepool::chaos::kTsanScale;

struct ctx {
  cp_objpool *pool = nullptr;
  mode m = mode::sync;
  int nr_objs = 0;
  std::atomic<int> next_id{0};
  std::atomic<int> violations{0};
  std::atomic<int> failed_push{0};
  std::atomic<int> releases{0};
  std::atomic<tobj *> mailbox[kMailboxes] = {};

  void take(tobj *o, int who) {
    int e = 0;
    if (!o->owner.compare_exchange_strong(e, who, std::memory_order_acq_rel)) violations++;
  }
  void give(tobj *o, int who) {
    int e = who;
    if (!o->owner.compare_exchange_strong(e, 0, std::memory_order_acq_rel)) violations++;
  }
  void push(tobj *o) {
    if (cp_objpool_push(o, pool) != 0) failed_push++;
  }
};

int obj_init(void *obj, void *arg) {
  auto *c = static_cast<ctx *>(arg);
  auto *o = static_cast<tobj *>(obj);
  o->owner.store(0, std::memory_order_relaxed);
  o->id = c->next_id++;
  return 0;
}

// Storm handler: runs on a worker interrupted anywhere, possibly inside pop/push.
void on_signal(int worker, void *arg) {
  auto *c = static_cast<ctx *>(arg);
  const int who = 100000 + worker;
  if (c->m == mode::bulk) {
    void *b[4];
    unsigned n = cp_objpool_pop_bulk(c->pool, b, 4);
    for (unsigned i = 0; i < n; i++) c->take(static_cast<tobj *>(b[i]), who);
    for (unsigned i = 0; i < n; i++) c->give(static_cast<tobj *>(b[i]), who);
    if (n && cp_objpool_push_bulk(b, n, c->pool) != 0) c->failed_push++;
    return;
  }
  if (auto *o = static_cast<tobj *>(cp_objpool_pop(c->pool))) {
    c->take(o, who);
    c->give(o, who);
    c->push(o);
  }
}

void body(ctx &c, int w, int iters) {
  const int me = w + 1;
  corepool::chaos::rng r(static_cast<uint64_t>(w) + 7);
  std::vector<tobj *> held;
  void *b[16];
  for (int i = 0; i < iters && !corepool::chaos::should_stop(); i++) {
    switch (c.m) {
      case mode::sync: {
        auto *o = static_cast<tobj *>(cp_objpool_pop(c.pool));
        if (!o) break;
        c.take(o, me);
        c.give(o, me);
        c.push(o);
        break;
      }
      case mode::async: {  // popped here, pushed by whichever thread empties the mailbox
        auto *o = static_cast<tobj *>(cp_objpool_pop(c.pool));
        if (!o) break;
        c.take(o, me);
        int e = me;
        if (!o->owner.compare_exchange_strong(e, kTransit)) c.violations++;
        tobj *prev = c.mailbox[r.below(kMailboxes)].exchange(o, std::memory_order_acq_rel);
        if (prev) {
          e = kTransit;
          if (!prev->owner.compare_exchange_strong(e, me)) c.violations++;
          c.give(prev, me);
          c.push(prev);
        }
        break;
      }
      case mode::bulk: {
        unsigned want = 1 + static_cast<unsigned>(r.below(16));
        unsigned n = cp_objpool_pop_bulk(c.pool, b, want);
        for (unsigned k = 0; k < n; k++) c.take(static_cast<tobj *>(b[k]), me);
        for (unsigned k = 0; k < n; k++) c.give(static_cast<tobj *>(b[k]), me);
        if (n && cp_objpool_push_bulk(b, n, c.pool) != 0) c.failed_push++;
        break;
      }
      case mode::overrun: {  // hold up to 4 each: more demand than objects
        if (held.size() < 4 && r.below(3) != 0) {
          if (auto *o = static_cast<tobj *>(cp_objpool_pop(c.pool))) {
            c.take(o, me);
            held.push_back(o);
          }
        } else if (!held.empty()) {
          size_t k = r.below(held.size());
          tobj *o = held[k];
          held[k] = held.back();
          held.pop_back();
          c.give(o, me);
          c.push(o);
        }
        break;
      }
    }
  }
  for (tobj *o : held) {
    c.give(o, me);
    c.push(o);
  }
}

struct config {
  mode m;
  int threads;
  unsigned ring_capacity;  // 0: kernel sizing; else bounded (overflow ring in use)
  bool park;
  unsigned cache = 0;   // per-CPU cache capacity: 0 the default (256 objects: 32 per CPU)
  unsigned thread = 0;  // thread tier capacity: 0 none
};

std::string config_name(const ::testing::TestParamInfo<config> &i) {
  return std::string(name(i.param.m)) + "_T" + std::to_string(i.param.threads) +
         (i.param.ring_capacity ? "_bounded" : "") + (i.param.park ? "_park" : "") +
         (i.param.cache ? "_cache" + std::to_string(i.param.cache) : "") +
         (i.param.thread ? "_thread" + std::to_string(i.param.thread) : "");
}

class ObjpoolChaos : public ::testing::TestWithParam<config> {};

TEST_P(ObjpoolChaos, EveryObjectOnceNeverTwoHolders) {
  const config cfg = GetParam();
  ctx c;
  c.m = cfg.m;
  c.nr_objs = cfg.m == mode::overrun ? (cfg.threads * 3 + 1) / 2 : 256;
  cp_objpool_attr attr{.ring_capacity = cfg.ring_capacity,
                       .flags = cfg.thread ? 0u : CP_OBJPOOL_F_NOTHREADCACHE,
                       .cache_capacity = cfg.cache,
                       .thread_cache = cfg.thread};
  ASSERT_EQ(cp_objpool_init_attr(
                &c.pool, c.nr_objs, sizeof(tobj), &c, obj_init,
                [](cp_objpool *, void *a) {
                  static_cast<ctx *>(a)->releases++;
                  return 0;
                },
                &attr),
            0);

  corepool::chaos::options opt;
  opt.threads = cfg.threads;
  opt.migrate = true;
  opt.signal_storm = true;
  opt.park = cfg.park;
  opt.deadline = std::chrono::milliseconds(40000);
  const int iters = 1200000 / kScale / cfg.threads / (cfg.m == mode::bulk ? 4 : 1);
  auto rep = corepool::chaos::run(
      opt, [&](int w) { body(c, w, iters); }, on_signal, &c);
  ASSERT_TRUE(rep.in_time);

  // Async leftovers are held by nobody: take them out of the mailboxes and push them.
  for (auto &mb : c.mailbox)
    if (tobj *o = mb.exchange(nullptr)) {
      int e = kTransit;
      if (!o->owner.compare_exchange_strong(e, 0)) c.violations++;
      c.push(o);
    }
  EXPECT_EQ(c.violations.load(), 0) << "an object had two holders at once";
  EXPECT_EQ(c.failed_push.load(), 0);
  EXPECT_EQ(cp_objpool_nr_free(c.pool), static_cast<unsigned>(c.nr_objs));
  if (cfg.thread && cp_objpool_uses_rseq(c.pool)) {  // (and the rseq fence, Linux 5.10+)
    EXPECT_EQ(cp_objpool_thread_cache_capacity(c.pool), cfg.thread);
  }

  // Every object exactly once: pop them all, by id.
  std::vector<int> seen(c.nr_objs, 0);
  int total = 0;
  while (auto *o = static_cast<tobj *>(cp_objpool_pop(c.pool))) {
    ASSERT_GE(o->id, 0);
    ASSERT_LT(o->id, c.nr_objs);
    EXPECT_EQ(o->owner.load(), 0);
    seen[o->id]++;
    total++;
    if (total > c.nr_objs) break;
  }
  EXPECT_EQ(total, c.nr_objs);
  for (int i = 0; i < c.nr_objs; i++) EXPECT_EQ(seen[i], 1) << "object " << i;
  // Nothing left, then fini releases exactly once (all objects are out: fini drops only the
  // pool's reference, so drop them first).
  void *rest[1];
  EXPECT_EQ(cp_objpool_pop_bulk(c.pool, rest, 1), 0u);
  cp_objpool_fini(c.pool);  // the popped objects still hold references
  EXPECT_EQ(c.releases.load(), 0);
  std::vector<void *> all;
  cp_objpool_for_each(
      c.pool, [](void *o, void *a) { static_cast<std::vector<void *> *>(a)->push_back(o); }, &all);
  int zeros = 0;
  for (void *o : all) zeros += cp_objpool_drop(o, c.pool) == 0;
  EXPECT_EQ(zeros, 1);
  EXPECT_EQ(c.releases.load(), 1) << "release must run exactly once";
  std::printf("%s T=%d%s: %llu signals, %llu migrations, %llu parks, %.2fs\n", name(cfg.m),
              cfg.threads, cfg.ring_capacity ? " bounded" : "",
              static_cast<unsigned long long>(rep.signals),
              static_cast<unsigned long long>(rep.migrations),
              static_cast<unsigned long long>(rep.parks), rep.seconds);
}

std::vector<config> configs() {
  std::vector<config> v;
  for (mode m : {mode::sync, mode::async, mode::bulk, mode::overrun})
    for (int t : {1, 2, 8, 32})
      v.push_back({.m = m, .threads = t, .ring_capacity = 0, .park = false});
  // Bounded rings: pushes overflow to the shared multi-producer ring, even with rseq on.
  for (mode m : {mode::sync, mode::bulk, mode::overrun})
    v.push_back({.m = m, .threads = 8, .ring_capacity = 4, .park = false});
  // Parked threads: stopped at any instruction, the others go on.
  v.push_back({.m = mode::async, .threads = 8, .ring_capacity = 0, .park = true});
  v.push_back({.m = mode::overrun, .threads = 8, .ring_capacity = 2, .park = true});
  // Tiny per-CPU caches: most pops that miss the rings drain another CPU's cache (fence +
  // steal), with stealers parked while they hold a cache.
  v.push_back({.m = mode::sync, .threads = 8, .ring_capacity = 0, .park = false, .cache = 4});
  v.push_back({.m = mode::bulk, .threads = 8, .ring_capacity = 4, .park = false, .cache = 8});
  v.push_back({.m = mode::overrun, .threads = 8, .ring_capacity = 0, .park = true, .cache = 2});
  v.push_back({.m = mode::async, .threads = 32, .ring_capacity = 2, .park = true, .cache = 4});
  // The same with the thread tier: objects also sit in threads' stacks (threads parked
  // inside tier operations, stacks stolen while their owner is stopped or exits).
  const size_t without = v.size();
  for (size_t i = 0; i < without; i++) {
    config c = v[i];
    c.thread = 8;
    v.push_back(c);
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Modes, ObjpoolChaos, ::testing::ValuesIn(configs()), config_name);

}  // namespace
