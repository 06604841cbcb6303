// gen_pool process-shared mode: a region that is not a valid pool (each field attach trusts,
// mutated one at a time), chunks a peer adds after attach that fail validation, random
// mutations of a valid region (attach + alloc + free: an error or a working pool, never a
// crash), misuse answered with -EINVAL, several processes that map one region at different
// addresses and free each other's allocations, and adders killed with SIGKILL at every step
// of add and at random moments.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "chaos.h"
#include "corepool/error.h"
#include "corepool/genpool.h"
#include "genpool/layout.h"
#include "inject.h"
#include "sanitized.h"

namespace {

namespace gp = corepool::genpool;

constexpr size_t kRegion = 256 * 1024;  // metadata first, then the in-region chunk
constexpr size_t kDataOff = 128 * 1024;
constexpr size_t kDataSize = 64 * 1024;
constexpr size_t kOutSize = 64 * 1024;  // a chunk outside the region (absolute address)
constexpr int kOrder = 6;

struct mapping {
  void *p = nullptr;
  size_t n = 0;
  explicit mapping(size_t bytes, bool shared = false) : n(bytes) {
    p = mmap(nullptr, n, PROT_READ | PROT_WRITE,
             (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) p = nullptr;
  }
  ~mapping() {
    if (p) munmap(p, n);
  }
  char *c() const { return static_cast<char *>(p); }
};

// A valid region: one chunk inside it (stored as an offset), one outside (absolute).
struct golden {
  mapping region{kRegion};
  mapping out{kOutSize};
  std::vector<char> bytes;
  golden() {
    cp_gen_pool *p = cp_gen_pool_create_shared(region.p, kRegion, kOrder);
    EXPECT_NE(p, nullptr);
    EXPECT_EQ(cp_gen_pool_add(p, reinterpret_cast<uintptr_t>(region.c() + kDataOff), kDataSize, -1),
              0);
    EXPECT_EQ(cp_gen_pool_add_virt(p, reinterpret_cast<uintptr_t>(out.p), 0x1000000, kOutSize, -1),
              0);
    cp_gen_pool_detach(p);
    bytes.assign(region.c(), region.c() + kRegion);
  }
};

gp::header *hdr_of(void *m) {
  return static_cast<gp::header *>(m);
}
gp::chunk *chunk_at(void *m, int64_t off) {
  return reinterpret_cast<gp::chunk *>(static_cast<char *>(m) + off);
}
gp::chunk *first_of(void *m) {
  return chunk_at(m, hdr_of(m)->first.load(std::memory_order_relaxed));
}
gp::chunk *second_of(void *m) {
  return chunk_at(m, first_of(m)->next.load(std::memory_order_relaxed));
}

// ---- attach refuses a region it cannot trust --------------------------------------------------
struct attach_case {
  const char *name;
  std::function<void(void *m)> mutate;
};

TEST(GenPoolSharedAttach, RefusesEachUntrustedField) {
  golden g;
  const attach_case cases[] = {
      {.name = "bad magic", .mutate = [](void *m) { hdr_of(m)->magic.fetch_xor(1); }},
      {.name = "old version", .mutate = [](void *m) { hdr_of(m)->version = 4; }},
      {.name = "private pool's header", .mutate = [](void *m) { hdr_of(m)->shared = 0; }},
      {.name = "order 70", .mutate = [](void *m) { hdr_of(m)->order = 70; }},
      {.name = "order -1", .mutate = [](void *m) { hdr_of(m)->order = -1; }},
      {.name = "size larger than the mapping",
       .mutate = [](void *m) { hdr_of(m)->mem_size = kRegion + 64; }},
      {.name = "size under the header", .mutate = [](void *m) { hdr_of(m)->mem_size = 64; }},
      {.name = "bump misaligned", .mutate = [](void *m) { hdr_of(m)->bump.fetch_add(8); }},
      {.name = "bump past the region",
       .mutate = [](void *m) { hdr_of(m)->bump.store(kRegion + 64); }},
      {.name = "bump inside the header", .mutate = [](void *m) { hdr_of(m)->bump.store(0); }},
      {.name = "unknown algorithm", .mutate = [](void *m) { hdr_of(m)->algo_word.store(99); }},
      {.name = "alignment not a power of two",
       .mutate =
           [](void *m) { hdr_of(m)->algo_word.store(CP_GENPOOL_FIRST_FIT_ALIGN | (48u << 8)); }},
      {.name = "first chunk at 1 TiB",
       .mutate = [](void *m) { hdr_of(m)->first.store(int64_t{1} << 40); }},
      {.name = "first chunk misaligned", .mutate = [](void *m) { hdr_of(m)->first.fetch_add(8); }},
      {.name = "first chunk inside the header",
       .mutate = [](void *m) { hdr_of(m)->first.store(64); }},
      {.name = "first chunk negative", .mutate = [](void *m) { hdr_of(m)->first.store(-4096); }},
      {.name = "nbits 0", .mutate = [](void *m) { first_of(m)->nbits = 0; }},
      {.name = "nbits 2^50", .mutate = [](void *m) { first_of(m)->nbits = uint64_t{1} << 50; }},
      {.name = "nbits one more", .mutate = [](void *m) { first_of(m)->nbits += 1; }},
      {.name = "nblocks", .mutate = [](void *m) { first_of(m)->nblocks += 1; }},
      {.name = "nviews", .mutate = [](void *m) { first_of(m)->nviews += 8; }},
      {.name = "ngroups 2^40", .mutate = [](void *m) { first_of(m)->ngroups = uint64_t{1} << 40; }},
      {.name = "2^40 stripes",
       .mutate = [](void *m) { first_of(m)->avail.nstripes = uint64_t{1} << 40; }},
      {.name = "one stripe", .mutate = [](void *m) { first_of(m)->avail.nstripes = 1; }},
      {.name = "meta_bytes", .mutate = [](void *m) { first_of(m)->meta_bytes += 64; }},
      {.name = "tail hint", .mutate = [](void *m) { first_of(m)->tail_all_free ^= 1; }},
      {.name = "placement flag", .mutate = [](void *m) { first_of(m)->rel = 5; }},
      {.name = "in-region chunk over the metadata",
       .mutate = [](void *m) { first_of(m)->start = 0; }},
      {.name = "in-region chunk past the end",
       .mutate = [](void *m) { first_of(m)->start = kRegion - 4096; }},
      {.name = "outside chunk at 0", .mutate = [](void *m) { second_of(m)->start = 0; }},
      {.name = "outside chunk wraps",
       .mutate = [](void *m) { second_of(m)->start = UINT64_MAX - 4095; }},
      {.name = "chunks overlap",
       .mutate =
           [](void *m) {
             second_of(m)->rel = ~uint64_t{0};
             second_of(m)->start = kDataOff + 4096;
           }},
      {.name = "list cycles to itself",
       .mutate =
           [](void *m) {
             first_of(m)->next.store(hdr_of(m)->first.load(std::memory_order_relaxed));
           }},
      {.name = "list goes back", .mutate = [](void *m) { second_of(m)->next.store(64 * 8); }},
      {.name = "next at 1 TiB",
       .mutate = [](void *m) { second_of(m)->next.store(int64_t{1} << 40); }},
      {.name = "record straddles bump",
       .mutate =
           [](void *m) {
             hdr_of(m)->bump.store(
                 static_cast<uint64_t>(first_of(m)->next.load(std::memory_order_relaxed)) + 64);
           }},
  };
  mapping copy(kRegion);
  ASSERT_NE(copy.p, nullptr);
  // The unmutated copy (at another address than the original) attaches and works.
  std::memcpy(copy.p, g.bytes.data(), kRegion);
  cp_gen_pool *q = cp_gen_pool_attach_shared(copy.p, kRegion);
  ASSERT_NE(q, nullptr) << cp_last_error();
  EXPECT_EQ(cp_gen_pool_size(q), kDataSize + kOutSize);
  uintptr_t a = cp_gen_pool_alloc(q, 64);
  EXPECT_EQ(a, reinterpret_cast<uintptr_t>(copy.c() + kDataOff));  // in this mapping
  EXPECT_EQ(cp_gen_pool_free(q, a, 64), 0);
  cp_gen_pool_detach(q);
  for (const auto &c : cases) {
    std::memcpy(copy.p, g.bytes.data(), kRegion);
    c.mutate(copy.p);
    errno = 0;
    EXPECT_EQ(cp_gen_pool_attach_shared(copy.p, kRegion), nullptr) << c.name;
    EXPECT_EQ(errno, EINVAL) << c.name;
  }
  // The mapping itself.
  std::memcpy(copy.p, g.bytes.data(), kRegion);
  struct arg_case {
    const char *name;
    void *mem;
    size_t size;
  };
  const arg_case args[] = {
      {.name = "NULL", .mem = nullptr, .size = kRegion},
      {.name = "misaligned", .mem = copy.c() + 8, .size = kRegion - 8},
      {.name = "smaller than a header", .mem = copy.p, .size = 64},
      {.name = "smaller than the region's size", .mem = copy.p, .size = kRegion - 4096},
      {.name = "not at the region's start", .mem = copy.c() + 64, .size = kRegion - 64},
  };
  for (const auto &c : args) {
    errno = 0;
    EXPECT_EQ(cp_gen_pool_attach_shared(c.mem, c.size), nullptr) << c.name;
    EXPECT_EQ(errno, EINVAL) << c.name;
  }
}

// A chunk a peer publishes after attach is validated when a walk first reaches it; one that
// fails ends every walk there (the pool keeps working on what it validated), and add refuses
// to link after it.
TEST(GenPoolSharedAttach, PeerChunkThatFailsEndsTheWalk) {
  mapping region(kRegion);
  ASSERT_NE(region.p, nullptr);
  cp_gen_pool *p = cp_gen_pool_create_shared(region.p, kRegion, kOrder);
  ASSERT_NE(p, nullptr);
  const uintptr_t d = reinterpret_cast<uintptr_t>(region.c() + kDataOff);
  ASSERT_EQ(cp_gen_pool_add(p, d, kDataSize / 2, -1), 0);
  cp_gen_pool *q = cp_gen_pool_attach_shared(region.p, kRegion);
  ASSERT_NE(q, nullptr);
  // The "peer" (p) adds a second chunk; before q walks to it, it is corrupted.
  ASSERT_EQ(cp_gen_pool_add(p, d + kDataSize / 2, kDataSize / 2, -1), 0);
  second_of(region.p)->nbits = uint64_t{1} << 50;
  EXPECT_EQ(cp_gen_pool_size(q), kDataSize / 2);
  std::vector<uintptr_t> got;
  for (uintptr_t a; (a = cp_gen_pool_alloc(q, 4096)) != 0;) got.push_back(a);
  EXPECT_EQ(got.size(), kDataSize / 2 / 4096);  // only the validated chunk
  for (uintptr_t a : got) {
    EXPECT_LT(a, d + kDataSize / 2);
    EXPECT_EQ(cp_gen_pool_free(q, a, 4096), 0);
  }
  EXPECT_EQ(cp_gen_pool_free(q, d + kDataSize / 2, 64), -EINVAL);  // in the refused chunk
  EXPECT_EQ(cp_gen_pool_add(q, d + kDataSize, 4096, -1), -EINVAL);
  EXPECT_EQ(cp_gen_pool_avail(q), kDataSize / 2);
  cp_gen_pool_detach(q);
  cp_gen_pool_detach(p);
}

// ---- random mutations ------------------------------------------------------------------------
// Random bytes and random 64-bit fields of a valid region's metadata (header, records, maps,
// hints): attach, then allocs of every algorithm and frees. Each step returns an error or a
// result inside a chunk; nothing crashes or hangs (run under ASan by the asan preset).
TEST(GenPoolSharedAttach, MutatedRegionsNeverCrash) {
  golden g;
  mapping copy(kRegion);
  ASSERT_NE(copy.p, nullptr);
  const uint64_t meta_end = hdr_of(g.bytes.data())->bump.load(std::memory_order_relaxed);
  const int rounds = GP_SANITIZED ? 1500 : 6000;
  corepool::chaos::rng r(77);
  int attached = 0;
  for (int round = 0; round < rounds; ++round) {
    std::memcpy(copy.p, g.bytes.data(), kRegion);
    const int k = 1 + static_cast<int>(r.next() % 4);
    for (int i = 0; i < k; ++i) {
      uint64_t at = r.next() % meta_end;
      switch (r.next() % 4) {
        case 0:  // one byte
          copy.c()[at] = static_cast<char>(r.next());
          break;
        case 1:  // one bit
          copy.c()[at] ^= static_cast<char>(1u << (r.next() % 8));
          break;
        default: {  // a whole aligned field, often in the header or a record
          if (r.next() % 2) at = r.next() % (gp::kHeaderBytes + 2 * sizeof(gp::chunk));
          at = std::min<uint64_t>(at & ~uint64_t{7}, meta_end - 8);
          const uint64_t vals[] = {0, 1, ~uint64_t{0}, uint64_t{1} << 40, r.next(), 64, 4096};
          uint64_t v = vals[r.next() % 7];
          std::memcpy(copy.c() + at, &v, 8);
        }
      }
    }
    cp_gen_pool *q = cp_gen_pool_attach_shared(copy.p, kRegion);
    if (!q) {
      EXPECT_EQ(errno, EINVAL);
      continue;
    }
    ++attached;
    uintptr_t live[32];
    size_t sizes[32];
    int n = 0;
    for (int i = 0; i < 32; ++i) {
      size_t sz = 1 + r.next() % 8192;
      auto algo = static_cast<cp_genpool_algo>(r.next() % 5);
      cp_genpool_data_align al{.align = size_t{64} << (r.next() % 8)};
      cp_genpool_data_fixed fx{.offset = (r.next() % 64) * 1024};
      const void *data = algo == CP_GENPOOL_FIXED ? static_cast<const void *>(&fx) : &al;
      uintptr_t a = cp_gen_pool_alloc_algo(q, sz, algo, data);
      if (!a) continue;
      EXPECT_TRUE(cp_gen_pool_has_addr(q, a, sz)) << "round " << round;
      live[n] = a;
      sizes[n++] = sz;
    }
    (void)cp_gen_pool_avail(q);
    (void)cp_gen_pool_size(q);
    (void)cp_gen_pool_virt_to_phys(q, live[0]);
    for (int i = 0; i < n; ++i) (void)cp_gen_pool_free(q, live[i], sizes[i]);
    cp_gen_pool_detach(q);
  }
  EXPECT_GT(attached, 0);  // some mutations (maps, hints) leave a region that attaches
}

// ---- misuse ----------------------------------------------------------------------------------
TEST(GenPoolSharedMisuse, NegativeErrnoAndThePoolStaysIntact) {
  mapping region(kRegion);
  ASSERT_NE(region.p, nullptr);
  errno = 0;
  EXPECT_EQ(cp_gen_pool_create_shared(nullptr, kRegion, kOrder), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cp_gen_pool_create_shared(region.c() + 8, kRegion - 8, kOrder), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cp_gen_pool_create_shared(region.p, 64, kOrder), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cp_gen_pool_create_shared(region.p, kRegion, 41), nullptr);
  EXPECT_EQ(errno, EINVAL);
  cp_gen_pool *p = cp_gen_pool_create_shared(region.p, kRegion, kOrder);
  ASSERT_NE(p, nullptr);
  const uintptr_t base = reinterpret_cast<uintptr_t>(region.p);
  const uintptr_t d = base + kDataOff;
  // Adds the region cannot hold as described.
  EXPECT_EQ(cp_gen_pool_add(p, base + 64, 4096, -1), -EINVAL);              // over the header
  EXPECT_EQ(cp_gen_pool_add(p, base + kRegion - 4096, 8192, -1), -EINVAL);  // straddles the end
  EXPECT_EQ(cp_gen_pool_add(p, 0, 4096, -1), -EINVAL);                      // address 0
  EXPECT_EQ(cp_gen_pool_add(nullptr, d, 4096, -1), -EINVAL);
  ASSERT_EQ(cp_gen_pool_add(p, d, kDataSize, -1), 0);
  EXPECT_EQ(cp_gen_pool_add(p, d + 4096, 4096, -1), -EINVAL);  // overlap
  uintptr_t a = cp_gen_pool_alloc(p, 256);
  uintptr_t b = cp_gen_pool_alloc(p, 128);
  uintptr_t f = cp_gen_pool_alloc(p, 64);
  ASSERT_EQ(a, d);
  ASSERT_EQ(b, d + 256);
  ASSERT_EQ(cp_gen_pool_free(p, f, 64), 0);
  const size_t avail = cp_gen_pool_avail(p);
  struct free_case {
    const char *name;
    uintptr_t addr;
    size_t size;
  };
  const free_case frees[] = {
      {.name = "not allocated", .addr = d + 8192, .size = 64},
      {.name = "double free", .addr = f, .size = 64},
      {.name = "size too small", .addr = a, .size = 192},
      {.name = "size too large", .addr = a, .size = 384},
      {.name = "interior", .addr = a + 64, .size = 64},
      {.name = "in the metadata", .addr = base + 4096, .size = 64},
      {.name = "offset instead of address", .addr = kDataOff, .size = 256},
      {.name = "size past the chunk", .addr = a, .size = SIZE_MAX},
  };
  for (const auto &c : frees) {
    EXPECT_EQ(cp_gen_pool_free(p, c.addr, c.size), -EINVAL) << c.name;
    EXPECT_EQ(cp_gen_pool_avail(p), avail) << c.name;
  }
  EXPECT_EQ(cp_gen_pool_free(nullptr, a, 256), -EINVAL);
  // NULL and out-of-range arguments to the translation helpers and accessors.
  EXPECT_EQ(cp_gen_pool_shared_offset(nullptr, a), UINTPTR_MAX);
  EXPECT_EQ(cp_gen_pool_shared_offset(p, base - 1), UINTPTR_MAX);
  EXPECT_EQ(cp_gen_pool_shared_offset(p, base + kRegion), UINTPTR_MAX);
  EXPECT_EQ(cp_gen_pool_shared_offset(p, a), kDataOff);
  EXPECT_EQ(cp_gen_pool_shared_addr(nullptr, 0), 0u);
  EXPECT_EQ(cp_gen_pool_shared_addr(p, kRegion), 0u);
  EXPECT_EQ(cp_gen_pool_shared_addr(p, kDataOff), a);
  cp_gen_pool *priv = cp_gen_pool_create(kOrder, -1);
  ASSERT_NE(priv, nullptr);
  EXPECT_EQ(cp_gen_pool_shared_offset(priv, a), UINTPTR_MAX);
  EXPECT_EQ(cp_gen_pool_shared_addr(priv, 0), 0u);
  EXPECT_EQ(cp_gen_pool_destroy(priv), 0);
  EXPECT_EQ(cp_gen_pool_shared_meta_avail(nullptr), 0u);
  EXPECT_EQ(cp_gen_pool_avail(nullptr), 0u);
  EXPECT_EQ(cp_gen_pool_alloc(nullptr, 64), 0u);
  EXPECT_EQ(cp_gen_pool_destroy(nullptr), -EINVAL);
  // set_algo: what the region's word cannot hold is refused, the old algorithm stays.
  cp_genpool_data_fixed far{.offset = (size_t{1} << 56) + 4096};
  cp_gen_pool_set_algo(p, CP_GENPOOL_FIXED, &far);
  EXPECT_STRNE(cp_last_error(), "");
  EXPECT_EQ(cp_gen_pool_alloc(p, 64), f);  // still first fit
  EXPECT_EQ(cp_gen_pool_free(p, f, 64), 0);
  cp_genpool_data_align huge{.align = size_t{1} << 56};
  cp_gen_pool_set_algo(p, CP_GENPOOL_FIRST_FIT_ALIGN, &huge);
  EXPECT_EQ(cp_gen_pool_alloc(p, 64), f);
  EXPECT_EQ(cp_gen_pool_free(p, f, 64), 0);
  // destroy on a shared handle releases the handle, whatever is allocated.
  cp_gen_pool *q = cp_gen_pool_attach_shared(region.p, kRegion);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(cp_gen_pool_destroy(q), 0);
  q = cp_gen_pool_attach_shared(region.p, kRegion);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(cp_gen_pool_free(q, a, 256), 0);
  EXPECT_EQ(cp_gen_pool_free(q, b, 128), 0);
  EXPECT_EQ(cp_gen_pool_avail(q), kDataSize);
  EXPECT_EQ(cp_gen_pool_destroy(q), 0);
  EXPECT_EQ(cp_gen_pool_destroy(p), 0);
}

// ---- several mappings -----------------------------------------------------------------------
// One memfd mapped twice in this process: the same region at two addresses.
TEST(GenPoolSharedMappings, TwoAddressesOneRegion) {
  int fd = memfd_create("gp_two", 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, kRegion), 0);
  void *m1 = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  void *m2 = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(m1, MAP_FAILED);
  ASSERT_NE(m2, MAP_FAILED);
  ASSERT_NE(m1, m2);
  close(fd);
  const uintptr_t b1 = reinterpret_cast<uintptr_t>(m1), b2 = reinterpret_cast<uintptr_t>(m2);
  cp_gen_pool *p = cp_gen_pool_create_shared(m1, kRegion, kOrder);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(cp_gen_pool_add_virt(p, b1 + kDataOff, 0x80000000, kDataSize, -1), 0);
  cp_gen_pool *q = cp_gen_pool_attach_shared(m2, kRegion);
  ASSERT_NE(q, nullptr);
  // Each handle sees the chunk inside its own mapping.
  EXPECT_TRUE(cp_gen_pool_has_addr(q, b2 + kDataOff, kDataSize));
  EXPECT_FALSE(cp_gen_pool_has_addr(q, b1 + kDataOff, 1));
  EXPECT_EQ(cp_gen_pool_virt_to_phys(q, b2 + kDataOff + 128), 0x80000080u);
  uintptr_t a = cp_gen_pool_alloc(q, 1000);
  ASSERT_EQ(a, b2 + kDataOff);
  std::memset(reinterpret_cast<void *>(a), 0x5a, 1000);
  EXPECT_EQ(cp_gen_pool_alloc(p, 64), b1 + kDataOff + 1024);  // past q's allocation
  // Handing it over: the offset means the same in both.
  uintptr_t off = cp_gen_pool_shared_offset(q, a);
  uintptr_t a1 = cp_gen_pool_shared_addr(p, off);
  EXPECT_EQ(static_cast<unsigned char>(*reinterpret_cast<char *>(a1 + 999)), 0x5a);
  EXPECT_EQ(cp_gen_pool_free(p, a, 1000), -EINVAL);  // q's address means nothing to p
  EXPECT_EQ(cp_gen_pool_free(p, a1, 1000), 0);
  EXPECT_EQ(cp_gen_pool_free(q, b2 + kDataOff + 1024, 64), 0);
  EXPECT_EQ(cp_gen_pool_avail(p), kDataSize);
  cp_gen_pool_detach(q);
  cp_gen_pool_detach(p);
  munmap(m1, kRegion);
  munmap(m2, kRegion);
}

// N processes, each mapping the region at its own address, allocate stamped blocks, hand them
// to the next process as offsets, and check and free what they were handed.
struct handoff {
  static constexpr int kMax = 8, kPer = 64;
  std::atomic<int> done;
  std::atomic<uint64_t> off[kMax][kPer];  // by the receiver; 0: none
  std::atomic<uint64_t> size[kMax][kPer];
};

void stamp(uintptr_t a, size_t n, uint64_t v) {
  for (size_t i = 0; i + 8 <= n; i += 8) std::memcpy(reinterpret_cast<void *>(a + i), &v, 8);
}
bool stamped(uintptr_t a, size_t n, uint64_t v) {
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t x;
    std::memcpy(&x, reinterpret_cast<void *>(a + i), 8);
    if (x != v) return false;
  }
  return true;
}

