// x86-64 restartable sequences. Included by platform/rseq.h only; see its protocol comment.
//
// Each sequence is one `asm goto` block laid out as
//   3:  struct rseq_cs {version 0, flags 0, start_ip = 1f, post_commit_offset = 2f - 1f,
//                       abort_ip = 4f}                        (section __rseq_cs)
//       rseq_area->rseq_cs = &3b                              (arms the sequence)
//   1:  if (rseq_area->cpu_id != cpu) goto 4f                 (start_ip)
//       ...body; the last instruction before 2: is the single commit store...
//   2:                                                        (post_commit_ip)
//   4:  preceded by the 4-byte signature the thread registered; jumps to the C `abort` label
//                                                             (section __rseq_failure)
// x86 stores are not reordered with other stores (TSO), so the commit store also publishes
// the speculative stores before it to any CPU that reads the committed word first.
#pragma once

namespace corepool::platform {

constexpr bool rseq_arch_supported() noexcept {
  return true;
}

#define CP_RSEQ_SIG_ASM "0x53053053"
static_assert(detail::kRseqSig == 0x53053053, "abort signature must match registration");

// Arms the sequence; a per-CPU sequence then checks its CPU, a thread's own (the
// rseq_thread_* family) starts right away: nothing to compare, the data is the thread's.
#define CP_RSEQ_ARM                    \
  ".pushsection __rseq_cs, \"aw\"\n\t" \
  ".balign 32\n\t"                     \
  "3:\n\t"                             \
  ".long 0x0, 0x0\n\t"                 \
  ".quad 1f, (2f - 1f), 4f\n\t"        \
  ".popsection\n\t"                    \
  "leaq 3b(%%rip), %%rax\n\t"          \
  "movq %%rax, %[rseq_cs]\n\t"         \
  "1:\n\t"
#define CP_RSEQ_PROLOGUE        \
  CP_RSEQ_ARM                   \
  "cmpl %[cpu], %[cur_cpu]\n\t" \
  "jnz 4f\n\t"

#define CP_RSEQ_EPILOGUE                    \
  "2:\n\t"                                  \
  ".pushsection __rseq_failure, \"ax\"\n\t" \
  ".byte 0x0f, 0xb9, 0x3d\n\t"              \
  ".long " CP_RSEQ_SIG_ASM                  \
  "\n\t"                                    \
  "4:\n\t"                                  \
  "jmp %l[abort]\n\t"                       \
  ".popsection\n\t"

#define CP_RSEQ_AREA_OPERANDS(rs) \
  [cpu] "r"(cpu), [cur_cpu] "m"((rs)->cpu_id), [rseq_cs] "m"((rs)->rseq_cs)
#define CP_RSEQ_THREAD_OPERANDS(rs) [rseq_cs] "m"((rs)->rseq_cs)

static inline int rseq_cmpeqv_storev(intptr_t *v, intptr_t expect, intptr_t newv,
                                     int cpu) noexcept {
  rseq_abi *rs = rseq_area();
  asm goto(CP_RSEQ_PROLOGUE
           "cmpq %[v], %[expect]\n\t"
           "jnz %l[fail]\n\t"
           "movq %[newv], %[v]\n\t"  // commit
           CP_RSEQ_EPILOGUE
           :
           : CP_RSEQ_AREA_OPERANDS(rs), [v] "m"(*v), [expect] "r"(expect), [newv] "r"(newv)
           : "memory", "cc", "rax"
           : abort, fail);
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
fail:
  return CP_RSEQ_FAIL;
}

static inline int rseq_addv(intptr_t *v, intptr_t count, int cpu, rseq_abi *rs) noexcept {
  asm goto(CP_RSEQ_PROLOGUE
           "addq %[count], %[v]\n\t"  // commit: one instruction, so preemption is before or after
           CP_RSEQ_EPILOGUE
           :
           : CP_RSEQ_AREA_OPERANDS(rs), [v] "m"(*v), [count] "r"(count)
           : "memory", "cc", "rax"
           : abort);
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
}
static inline int rseq_addv(intptr_t *v, intptr_t count, int cpu) noexcept {
  return rseq_addv(v, count, cpu, rseq_area());
}

// The stack sequences address the rseq_stack header through one register:
// top at 0, fence at 8, cap at 16, slots from 64. Each body is shared by the per-CPU form
// (CP_RSEQ_PROLOGUE, CP_RSEQ_AREA_OPERANDS) and the thread form (CP_RSEQ_ARM,
// CP_RSEQ_THREAD_OPERANDS); only the prologue differs.
#define CP_RSEQ_STACK_OPEN_CHECK \
  "cmpq $0, 8(%[s])\n\t"         \
  "jne %l[fail]\n\t"

#define CP_RSEQ_STACK_PUSH                                        \
  CP_RSEQ_STACK_OPEN_CHECK                                        \
  "movq (%[s]), %%rcx\n\t"                                        \
  "cmpq 16(%[s]), %%rcx\n\t"                                      \
  "jge %l[fail]\n\t"                     /* full */               \
  "movq %[item], 64(%[s], %%rcx, 8)\n\t" /* the slot above top */ \
  "addq $1, %%rcx\n\t"                                            \
  "movq %%rcx, (%[s])\n\t" /* commit */                           \
      CP_RSEQ_EPILOGUE

#define CP_RSEQ_STACK_POP                                     \
  CP_RSEQ_STACK_OPEN_CHECK                                    \
  "movq (%[s]), %%rcx\n\t"                                    \
  "testq %%rcx, %%rcx\n\t"                                    \
  "jle %l[fail]\n\t"                     /* empty */          \
  "movq 56(%[s], %%rcx, 8), %[item]\n\t" /* slots[top - 1] */ \
  "subq $1, %%rcx\n\t"                                        \
  "movq %%rcx, (%[s])\n\t" /* commit */                       \
      CP_RSEQ_EPILOGUE

#define CP_RSEQ_STACK_PUSH_BULK                                         \
  CP_RSEQ_STACK_OPEN_CHECK                                              \
  "movq (%[s]), %%rcx\n\t"                                              \
  "leaq (%%rcx, %[n]), %%rdx\n\t" /* rdx = top + n */                   \
  "cmpq 16(%[s]), %%rdx\n\t"                                            \
  "jg %l[fail]\n\t" /* does not fit: all or nothing */                  \
  "leaq 64(%[s], %%rcx, 8), %%rcx\n\t"                                  \
  "xorl %%eax, %%eax\n\t"                                               \
  "testq %[n], %[n]\n\t"                                                \
  "jl %l[fail]\n\t" /* n < 0: refused, nothing stored */                \
  "jz 6f\n\t"       /* n == 0: commit top unchanged */                  \
  "5:\n\t"                                                              \
  "movq (%[items], %%rax, 8), %%r8\n\t"                                 \
  "movq %%r8, (%%rcx, %%rax, 8)\n\t" /* speculative: slots above top */ \
  "addq $1, %%rax\n\t"                                                  \
  "cmpq %[n], %%rax\n\t"                                                \
  "jl 5b\n\t"                                                           \
  "6:\n\t"                                                              \
  "movq %%rdx, (%[s])\n\t" /* commit */                                 \
      CP_RSEQ_EPILOGUE

#define CP_RSEQ_STACK_POP_BULK                                          \
  CP_RSEQ_STACK_OPEN_CHECK                                              \
  "movq (%[s]), %%rcx\n\t"                                              \
  "movq %[n], %%rdx\n\t"                                                \
  "cmpq %%rcx, %%rdx\n\t"                                               \
  "cmovg %%rcx, %%rdx\n\t" /* k = min(n, top) */                        \
  "testq %%rdx, %%rdx\n\t"                                              \
  "jle %l[fail]\n\t"      /* empty */                                   \
  "subq %%rdx, %%rcx\n\t" /* rcx = top - k */                           \
  "leaq 64(%[s], %%rcx, 8), %%r9\n\t"                                   \
  "xorl %%eax, %%eax\n\t"                                               \
  "5:\n\t"                                                              \
  "movq (%%r9, %%rax, 8), %%r8\n\t"                                     \
  "movq %%r8, (%[out], %%rax, 8)\n\t" /* speculative: caller's array */ \
  "addq $1, %%rax\n\t"                                                  \
  "cmpq %%rdx, %%rax\n\t"                                               \
  "jl 5b\n\t"                                                           \
  "movq %%rdx, (%[popped])\n\t" /* speculative: caller's variable */    \
  "movq %%rcx, (%[s])\n\t"      /* commit */                            \
      CP_RSEQ_EPILOGUE

// The three outcomes of an asm goto sequence: fell through (committed), the kernel's abort
// handler, the sequence's own failure exit.
#define CP_RSEQ_OUTCOMES \
  return CP_RSEQ_OK;     \
  abort:                 \
  return CP_RSEQ_ABORT;  \
  fail:                  \
  return CP_RSEQ_FAIL;

// Each stack operation in both forms: PROLOGUE and OPERANDS pick the form.
#define CP_RSEQ_DEFINE_STACK_OPS(PUSH, POP, PUSH_BULK, POP_BULK, PROLOGUE, OPERANDS, CPU_PARAM) \
  static inline int PUSH(rseq_stack *s, void *item CPU_PARAM, rseq_abi *rs) noexcept {          \
    asm goto(PROLOGUE CP_RSEQ_STACK_PUSH                                                        \
             :                                                                                  \
             : OPERANDS(rs), [s] "r"(s), [item] "r"(item)                                       \
             : "memory", "cc", "rax", "rcx"                                                     \
             : abort, fail);                                                                    \
    CP_RSEQ_OUTCOMES                                                                            \
  }                                                                                             \
  /* item: a register output (asm goto outputs: GCC 11, clang 11), no store + reload; it is */  \
  /* read on the fall-through path only */                                                      \
  static inline int POP(rseq_stack *s, void **out CPU_PARAM, rseq_abi *rs) noexcept {           \
    void *item;                                                                                 \
    asm goto(PROLOGUE CP_RSEQ_STACK_POP                                                         \
             : [item] "=&r"(item)                                                               \
             : OPERANDS(rs), [s] "r"(s)                                                         \
             : "memory", "cc", "rax", "rcx"                                                     \
             : abort, fail);                                                                    \
    *out = item;                                                                                \
    CP_RSEQ_OUTCOMES                                                                            \
  }                                                                                             \
  static inline int PUSH_BULK(rseq_stack *s, void *const *items, intptr_t n CPU_PARAM,          \
                              rseq_abi *rs) noexcept {                                          \
    asm goto(PROLOGUE CP_RSEQ_STACK_PUSH_BULK                                                   \
             :                                                                                  \
             : OPERANDS(rs), [s] "r"(s), [items] "r"(items), [n] "r"(n)                         \
             : "memory", "cc", "rax", "rcx", "rdx", "r8"                                        \
             : abort, fail);                                                                    \
    CP_RSEQ_OUTCOMES                                                                            \
  }                                                                                             \
  static inline int POP_BULK(rseq_stack *s, void **out, intptr_t n, intptr_t *popped CPU_PARAM, \
                             rseq_abi *rs) noexcept {                                           \
    asm goto(PROLOGUE CP_RSEQ_STACK_POP_BULK                                                    \
             :                                                                                  \
             : OPERANDS(rs), [s] "r"(s), [out] "r"(out), [n] "r"(n), [popped] "r"(popped)       \
             : "memory", "cc", "rax", "rcx", "rdx", "r8", "r9"                                  \
             : abort, fail);                                                                    \
    CP_RSEQ_OUTCOMES                                                                            \
  }

#define CP_RSEQ_CPU_PARAM , int cpu
#define CP_RSEQ_NO_PARAM
CP_RSEQ_DEFINE_STACK_OPS(rseq_stack_push, rseq_stack_pop, rseq_stack_push_bulk, rseq_stack_pop_bulk,
                         CP_RSEQ_PROLOGUE, CP_RSEQ_AREA_OPERANDS, CP_RSEQ_CPU_PARAM)
CP_RSEQ_DEFINE_STACK_OPS(rseq_thread_stack_push, rseq_thread_stack_pop_goto,
                         rseq_thread_stack_push_bulk, rseq_thread_stack_pop_bulk, CP_RSEQ_ARM,
                         CP_RSEQ_THREAD_OPERANDS, CP_RSEQ_NO_PARAM)

// The thread pop is the asm goto form above (its outcome a direct branch in the caller),
// except under GCC's AddressSanitizer: GCC 12 with -fsanitize=address,undefined miscompiles
// the callers of that form (the thread tier's tests lose a refill and read unset outputs on
// the FAIL path). There the code comes back in a register: the same sequence and commit;
// the exits after post_commit (2:) set the code (FAIL's out of line, beside the abort
// handler, which sets ABORT).
#if defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
static inline int rseq_thread_stack_pop(rseq_stack *s, void **out, rseq_abi *rs) noexcept {
  void *item;
  int rc;
  asm volatile(CP_RSEQ_ARM
               "cmpq $0, 8(%[s])\n\t"
               "jne 7f\n\t"  // fenced
               "movq (%[s]), %%rcx\n\t"
               "testq %%rcx, %%rcx\n\t"
               "jle 7f\n\t"                            // empty
               "movq 56(%[s], %%rcx, 8), %[item]\n\t"  // slots[top - 1]
               "subq $1, %%rcx\n\t"
               "movq %%rcx, (%[s])\n\t"  // commit
               "2:\n\t"
               "xorl %[rc], %[rc]\n\t"  // CP_RSEQ_OK, falls through to 8:
               ".pushsection __rseq_failure, \"ax\"\n\t"
               "7:\n\t"
               "movl $1, %[rc]\n\t"  // CP_RSEQ_FAIL
               "jmp 8f\n\t"
               ".byte 0x0f, 0xb9, 0x3d\n\t"
               ".long " CP_RSEQ_SIG_ASM
               "\n\t"
               "4:\n\t"
               "movl $-1, %[rc]\n\t"  // CP_RSEQ_ABORT
               "jmp 8f\n\t"
               ".popsection\n\t"
               "8:\n\t"
               : [item] "=&r"(item), [rc] "=&r"(rc)
               : CP_RSEQ_THREAD_OPERANDS(rs), [s] "r"(s)
               : "memory", "cc", "rax", "rcx");
  if (rc == CP_RSEQ_OK) *out = item;
  return rc;
}
#else
static inline int rseq_thread_stack_pop(rseq_stack *s, void **out, rseq_abi *rs) noexcept {
  return rseq_thread_stack_pop_goto(s, out, rs);
}
#endif

#undef CP_RSEQ_NO_PARAM
#undef CP_RSEQ_CPU_PARAM
#undef CP_RSEQ_DEFINE_STACK_OPS
#undef CP_RSEQ_STACK_POP_BULK
#undef CP_RSEQ_STACK_PUSH_BULK
#undef CP_RSEQ_STACK_POP
#undef CP_RSEQ_STACK_PUSH
#undef CP_RSEQ_STACK_OPEN_CHECK

// ---- ring push (appended for objpool) ---------------------------------------------------
// A ring of mask + 1 slots whose `tail` only committed sequences on `cpu` modify and whose
// `head` other CPUs advance by CAS. head <= tail always and `tail` cannot change during the
// sequence, so tail - head is read consistently enough: head only grows, which only frees room.
static inline int rseq_ring_push(intptr_t *tail, const intptr_t *head, void **slots, intptr_t mask,
                                 void *item, int cpu) noexcept {
  rseq_abi *rs = rseq_area();
  asm goto(CP_RSEQ_PROLOGUE
           "movq %[tail], %%rcx\n\t"
           "movq %%rcx, %%rdx\n\t"
           "subq %[head], %%rdx\n\t"  // rdx = tail - head (>= 0)
           "cmpq %[mask], %%rdx\n\t"
           "jg %l[fail]\n\t"  // tail - head > mask: full
           "movq %%rcx, %%rdx\n\t"
           "andq %[mask], %%rdx\n\t"
           "movq %[item], (%[slots], %%rdx, 8)\n\t"  // speculative: the slot at tail is free
           "addq $1, %%rcx\n\t"
           "movq %%rcx, %[tail]\n\t"  // commit
           CP_RSEQ_EPILOGUE
           :
           : CP_RSEQ_AREA_OPERANDS(rs), [tail] "m"(*tail), [head] "m"(*head), [mask] "r"(mask),
             [slots] "r"(slots), [item] "r"(item)
           : "memory", "cc", "rax", "rcx", "rdx"
           : abort, fail);
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
fail:
  return CP_RSEQ_FAIL;
}

static inline int rseq_ring_push_bulk(intptr_t *tail, const intptr_t *head, void **slots,
                                      intptr_t mask, void *const *items, intptr_t n,
                                      int cpu) noexcept {
  rseq_abi *rs = rseq_area();
  asm goto(CP_RSEQ_PROLOGUE
           "movq %[tail], %%rcx\n\t"
           "leaq (%%rcx, %[n]), %%rdx\n\t"  // rdx = tail + n
           "movq %%rdx, %%r8\n\t"
           "subq %[head], %%r8\n\t"
           "subq $1, %%r8\n\t"  // r8 = tail + n - head - 1
           "cmpq %[mask], %%r8\n\t"
           "jg %l[fail]\n\t"  // tail + n - head > mask + 1: does not fit, all or nothing
           "xorl %%eax, %%eax\n\t"
           "testq %[n], %[n]\n\t"
           "jl %l[fail]\n\t"  // n < 0: refused, nothing stored
           "jz 6f\n\t"        // n == 0: commit tail unchanged
           "5:\n\t"
           "movq (%[items], %%rax, 8), %%r8\n\t"
           "leaq (%%rcx, %%rax), %%r9\n\t"
           "andq %[mask], %%r9\n\t"
           "movq %%r8, (%[slots], %%r9, 8)\n\t"  // speculative: free slots at tail ..
           "addq $1, %%rax\n\t"
           "cmpq %[n], %%rax\n\t"
           "jl 5b\n\t"
           "6:\n\t"
           "movq %%rdx, %[tail]\n\t"  // commit
           CP_RSEQ_EPILOGUE
           :
           : CP_RSEQ_AREA_OPERANDS(rs), [tail] "m"(*tail), [head] "m"(*head), [mask] "r"(mask),
             [slots] "r"(slots), [items] "r"(items), [n] "r"(n)
           : "memory", "cc", "rax", "rcx", "rdx", "r8", "r9"
           : abort, fail);
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
fail:
  return CP_RSEQ_FAIL;
}

// ---- per-CPU word operations (the this_cpu family) ---------------------------------------
// One template per operation for all four widths: the operands are registers of type T, so
// the assembler takes the operand size from the register names (%al / %ax / %eax / %rax).
static_assert(sizeof(uint64_t) == 8, "x86-64");

template <class T>
static inline int rseq_store(T *v, T newv, int cpu, rseq_abi *rs) noexcept {
  static_assert(rseq_word_type<T>, "8, 16, 32 or 64-bit unsigned word");
  asm goto(CP_RSEQ_PROLOGUE "mov %[newv], %[v]\n\t"  // commit
           CP_RSEQ_EPILOGUE
           :
           : CP_RSEQ_AREA_OPERANDS(rs), [v] "m"(*v), [newv] "r"(newv)
           : "memory", "cc", "rax"
           : abort);
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
}

template <class T>
static inline int rseq_add(T *v, T count, int cpu, rseq_abi *rs) noexcept {
  static_assert(rseq_word_type<T>, "8, 16, 32 or 64-bit unsigned word");
  asm goto(CP_RSEQ_PROLOGUE
           "add %[count], %[v]\n\t"  // commit: one instruction, preempted before or after
           CP_RSEQ_EPILOGUE
           :
           : CP_RSEQ_AREA_OPERANDS(rs), [v] "m"(*v), [count] "r"(count)
           : "memory", "cc", "rax"
           : abort);
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
}

template <class T>
static inline int rseq_add_return(T *v, T count, T *res, int cpu, rseq_abi *rs) noexcept {
  static_assert(rseq_word_type<T>, "8, 16, 32 or 64-bit unsigned word");
  T r;
  asm goto(CP_RSEQ_PROLOGUE
           "mov %[v], %[r]\n\t"
           "add %[count], %[r]\n\t"
           "mov %[r], %[v]\n\t"  // commit
           CP_RSEQ_EPILOGUE
           : [r] "=&r"(r)
           : CP_RSEQ_AREA_OPERANDS(rs), [v] "m"(*v), [count] "r"(count)
           : "memory", "cc", "rax"
           : abort);
  *res = r;
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
}

template <class T>
static inline int rseq_xchg(T *v, T newv, T *old, int cpu, rseq_abi *rs) noexcept {
  static_assert(rseq_word_type<T>, "8, 16, 32 or 64-bit unsigned word");
  T r;
  asm goto(CP_RSEQ_PROLOGUE
           "mov %[v], %[r]\n\t"
           "mov %[newv], %[v]\n\t"  // commit
           CP_RSEQ_EPILOGUE
           : [r] "=&r"(r)
           : CP_RSEQ_AREA_OPERANDS(rs), [v] "m"(*v), [newv] "r"(newv)
           : "memory", "cc", "rax"
           : abort);
  *old = r;
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
}

template <class T>
static inline int rseq_cmpxchg(T *v, T expect, T newv, T *old, int cpu, rseq_abi *rs) noexcept {
  static_assert(rseq_word_type<T>, "8, 16, 32 or 64-bit unsigned word");
  T r;
  asm goto(CP_RSEQ_PROLOGUE
           "mov %[v], %[r]\n\t"
           "cmp %[expect], %[r]\n\t"
           "jne 2f\n\t"             // differs: leave through post_commit, nothing stored
           "mov %[newv], %[v]\n\t"  // commit
           CP_RSEQ_EPILOGUE
           : [r] "=&r"(r)
           : CP_RSEQ_AREA_OPERANDS(rs), [v] "m"(*v), [expect] "r"(expect), [newv] "r"(newv)
           : "memory", "cc", "rax"
           : abort);
  *old = r;
  return CP_RSEQ_OK;
abort:
  return CP_RSEQ_ABORT;
}

#undef CP_RSEQ_THREAD_OPERANDS
#undef CP_RSEQ_AREA_OPERANDS
#undef CP_RSEQ_EPILOGUE
#undef CP_RSEQ_PROLOGUE
#undef CP_RSEQ_ARM
#undef CP_RSEQ_SIG_ASM

}  // namespace corepool::platform
