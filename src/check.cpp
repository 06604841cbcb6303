// Checked mode (check.h): the switch, read once, and the one-line report.
#include "check.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "error.h"
#include "platform/fd.h"

namespace corepool {

// Stored by whoever reads the environment first (racing readers store the same value).
std::atomic<int> g_check_state{0};

int check_read_env() noexcept {
  const char *v = std::getenv("COREPOOL_CHECK");  // reads environ: no lock, no allocation
  const bool on = v && (std::strcmp(v, "1") == 0 || std::strcmp(v, "on") == 0);
  const int s = on ? 2 : 1;
  g_check_state.store(s, std::memory_order_relaxed);
  return s;
}

namespace {

__attribute__((constructor)) void check_init() {
  (void)check_read_env();
}

// Appends s to buf[*n, cap); keeps one byte for the newline.
void put(char *buf, std::size_t cap, std::size_t *n, const char *s) noexcept {
  for (; *s && *n + 1 < cap; s++) buf[(*n)++] = *s;
}

}  // namespace

int report_misuse(int err, const char *fn, const char *what, const void *ptr) noexcept {
  set_error(err, what);
  if (!check_enabled()) return err;
  char buf[256];
  std::size_t n = 0;
  put(buf, sizeof buf, &n, "corepool: ");
  put(buf, sizeof buf, &n, fn);
  put(buf, sizeof buf, &n, ": ");
  put(buf, sizeof buf, &n, what);
  char hex[2 + 16 + 1] = "0x";
  auto u = reinterpret_cast<uintptr_t>(ptr);
  int d = 2;
  for (int shift = 60; shift >= 0; shift -= 4) {
    const unsigned nib = static_cast<unsigned>(u >> shift) & 15u;
    if (nib || d > 2 || shift == 0) hex[d++] = "0123456789abcdef"[nib];
  }
  hex[d] = '\0';
  put(buf, sizeof buf, &n, " (");
  put(buf, sizeof buf, &n, hex);
  put(buf, sizeof buf, &n, ")");
  buf[n++] = '\n';
  const int saved = errno;
  (void)platform::write_all(2, buf, n);  // one write: lines of concurrent reports stay whole
  errno = saved;
  return err;
}

}  // namespace corepool
