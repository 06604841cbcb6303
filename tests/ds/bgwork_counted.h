// A work item for the bgwork tests: counts its runs; while `block` is set, its run waits.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "ds/bgwork.h"

struct counted {
  corepool::ds::work_item w;
  std::atomic<int> runs{0};
  std::atomic<bool> block{false};
  counted() {
    corepool::ds::work_init(
        &w,
        [](corepool::ds::work_item *it) {
          auto *c = static_cast<counted *>(it->arg);
          while (c->block.load(std::memory_order_acquire))
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          c->runs.fetch_add(1, std::memory_order_relaxed);
        },
        this, 0);
  }
};