// Takes and frees what the previous process handed over; counts bad stamps and failed frees.
int drain(cp_gen_pool *p, handoff *ho, int k, int nproc) {
  int bad = 0;
  for (int i = 0; i < handoff::kPer; ++i) {
    uint64_t off = ho->off[k][i].load(std::memory_order_acquire);
    if (!off) continue;
    uintptr_t a = cp_gen_pool_shared_addr(p, off);
    size_t sz = ho->size[k][i].load(std::memory_order_relaxed);
    uint64_t v;
    std::memcpy(&v, reinterpret_cast<void *>(a), 8);
    if ((v >> 32) != static_cast<uint64_t>((k + nproc - 1) % nproc) || !stamped(a, sz, v)) ++bad;
    if (cp_gen_pool_free(p, a, sz) != 0) ++bad;
    ho->off[k][i].store(0, std::memory_order_release);
  }
  return bad;
}

int child(int fd, handoff *ho, int k, int nproc) {
  void *m = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return 2;
  cp_gen_pool *p = cp_gen_pool_attach_shared(m, kRegion);
  if (!p) return 3;
  corepool::chaos::rng r(static_cast<uint64_t>(k) * 7 + 1);
  const int to = (k + 1) % nproc;
  int bad = 0;
  for (int round = 0; round < (GP_SANITIZED ? 50 : 300); ++round) {
    // Allocate and stamp; hand every other block over, check and free the rest.
    uintptr_t mine[handoff::kPer];
    size_t msz[handoff::kPer];
    uint64_t val[handoff::kPer];
    int n = 0;
    for (int i = 0; i < handoff::kPer; ++i) {
      size_t sz = 64 * (1 + r.next() % 8);
      uintptr_t a = cp_gen_pool_alloc(p, sz);
      if (!a) continue;
      val[n] = (uint64_t(k) << 32) | uint64_t(round * handoff::kPer + i);
      stamp(a, sz, val[n]);
      mine[n] = a;
      msz[n++] = sz;
    }
    for (int i = 0; i < n; i += 2) {
      // The receiver frees what was in the slot; meanwhile take what is handed to us.
      while (ho->off[to][i].load(std::memory_order_acquire) != 0) {
        bad += drain(p, ho, k, nproc);
        sched_yield();
      }
      ho->size[to][i].store(msz[i], std::memory_order_relaxed);
      ho->off[to][i].store(cp_gen_pool_shared_offset(p, mine[i]), std::memory_order_release);
    }
    for (int i = 1; i < n; i += 2) {
      if (!stamped(mine[i], msz[i], val[i])) ++bad;
      if (cp_gen_pool_free(p, mine[i], msz[i]) != 0) ++bad;
    }
    bad += drain(p, ho, k, nproc);
  }
  ho->done.fetch_add(1, std::memory_order_acq_rel);
  // Drain until everyone is done (the previous process may still hand blocks over).
  while (true) {
    bool all = ho->done.load(std::memory_order_acquire) == nproc;
    bad += drain(p, ho, k, nproc);
    if (all) break;
    sched_yield();
  }
  cp_gen_pool_detach(p);
  munmap(m, kRegion);
  return bad ? 1 : 0;
}

