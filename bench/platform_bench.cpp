// Cost of the platform primitives: finding the CPU, an rseq per-CPU increment and stack
// push/pop, beside the alternatives (shared atomic, getcpu + atomic, thread_local).
#include <benchmark/benchmark.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include <corepool/cpu.h>

#include "platform/rseq.h"

namespace {
using namespace corepool::platform;

struct alignas(64) slot {
  intptr_t v;
  std::atomic<int64_t> a;
  rseq_stack stack;  // header line, then its 64 slots
  void *slots[64];
  slot() : v(0), a(0), stack{}, slots{} { stack.cap = 64; }
};
std::unique_ptr<slot[]> g_slots(new slot[cp_nr_cpu_ids()]());
alignas(64) std::atomic<uint64_t> g_shared{0};
thread_local uint64_t t_counter;

void BM_CpuId_Rseq(benchmark::State &s) {
  for (auto _ : s) benchmark::DoNotOptimize(rseq_cpu_start());
}
BENCHMARK(BM_CpuId_Rseq);

void BM_CpuId_Getcpu(benchmark::State &s) {
  for (auto _ : s) benchmark::DoNotOptimize(sched_getcpu());
}
BENCHMARK(BM_CpuId_Getcpu);

void BM_Inc_RseqPerCpu(benchmark::State &s) {
  for (auto _ : s) {
    for (;;) {
      int cpu = rseq_cpu_start();
      if (cpu < 0) {
        g_slots[cp_current_cpu()].a.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      if (rseq_addv(&g_slots[cpu].v, 1, cpu) == CP_RSEQ_OK) break;
    }
  }
}
BENCHMARK(BM_Inc_RseqPerCpu)->Threads(1)->Threads(2);

// Lower bound: the per-CPU slot found through the rseq cpu id, with no restart protection.
void BM_Inc_PerCpuUnprotected(benchmark::State &s) {
  for (auto _ : s) {
    int cpu = rseq_cpu_start();
    benchmark::DoNotOptimize(g_slots[cpu < 0 ? 0 : cpu].v++);
  }
}
BENCHMARK(BM_Inc_PerCpuUnprotected)->Threads(1);

void BM_Inc_GetcpuAtomic(benchmark::State &s) {
  for (auto _ : s) g_slots[sched_getcpu()].a.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_Inc_GetcpuAtomic)->Threads(1)->Threads(2);

void BM_Inc_SharedAtomic(benchmark::State &s) {
  for (auto _ : s) g_shared.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_Inc_SharedAtomic)->Threads(1)->Threads(2);

void BM_Inc_ThreadLocal(benchmark::State &s) {
  for (auto _ : s) {
    t_counter++;
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Inc_ThreadLocal)->Threads(1)->Threads(2);

void BM_Stack_RseqPushPop(benchmark::State &s) {
  int obj;
  for (auto _ : s) {
    void *out = nullptr;
    for (;;) {
      int cpu = rseq_cpu_start();
      if (cpu < 0) break;
      if (rseq_stack_push(&g_slots[cpu].stack, &obj, cpu, rseq_area()) != CP_RSEQ_ABORT) break;
    }
    for (;;) {
      int cpu = rseq_cpu_start();
      if (cpu < 0) break;
      if (rseq_stack_pop(&g_slots[cpu].stack, &out, cpu, rseq_area()) != CP_RSEQ_ABORT) break;
    }
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Stack_RseqPushPop)->Threads(1)->Threads(2);

void BM_Stack_ThreadPrivateArray(benchmark::State &s) {
  void *stack[64];
  intptr_t top = 0;
  int obj;
  for (auto _ : s) {
    stack[top++] = &obj;
    benchmark::ClobberMemory();
    void *out = stack[--top];
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Stack_ThreadPrivateArray)->Threads(1);

}  // namespace

int main(int argc, char **argv) {
  benchmark::AddCustomContext("cpu_id_source", cp_cpu_id_source_name(cp_cpu_id_source()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
