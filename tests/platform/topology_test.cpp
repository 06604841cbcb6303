#include <gtest/gtest.h>
#include <unistd.h>

#include <corepool/cpu.h>

#include "platform/topology.h"

namespace {

using corepool::platform::parse_cpu_list;

struct list_case {
  const char *text;
  int expect;                // highest + 1, or -1
  unsigned long long word0;  // expected first bitmap word when expect > 0
};

TEST(Topology, ParsesCpuLists) {
  const list_case cases[] = {
      {.text = "0", .expect = 1, .word0 = 0x1},
      {.text = "0-1\n", .expect = 2, .word0 = 0x3},
      {.text = "0-3,8,10-11", .expect = 12, .word0 = 0xd0f},
      {.text = "2,4", .expect = 5, .word0 = 0x14},
      {.text = "0-63,64", .expect = 65, .word0 = ~0ull},
      {.text = "3-1", .expect = -1, .word0 = 0},
      {.text = "x", .expect = -1, .word0 = 0},
      {.text = "0-", .expect = -1, .word0 = 0},
      {.text = "1;2", .expect = -1, .word0 = 0},
      {.text = "0-99999", .expect = -1, .word0 = 0},
  };
  for (const auto &c : cases) {
    unsigned long long bits[128] = {};
    int n = parse_cpu_list(c.text, bits, 128 * 64);
    EXPECT_EQ(n, c.expect) << c.text;
    if (c.expect > 0) {
      EXPECT_EQ(bits[0], c.word0) << c.text;
    }
  }
}

TEST(Topology, SaneValues) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_GE(cp_nr_cpu_ids(), static_cast<unsigned>(online));
  unsigned possible = 0;
  for (unsigned c = 0; c < cp_nr_cpu_ids(); c++) {
    if (!cp_cpu_possible(c)) continue;
    possible++;
    EXPECT_GE(cp_cpu_to_node(c), 0);
    EXPECT_LT(cp_cpu_to_node(c), cp_nr_nodes());
  }
  EXPECT_GE(possible, static_cast<unsigned>(online));
  EXPECT_FALSE(cp_cpu_possible(cp_nr_cpu_ids()));
  size_t line = cp_cache_line_size();
  EXPECT_GE(line, 16u);
  EXPECT_EQ(line & (line - 1), 0u);
  EXPECT_GE(cp_nr_nodes(), 1);
}

}  // namespace