void run_handoff(int nproc) {
  int fd = memfd_create("gp_handoff", 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, kRegion), 0);
  void *m = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(m, MAP_FAILED);
  void *hm =
      mmap(nullptr, sizeof(handoff), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(hm, MAP_FAILED);
  auto *ho = new (hm) handoff();
  cp_gen_pool *p = cp_gen_pool_create_shared(m, kRegion, kOrder);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(cp_gen_pool_add(p, reinterpret_cast<uintptr_t>(m) + kDataOff, kDataSize, -1), 0);
  std::vector<pid_t> pids;
  for (int k = 0; k < nproc; ++k) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(child(fd, ho, k, nproc));
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
  }
  for (int k = 0; k < nproc; ++k)
    for (int i = 0; i < handoff::kPer; ++i) EXPECT_EQ(ho->off[k][i].load(), 0u);
  EXPECT_EQ(cp_gen_pool_avail(p), kDataSize);  // exact: everything came back
  EXPECT_EQ(cp_gen_pool_alloc(p, kDataSize), reinterpret_cast<uintptr_t>(m) + kDataOff);
  cp_gen_pool_detach(p);
  munmap(hm, sizeof(handoff));
  munmap(m, kRegion);
  close(fd);
}

TEST(GenPoolSharedMappings, HandOffTwoProcesses) {
  run_handoff(2);
}
TEST(GenPoolSharedMappings, HandOffFourProcesses) {
  run_handoff(4);
}
TEST(GenPoolSharedMappings, HandOffEightProcesses) {
  run_handoff(8);
}

