// x86-64 sequences of qmempool/cache_rseq.h. Layout of each (as in platform/rseq_x86_64.h):
//   3:  struct rseq_cs {0, 0, start_ip = 1f, post_commit_offset = 2f - 1f, abort_ip = 4f}
//       rs->rseq_cs = &3b                                   (arms the sequence)
//   1:  if (rs->cpu_id != cpu) goto 4f
//       body; the last instruction before 2: is the single commit store to h->top
//   2:
//   4:  (after the registered signature, section __rseq_failure) jmp abort
#pragma once

namespace corepool::qmempool_detail {

using platform::rseq_abi;
static_assert(platform::detail::kRseqSig == 0x53053053, "abort signature must match registration");

#define CP_QM_RSEQ_BEGIN               \
  ".pushsection __rseq_cs, \"aw\"\n\t" \
  ".balign 32\n\t"                     \
  "3:\n\t"                             \
  ".long 0x0, 0x0\n\t"                 \
  ".quad 1f, (2f - 1f), 4f\n\t"        \
  ".popsection\n\t"                    \
  "leaq 3b(%%rip), %%rax\n\t"          \
  "movq %%rax, %[rseq_cs]\n\t"         \
  "1:\n\t"                             \
  "cmpl %[cpu], %[cur_cpu]\n\t"        \
  "jnz 4f\n\t"

#define CP_QM_RSEQ_END                      \
  "2:\n\t"                                  \
  ".pushsection __rseq_failure, \"ax\"\n\t" \
  ".byte 0x0f, 0xb9, 0x3d\n\t"              \
  ".long 0x53053053\n\t"                    \
  "4:\n\t"                                  \
  "jmp %l[abort]\n\t"                       \
  ".popsection\n\t"

// pop:  if (h->top == 0) FAIL; *out = slots[top - 1]; h->top -= 1.       commit: h->top
static inline int cache_pop(rseq_abi *rs, cache_head *h, void **out, int cpu) noexcept {
  void *obj;
  asm goto(CP_QM_RSEQ_BEGIN
           "movq (%[h]), %%rcx\n\t"
           "testq %%rcx, %%rcx\n\t"
           "jz %l[fail]\n\t"                          // empty (top is never negative)
           "movq 56(%[h], %%rcx, 8), %[obj]\n\t"     // slots[top - 1]: slots start at h + 64
           "subq $1, %%rcx\n\t"
           "movq %%rcx, (%[h])\n\t"                   // commit
           CP_QM_RSEQ_END
           : [obj] "=&r"(obj)
           : [cpu] "r"(cpu), [cur_cpu] "m"(rs->cpu_id), [rseq_cs] "m"(rs->rseq_cs), [h] "r"(h)
           : "memory", "cc", "rax", "rcx"
           : abort, fail);
  *out = obj;
  return platform::CP_RSEQ_OK;
abort:
  return platform::CP_RSEQ_ABORT;
fail:
  return platform::CP_RSEQ_FAIL;
}

// push: if (h->top >= h->cap) FAIL; slots[top] = obj; h->top += 1.       commit: h->top
static inline int cache_push(rseq_abi *rs, cache_head *h, void *obj, int cpu) noexcept {
  asm goto(CP_QM_RSEQ_BEGIN
           "movq (%[h]), %%rcx\n\t"
           "cmpq 8(%[h]), %%rcx\n\t"
           "jge %l[fail]\n\t"                          // full
           "movq %[obj], 64(%[h], %%rcx, 8)\n\t"      // speculative: the slot above top
           "addq $1, %%rcx\n\t"
           "movq %%rcx, (%[h])\n\t"                    // commit
           CP_QM_RSEQ_END
           :
           : [cpu] "r"(cpu), [cur_cpu] "m"(rs->cpu_id), [rseq_cs] "m"(rs->rseq_cs), [h] "r"(h),
             [obj] "r"(obj)
           : "memory", "cc", "rax", "rcx"
           : abort, fail);
  return platform::CP_RSEQ_OK;
abort:
  return platform::CP_RSEQ_ABORT;
fail:
  return platform::CP_RSEQ_FAIL;
}

#undef CP_QM_RSEQ_END
#undef CP_QM_RSEQ_BEGIN

}  // namespace corepool::qmempool_detail
