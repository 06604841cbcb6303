// Reads a pool's dump back: every line "<kind> 0x<pool> key=value ..." becomes a key -> value
// map, with the prefix and the line end checked (tests of the cp_<pool>_dump functions).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace corepool::test {

using dump_line = std::map<std::string, unsigned long long>;

// Calls dump(fd) on a temporary file and parses what it wrote.
template <class Dump>
std::vector<dump_line> parse_dump(const char *kind, const void *pool, Dump dump) {
  std::vector<dump_line> lines;
  FILE *f = std::tmpfile();
  EXPECT_NE(f, nullptr);
  if (!f) return lines;
  EXPECT_EQ(dump(fileno(f)), 0);
  std::rewind(f);
  char prefix[64];
  std::snprintf(prefix, sizeof prefix, "%s %p", kind, pool);
  char buf[1024];
  while (std::fgets(buf, sizeof buf, f)) {
    const std::string l(buf);
    EXPECT_EQ(l.rfind(prefix, 0), 0u) << l;
    EXPECT_EQ(l.back(), '\n');
    std::istringstream in(l.substr(std::string(prefix).size()));
    dump_line kv;
    for (std::string tok; in >> tok;) {
      const auto eq = tok.find('=');
      EXPECT_NE(eq, std::string::npos) << tok;
      if (eq != std::string::npos) kv[tok.substr(0, eq)] = std::stoull(tok.substr(eq + 1));
    }
    lines.push_back(kv);
  }
  std::fclose(f);
  return lines;
}

}  // namespace corepool::test