// ---- adders killed with SIGKILL ------------------------------------------------------------
// Region: [metadata | data chunks of kKillChunk bytes, chunk k at kKillData + k * kKillChunk].
// A control page outside it holds the next chunk index the adders use.
constexpr size_t kKillRegion = 8 << 20, kKillData = 4 << 20, kKillChunk = 8192;
constexpr uint64_t kKillSlots = (kKillRegion - kKillData) / kKillChunk;

struct kill_ctl {
  std::atomic<uint64_t> next;  // index of the next chunk to add
};

struct kill_rig {
  mapping region{kKillRegion, true};
  mapping ctl_mem{4096, true};
  kill_ctl *ctl = new (ctl_mem.p) kill_ctl();
  kill_rig() { format(); }
  void format() {
    cp_gen_pool *p = cp_gen_pool_create_shared(region.p, kKillData, kOrder);
    EXPECT_NE(p, nullptr);
    cp_gen_pool_detach(p);
    ctl->next.store(0);
  }
  uintptr_t chunk_addr(uint64_t k) const {
    return reinterpret_cast<uintptr_t>(region.c() + kKillData + k * kKillChunk);
  }
};

// The adder: adds chunks at ctl->next until the metadata or the slots run out. An add that
// finds its chunk already there (-EINVAL: the previous adder died after publishing, before
// moving `next`) moves on.
[[noreturn]] void adder(kill_rig *rig) {
  cp_gen_pool *p = cp_gen_pool_attach_shared(rig->region.p, kKillData);
  if (!p) _exit(3);
  for (;;) {
    uint64_t k = rig->ctl->next.load(std::memory_order_acquire);
    if (k >= kKillSlots) _exit(0);
    int r = cp_gen_pool_add(p, rig->chunk_addr(k), kKillChunk, -1);
    if (r == -ENOMEM) _exit(0);
    if (r != 0 && r != -EINVAL) _exit(4);
    rig->ctl->next.store(k + 1, std::memory_order_release);
  }
}

