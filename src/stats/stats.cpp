// The exit report's registry and the dump line writer (protocol in stats/stats.h).
#include "stats/stats.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "platform/fd.h"

namespace corepool::stats {
namespace {

constexpr unsigned kSlots = 256;
std::atomic<registration *> g_slots[kSlots];
std::atomic<int> g_enabled{-1};       // -1 not read yet, else 0 or 1
std::atomic<uint64_t> g_unlisted{0};  // pools created while every slot was taken

void report_at_exit() noexcept {
  line_writer w(2, "corepool", nullptr);
  uint64_t live = 0;
  for (auto &s : g_slots) live += s.load(std::memory_order_acquire) != nullptr;
  w.kv("stats_report_pools", live).kv("unlisted", g_unlisted.load(std::memory_order_relaxed));
  w.end();
  for (auto &s : g_slots)
    if (registration *r = s.load(std::memory_order_acquire))  // E1
      (void)r->dump(r->pool, 2);
}

}  // namespace

bool exit_report_enabled() noexcept {
  int e = g_enabled.load(std::memory_order_acquire);
  if (e < 0) {
    const char *v = std::getenv("COREPOOL_STATS");
    const int want = v && std::strcmp(v, "1") == 0 ? 1 : 0;
    // The first to decide registers the handler (the environment reads the same for all).
    if (g_enabled.compare_exchange_strong(e, want, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      e = want;
      if (want) std::atexit(report_at_exit);
    }
  }
  return e == 1;
}

void enroll(registration &r) noexcept {
  if (!exit_report_enabled()) return;
  for (auto &s : g_slots) {
    registration *none = nullptr;
    // E1: publishes r's fields, written by the caller before this call.
    if (s.compare_exchange_strong(none, &r, std::memory_order_acq_rel, std::memory_order_relaxed))
      return;
  }
  g_unlisted.fetch_add(1, std::memory_order_relaxed);
}

void withdraw(registration &r) noexcept {
  if (g_enabled.load(std::memory_order_acquire) != 1) return;
  for (auto &s : g_slots) {
    registration *mine = &r;
    if (s.compare_exchange_strong(mine, nullptr, std::memory_order_acq_rel,
                                  std::memory_order_relaxed))
      return;
  }
}

line_writer::line_writer(int fd, const char *kind, const void *pool) noexcept
    : fd_(fd), kind_(kind), pool_(pool) {}

void line_writer::put(const char *s) noexcept {
  for (; *s; ++s) {
    if (n_ == sizeof buf_ - 1) {  // a line longer than the buffer: write what we have
      if (rc_ == 0) rc_ = platform::write_all(fd_, buf_, n_);
      n_ = 0;
    }
    buf_[n_++] = *s;
  }
}

void line_writer::put_u64(uint64_t v, unsigned base) noexcept {
  char d[24];
  int i = 0;
  do {
    d[i++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  char out[24];
  for (int j = 0; j < i; ++j) out[j] = d[i - 1 - j];
  out[i] = '\0';
  put(out);
}

void line_writer::start() noexcept {
  in_line_ = true;
  put(kind_);
  put(" 0x");
  put_u64(reinterpret_cast<uintptr_t>(pool_), 16);
}

line_writer &line_writer::field(const char *key, const char *eq, uint64_t value,
                                unsigned base) noexcept {
  if (!in_line_) start();
  put(" ");
  put(key);
  put(eq);
  put_u64(value, base);
  return *this;
}

line_writer &line_writer::kv(const char *key, uint64_t value) noexcept {
  return field(key, "=", value, 10);
}

line_writer &line_writer::kv_hex(const char *key, uint64_t value) noexcept {
  return field(key, "=0x", value, 16);
}

line_writer &line_writer::end() noexcept {
  put("\n");
  if (rc_ == 0) rc_ = platform::write_all(fd_, buf_, n_);
  n_ = 0;
  in_line_ = false;
  return *this;
}

}  // namespace corepool::stats
