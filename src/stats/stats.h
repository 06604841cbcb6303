// What every pool's statistics share: a line writer for the dumps and the registry of live
// pools that COREPOOL_STATS=1 prints at exit. The counters themselves are a
// ds::striped_counter per pool (one restartable add on this CPU's line, slow paths only).
//
// Registry protocol: a fixed table of kSlots atomic pointers to registrations (which live in
// the pools). enroll claims a null slot by CAS (acq_rel: the registration's fields are
// written before it is published, E1); withdraw clears its slot by CAS; the exit report
// loads each slot (acquire, pairs with E1) and calls the dump. Lock-free and
// async-signal-safe, so a pool released from a signal handler (objpool's last drop) may
// withdraw. Invariant: a pool is in at most one slot, and only between its enroll and its
// withdraw. The report runs from an atexit handler: a pool freed by another thread while
// the process exits is the caller's race (as any use after exit begins).
#pragma once

#include <cstddef>
#include <cstdint>

namespace corepool::stats {

struct registration {
  const void *pool = nullptr;
  int (*dump)(const void *pool, int fd) = nullptr;
};

// True when the environment had COREPOOL_STATS=1 when first asked (read once).
bool exit_report_enabled() noexcept;
// Adds r (fields set) to the exit report when it is enabled; otherwise does nothing. Not
// async-signal-safe on its first call (reads the environment, registers the atexit handler).
void enroll(registration &r) noexcept;
// Removes r if it is there. Lock-free, async-signal-safe.
void withdraw(registration &r) noexcept;

// Formats one dump line by line into a fixed buffer and writes it with platform::write_all:
// no allocation, async-signal-safe. Lines read "<kind> <address> key=value key=value ...".
class line_writer {
 public:
  line_writer(int fd, const char *kind, const void *pool) noexcept;
  line_writer &kv(const char *key, uint64_t value) noexcept;
  // key=0x<value in hex> (addresses).
  line_writer &kv_hex(const char *key, uint64_t value) noexcept;
  // Ends the line and writes it; the next kv starts a new one with the same prefix.
  line_writer &end() noexcept;
  // 0, or the negative errno of the first failed write (the lines before it are written).
  int result() const noexcept { return rc_; }

 private:
  void put(const char *s) noexcept;
  void put_u64(uint64_t v, unsigned base) noexcept;
  void start() noexcept;
  line_writer &field(const char *key, const char *eq, uint64_t value, unsigned base) noexcept;
  int fd_, rc_ = 0;
  const char *kind_;
  const void *pool_;
  size_t n_ = 0;
  bool in_line_ = false;
  char buf_[256];
};

}  // namespace corepool::stats