struct chunk_list {
  std::vector<uintptr_t> starts;
  bool ok = true;
};
void collect(cp_gen_pool *, const cp_gen_pool_chunk_info *ci, void *data) {
  auto *l = static_cast<chunk_list *>(data);
  if (ci->size != kKillChunk) l->ok = false;
  l->starts.push_back(ci->start);
}

// The survivors' check after a kill: the region attaches (every record validates), the chunks
// are distinct slots below `next` + 1 in add order, avail is exact, every chunk is wholly
// allocatable and then nothing more is; the add lock is usable (a new add succeeds); an add of
// a chunk already there is refused. Returns the number of chunks.
size_t check_after_kill(kill_rig &rig) {
  cp_gen_pool *q = cp_gen_pool_attach_shared(rig.region.p, kKillData);
  EXPECT_NE(q, nullptr) << cp_last_error();
  if (!q) return 0;
  chunk_list l;
  cp_gen_pool_for_each_chunk(q, collect, &l);
  EXPECT_TRUE(l.ok);
  const uint64_t next = rig.ctl->next.load();
  for (size_t i = 0; i < l.starts.size(); ++i) {
    EXPECT_LE(l.starts[i], rig.chunk_addr(next)) << "chunk past the adders' index";
    if (i) {
      EXPECT_GT(l.starts[i], l.starts[i - 1]) << "chunks out of add order";
    }
  }
  EXPECT_EQ(cp_gen_pool_size(q), l.starts.size() * kKillChunk);
  EXPECT_EQ(cp_gen_pool_avail(q), cp_gen_pool_size(q));
  for (uintptr_t s : l.starts) EXPECT_EQ(cp_gen_pool_alloc(q, kKillChunk), s);
  EXPECT_EQ(cp_gen_pool_alloc(q, 64), 0u);
  for (uintptr_t s : l.starts) EXPECT_EQ(cp_gen_pool_free(q, s, kKillChunk), 0);
  if (!l.starts.empty()) {
    EXPECT_EQ(cp_gen_pool_add(q, l.starts.back(), kKillChunk, -1), -EINVAL);
  }
  cp_gen_pool_detach(q);
  return l.starts.size();
}

