#include "platform/memory.h"
#include <atomic>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "platform/topology.h"

namespace corepool::platform {
namespace {
size_t g_page = 0;

uintptr_t align_up(uintptr_t v, size_t a) {
  return (v + a - 1) & ~(uintptr_t)(a - 1);
}
}  // namespace

size_t page_size() noexcept {
  size_t p = std::atomic_ref(g_page).load(std::memory_order_relaxed);
  if (__builtin_expect(p == 0, 0)) {
    long v = ::sysconf(_SC_PAGESIZE);
    p = v > 0 ? static_cast<size_t>(v) : 4096;
    std::atomic_ref(g_page).store(p, std::memory_order_relaxed);
  }
  return p;
}

void *os_reserve(size_t size, size_t align) noexcept {
  const size_t pg = page_size();
  if (size == 0 || (align & (align - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (align < pg) align = pg;
  if (size > SIZE_MAX / 2 || align > SIZE_MAX / 4) {
    errno = ENOMEM;
    return nullptr;
  }
  size = align_up(size, pg);
  if (size + align < size) {
    errno = ENOMEM;
    return nullptr;
  }
  const size_t len = align == pg ? size : size + align;
  void *m = ::mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  if (align == pg) return m;
  // Trim the unaligned head and the tail of the over-reservation.
  uintptr_t base = reinterpret_cast<uintptr_t>(m);
  uintptr_t start = align_up(base, align);
  if (start > base) ::munmap(m, start - base);
  uintptr_t end = base + len;
  if (end > start + size) ::munmap(reinterpret_cast<void *>(start + size), end - start - size);
  return reinterpret_cast<void *>(start);
}

int os_commit(void *p, size_t size) noexcept {
  return ::mprotect(p, size, PROT_READ | PROT_WRITE) == 0 ? 0 : -errno;
}

int os_release(void *p, size_t size) noexcept {
  return ::munmap(p, align_up(size, page_size())) == 0 ? 0 : -errno;
}

void *os_alloc(size_t size, size_t align) noexcept {
  void *p = os_reserve(size, align);
  if (!p) return nullptr;
  int r = os_commit(p, align_up(size, page_size()));
  if (r != 0) {
    os_release(p, size);
    errno = -r;
    return nullptr;
  }
  return p;
}

int os_bind_node(void *p, size_t size, int node) noexcept {
  if (node < 0 || node >= 1024) return -EINVAL;
  if (nr_nodes() <= 1) return 0;  // nothing to choose between
#if defined(SYS_mbind)
  constexpr int kMpolPreferred = 1;
  unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {};
  mask[node / (8 * sizeof(unsigned long))] = 1ul << (node % (8 * sizeof(unsigned long)));
  long r = ::syscall(SYS_mbind, p, size, kMpolPreferred, mask, 1024ul, 0u);
  return r == 0 ? 0 : -errno;
#else
  (void)p;
  (void)size;
  return -ENOSYS;
#endif
}

long os_resident_pages(const void *p, size_t size) noexcept {
  const size_t pg = page_size();
  uintptr_t start = reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)(pg - 1);
  uintptr_t end = align_up(reinterpret_cast<uintptr_t>(p) + size, pg);
  size_t n = (end - start) / pg;
  std::vector<unsigned char> vec;
  try {
    vec.resize(n);
  } catch (...) {
    return -ENOMEM;
  }
  if (::mincore(reinterpret_cast<void *>(start), end - start, vec.data()) != 0) return -errno;
  long count = 0;
  for (unsigned char v : vec) count += v & 1;
  return count;
}

}  // namespace corepool::platform
