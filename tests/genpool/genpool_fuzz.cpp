// libFuzzer target: the fuzzer's bytes drive the same differential check as the unit test
// (pool vs the std::map model, every algorithm, bad frees). Crashes on the first divergence.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  int order = data[0] % 13;
  genpool_test::differential d(order);
  size_t pos = 1;
  auto next = [&]() -> uint64_t {
    uint64_t v = 0;
    for (int i = 0; i < 2; ++i) v = (v << 8) | (pos < size ? data[pos++] : 0);
    return v;
  };
  while (pos < size) {
    if (!d.step(next)) {
      std::fprintf(stderr, "divergence: %s\n", d.why);
      std::abort();
    }
  }
  return 0;
}