#ifdef COREPOOL_INJECT
// The point at which the adder kills itself (SIGKILL), in the child only.
const char *g_kill_point = nullptr;
int g_kill_after = 1;  // the hit of g_kill_point that kills
void kill_hook(const char *point) {
  if (g_kill_point && std::strcmp(point, g_kill_point) == 0 && --g_kill_after == 0)
    kill(getpid(), SIGKILL);
}
#endif

// Each step of add: killed there, the chunk is in the list exactly when the kill came after
// its publication; the next add (through the dead adder's robust lock) links after it.
TEST(GenPoolSharedKill, AdderKilledAtEachStepOfAdd) {
#ifndef COREPOOL_INJECT
  GTEST_SKIP() << "needs the injection points (COREPOOL_INJECT)";
#else
  struct step {
    const char *point;
    bool published;
  };
  const step steps[] = {
      {.point = "genpool.add.carved", .published = false},
      {.point = "genpool.add.formatted", .published = false},
      {.point = "genpool.add.published", .published = true},
  };
  kill_rig rig;
  for (int rep = 0; rep < 3; ++rep) {
    for (const auto &st : steps) {
      const size_t before = check_after_kill(rig);
      const uint64_t k = rig.ctl->next.load();
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        g_kill_point = st.point;
        void (*hook)(const char *) = kill_hook;
        std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
        adder(&rig);
      }
      int wst = 0;
      ASSERT_EQ(waitpid(pid, &wst, 0), pid);
      ASSERT_TRUE(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL) << st.point << " status " << wst;
      const size_t after = check_after_kill(rig);
      EXPECT_EQ(after, before + (st.published ? 1 : 0)) << st.point;
      cp_gen_pool *q = cp_gen_pool_attach_shared(rig.region.p, kKillData);
      ASSERT_NE(q, nullptr);
      EXPECT_EQ(cp_gen_pool_has_addr(q, rig.chunk_addr(k), kKillChunk), st.published) << st.point;
      // The survivor adds (the dead adder may hold the lock): the same slot when it was not
      // published, else it is refused and the next slot goes in.
      EXPECT_EQ(cp_gen_pool_add(q, rig.chunk_addr(k), kKillChunk, -1), st.published ? -EINVAL : 0)
          << st.point;
      if (st.published) {
        EXPECT_EQ(cp_gen_pool_add(q, rig.chunk_addr(k + 1), kKillChunk, -1), 0);
      }
      rig.ctl->next.store(k + (st.published ? 2 : 1));
      EXPECT_EQ(cp_gen_pool_size(q), (after + 1) * kKillChunk) << st.point;
      cp_gen_pool_detach(q);
    }
  }
