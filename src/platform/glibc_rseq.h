// What glibc tells about its own rseq registration (glibc >= 2.35), or nothing.
#pragma once

#include <cstddef>

#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#endif

namespace corepool::platform::detail {
#if defined(RSEQ_SIG)
inline constexpr bool kGlibcHasRseq = true;
inline ptrdiff_t glibc_rseq_offset() noexcept {
  return __rseq_offset;
}
inline unsigned glibc_rseq_size() noexcept {
  return __rseq_size;
}
inline constexpr unsigned kRseqSig = RSEQ_SIG;
#else
inline constexpr bool kGlibcHasRseq = false;
inline ptrdiff_t glibc_rseq_offset() noexcept {
  return 0;
}
inline unsigned glibc_rseq_size() noexcept {
  return 0;
}
#if defined(__x86_64__)
inline constexpr unsigned kRseqSig = 0x53053053;
#else
inline constexpr unsigned kRseqSig = 0xd428bc00;
#endif
#endif
}  // namespace corepool::platform::detail
