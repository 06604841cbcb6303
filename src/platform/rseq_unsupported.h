// Architectures without corepool sequences yet (aarch64 until it gets its own).
// rseq_arch_supported() is false, so the platform layer runs in mode `off`, rseq_cpu_start()
// returns -1 and the pools take their fallback paths: these bodies are never reached, and
// trap loudly if they ever are.
#pragma once

namespace corepool::platform {

constexpr bool rseq_arch_supported() noexcept {
  return false;
}

static inline int rseq_cmpeqv_storev(intptr_t *, intptr_t, intptr_t, int) noexcept {
  __builtin_trap();
}
static inline int rseq_addv(intptr_t *, intptr_t, int) noexcept {
  __builtin_trap();
}
static inline int rseq_addv(intptr_t *, intptr_t, int, rseq_abi *) noexcept {
  __builtin_trap();
}
static inline int rseq_stack_push(rseq_stack *, void *, int, rseq_abi *) noexcept {
  __builtin_trap();
}
static inline int rseq_stack_pop(rseq_stack *, void **, int, rseq_abi *) noexcept {
  __builtin_trap();
}
static inline int rseq_stack_push_bulk(rseq_stack *, void *const *, intptr_t, int,
                                       rseq_abi *) noexcept {
  __builtin_trap();
}
static inline int rseq_stack_pop_bulk(rseq_stack *, void **, intptr_t, intptr_t *, int,
                                      rseq_abi *) noexcept {
  __builtin_trap();
}

static inline int rseq_thread_stack_push(rseq_stack *, void *, rseq_abi *) noexcept {
  __builtin_trap();
}
static inline int rseq_thread_stack_pop(rseq_stack *, void **, rseq_abi *) noexcept {
  __builtin_trap();
}
static inline int rseq_thread_stack_push_bulk(rseq_stack *, void *const *, intptr_t,
                                              rseq_abi *) noexcept {
  __builtin_trap();
}
static inline int rseq_thread_stack_pop_bulk(rseq_stack *, void **, intptr_t, intptr_t *,
                                             rseq_abi *) noexcept {
  __builtin_trap();
}

static inline int rseq_ring_push(intptr_t *, const intptr_t *, void **, intptr_t, void *,
                                 int) noexcept {
  __builtin_trap();
}
static inline int rseq_ring_push_bulk(intptr_t *, const intptr_t *, void **, intptr_t,
                                      void *const *, intptr_t, int) noexcept {
  __builtin_trap();
}

// ---- per-CPU word operations (the this_cpu family) ---------------------------------------
template <class T>
static inline int rseq_store(T *, T, int, rseq_abi *) noexcept {
  __builtin_trap();
}
template <class T>
static inline int rseq_add(T *, T, int, rseq_abi *) noexcept {
  __builtin_trap();
}
template <class T>
static inline int rseq_add_return(T *, T, T *, int, rseq_abi *) noexcept {
  __builtin_trap();
}
template <class T>
static inline int rseq_xchg(T *, T, T *, int, rseq_abi *) noexcept {
  __builtin_trap();
}
template <class T>
static inline int rseq_cmpxchg(T *, T, T, T *, int, rseq_abi *) noexcept {
  __builtin_trap();
}

}  // namespace corepool::platform