#endif
}

// Adders killed at random moments, at least 1,000 times; the survivors' check after each.
TEST(GenPoolSharedKill, AddersKilledAtRandom) {
  kill_rig rig;
  corepool::chaos::rng r(4242);
  const int kills = GP_SANITIZED ? 300 : 1000;
  int killed = 0, formats = 0;
  for (int i = 0; i < kills; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) adder(&rig);
    // From at once to well into its adds.
    const useconds_t wait = static_cast<useconds_t>(r.next() % 400);
    if (wait) usleep(wait);
    kill(pid, SIGKILL);
    int wst = 0;
    ASSERT_EQ(waitpid(pid, &wst, 0), pid);
    if (WIFSIGNALED(wst)) {
      ++killed;
    } else {
      ASSERT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0) << "adder failed: " << wst;
    }
    check_after_kill(rig);
    if (::testing::Test::HasFailure()) FAIL() << "after kill " << i;
    cp_gen_pool *q = cp_gen_pool_attach_shared(rig.region.p, kKillData);
    ASSERT_NE(q, nullptr);
    const bool full =
        cp_gen_pool_shared_meta_avail(q) < cp_gen_pool_chunk_meta_size(kOrder, kKillChunk) ||
        rig.ctl->next.load() >= kKillSlots;
    cp_gen_pool_detach(q);
    if (full) {
      rig.format();
      ++formats;
    }
  }
  EXPECT_GT(killed, kills / 2);
  RecordProperty("formats", formats);
}

// A process killed (SIGKILL) at each step of alloc and free, on a random hit of that step. It
// records each allocation in a control block first (size, then address; address | 1 while
// freeing), so the survivor frees what it held and bounds what the one request in flight at
// the kill may have taken. After each kill: every recorded allocation frees, and what is not
// allocatable afterwards is at most that one request.
struct rec_ctl {
  static constexpr int kSlots = 16;
  std::atomic<uint64_t> size[kSlots];  // 0: empty
  std::atomic<uint64_t> addr[kSlots];  // 0: alloc pending; addr | 1: being freed
};

// One step of a recording process: allocate into an empty slot or free a full one.
void alloc_free_step(cp_gen_pool *p, rec_ctl *ctl, corepool::chaos::rng &r) {
  const int i = static_cast<int>(r.next() % rec_ctl::kSlots);
  const uint64_t sz = ctl->size[i].load();
  if (!sz) {
    const uint64_t want = 64 * (1 + r.next() % 128);  // 1 to 4 map words at order 6
    ctl->size[i].store(want);
    uintptr_t a = cp_gen_pool_alloc(p, want);
    if (a)
      ctl->addr[i].store(a);
    else
      ctl->size[i].store(0);
  } else {
    const uint64_t a = ctl->addr[i].load();
    ctl->addr[i].store(a | 1);
    if (cp_gen_pool_free(p, a, sz) != 0) _exit(4);
    ctl->addr[i].store(0);
    ctl->size[i].store(0);
  }
}

[[noreturn, maybe_unused]] void alloc_free_child(void *mem, size_t mem_size, rec_ctl *ctl,
                                                 uint64_t seed) {
  cp_gen_pool *p = cp_gen_pool_attach_shared(mem, mem_size);
  if (!p) _exit(3);
  corepool::chaos::rng r(seed);
  for (int op = 0; op < 200000; ++op) alloc_free_step(p, ctl, r);
  _exit(5);  // the kill point was never reached
}

// The survivor's part after a kill: frees every recorded allocation, empties the records and
// returns the bytes of the requests that were in flight (what the dead process may still hold).
uint64_t free_records(cp_gen_pool *q, rec_ctl *ctl) {
  uint64_t inflight = 0;
  for (int i = 0; i < rec_ctl::kSlots; ++i) {
    const uint64_t sz = ctl->size[i].load(), a = ctl->addr[i].load();
    if (!sz) continue;
    if (!a) {
      inflight += sz;  // inside alloc: may hold some of it
    } else if (a & 1) {
      const int rc = cp_gen_pool_free(q, a & ~uint64_t{1}, sz);  // inside free
      EXPECT_TRUE(rc == 0 || rc == -EINVAL);
      inflight += sz;
    } else {
      EXPECT_EQ(cp_gen_pool_free(q, a, sz), 0) << "slot " << i;
    }
    ctl->size[i].store(0);
    ctl->addr[i].store(0);
  }
  EXPECT_LE(inflight, 64u * 128) << "more than one request in flight";
  return inflight;
}

// Bytes allocatable, down to single granules (so nothing free is left out); checks that avail
// never counts more than that.
uint64_t allocatable(cp_gen_pool *q) {
  std::vector<std::pair<uintptr_t, size_t>> got;
  uint64_t bytes = 0;
  for (size_t sz : {size_t{8192}, size_t{1024}, size_t{64}}) {
    for (uintptr_t a; (a = cp_gen_pool_alloc(q, sz)) != 0; bytes += sz) got.emplace_back(a, sz);
  }
  for (auto [a, sz] : got) EXPECT_EQ(cp_gen_pool_free(q, a, sz), 0);
  EXPECT_LE(cp_gen_pool_avail(q), bytes) << "avail counts held granules";
  return bytes;
}

#ifdef COREPOOL_INJECT
TEST(GenPoolSharedKill, AllocFreeKilledAtEachStep) {
  const size_t region = 1 << 20, meta = 256 * 1024, data = region - meta;
  mapping mem(region, true), ctl_mem(sizeof(rec_ctl), true);
  ASSERT_NE(mem.p, nullptr);
  ASSERT_NE(ctl_mem.p, nullptr);
  auto *ctl = new (ctl_mem.p) rec_ctl();
  const char *points[] = {"genpool.claim.mid", "genpool.free.validated", "genpool.free.claimed",
                          "genpool.release.mid"};
  corepool::chaos::rng r(99);
  const int reps = GP_SANITIZED ? 4 : 12;
  for (const char *point : points) {
    for (int rep = 0; rep < reps; ++rep) {
      std::memset(ctl_mem.p, 0, sizeof(rec_ctl));
      cp_gen_pool *p = cp_gen_pool_create_shared(mem.p, region, kOrder);
      ASSERT_NE(p, nullptr);
      const uintptr_t d = reinterpret_cast<uintptr_t>(mem.c() + meta);
      ASSERT_EQ(cp_gen_pool_add(p, d, data, -1), 0);
      cp_gen_pool_detach(p);
      const int after = 1 + static_cast<int>(r.next() % 200);
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        g_kill_point = point;
        g_kill_after = after;
        void (*hook)(const char *) = kill_hook;
        std::atomic_ref(cp_inject_hook).store(hook, std::memory_order_release);
        alloc_free_child(mem.p, region, ctl, r.next());
      }
      int wst = 0;
      ASSERT_EQ(waitpid(pid, &wst, 0), pid);
      ASSERT_TRUE(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL) << point << " status " << wst;
      cp_gen_pool *q = cp_gen_pool_attach_shared(mem.p, region);
      ASSERT_NE(q, nullptr);
      const uint64_t inflight = free_records(q, ctl);
      EXPECT_GE(allocatable(q) + inflight, data) << point << " after " << after;
      EXPECT_GE(cp_gen_pool_avail(q) + inflight, data) << point;
      cp_gen_pool_detach(q);
      if (::testing::Test::HasFailure()) return;
    }
  }
}
#endif

// A process adding chunks, allocating and freeing, killed at random moments, 1,000 times
// (300 under sanitizers) on one region that persists across kills (reformatted when its
// metadata or slots run out). After each kill: the region attaches, its chunks are distinct
// and in add order, every recorded allocation frees, and what is not allocatable grew by at
// most the request that was in flight.
TEST(GenPoolSharedKill, ProcessKilledAtRandomWhileAddingAllocatingFreeing) {
  kill_rig rig;
  mapping ctl_mem(sizeof(rec_ctl), true);
  ASSERT_NE(ctl_mem.p, nullptr);
  auto *rec = new (ctl_mem.p) rec_ctl();
  corepool::chaos::rng r(777);
  const int kills = GP_SANITIZED ? 300 : 1000;
  uint64_t lost = 0;  // bytes the dead processes still hold
  int killed = 0;
  for (int i = 0; i < kills; ++i) {
    const uint64_t seed = r.next();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      cp_gen_pool *p = cp_gen_pool_attach_shared(rig.region.p, kKillData);
      if (!p) _exit(3);
      corepool::chaos::rng cr(seed);
      for (;;) {
        if (cr.next() % 16 == 0) {  // an add, as adder() does
          uint64_t k = rig.ctl->next.load(std::memory_order_acquire);
          if (k >= kKillSlots) _exit(0);
          int rc = cp_gen_pool_add(p, rig.chunk_addr(k), kKillChunk, -1);
          if (rc == -ENOMEM) _exit(0);
          if (rc != 0 && rc != -EINVAL) _exit(4);
          rig.ctl->next.store(k + 1, std::memory_order_release);
        } else {
          alloc_free_step(p, rec, cr);
        }
      }
    }
    const useconds_t wait = static_cast<useconds_t>(r.next() % 400);
    if (wait) usleep(wait);
    kill(pid, SIGKILL);
    int wst = 0;
    ASSERT_EQ(waitpid(pid, &wst, 0), pid);
    if (WIFSIGNALED(wst))
      ++killed;
    else
      ASSERT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0) << "child failed: " << wst;
    cp_gen_pool *q = cp_gen_pool_attach_shared(rig.region.p, kKillData);
    ASSERT_NE(q, nullptr) << "after kill " << i << ": " << cp_last_error();
    chunk_list l;
    cp_gen_pool_for_each_chunk(q, collect, &l);
    EXPECT_TRUE(l.ok);
    for (size_t j = 1; j < l.starts.size(); ++j) EXPECT_GT(l.starts[j], l.starts[j - 1]);
    const uint64_t inflight = free_records(q, rec);
    const uint64_t size = cp_gen_pool_size(q), now_lost = size - allocatable(q);
    EXPECT_LE(now_lost, lost + inflight) << "after kill " << i;
    lost = now_lost;
    const bool full =
        cp_gen_pool_shared_meta_avail(q) < cp_gen_pool_chunk_meta_size(kOrder, kKillChunk) ||
        rig.ctl->next.load() >= kKillSlots || lost > size / 4;
    cp_gen_pool_detach(q);
    if (::testing::Test::HasFailure()) FAIL() << "after kill " << i;
    if (full) {
      rig.format();
      lost = 0;
    }
  }
  EXPECT_GT(killed, kills / 2);
}

}  // namespace
