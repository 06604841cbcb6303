// Reads a pool's dump back: every line "<kind> 0x<pool> key=value ..." becomes a key -> value
// map, with the prefix and the line end checked (tests of the cp_<pool>_dump functions).
#pragma once

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

extern char **environ;

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
      if (eq != std::string::npos)
        kv[tok.substr(0, eq)] = std::stoull(tok.substr(eq + 1), nullptr, 0);  // 0x: hex
    }
    lines.push_back(kv);
  }
  std::fclose(f);
  return lines;
}

// Runs this test binary again with COREPOOL_STATS=1 and COREPOOL_STATS_TEST_CHILD=1 (the
// test named by `filter` does its part when it sees the latter) and returns what the child
// wrote on stdout and stderr; it must exit 0. For the exit report's tests.
inline std::string run_stats_child(const char *filter) {
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::vector<std::string> env{"COREPOOL_STATS=1", "COREPOOL_STATS_TEST_CHILD=1"};
  for (char **e = environ; *e; e++)
    if (std::string(*e).rfind("COREPOOL_STATS", 0) != 0) env.emplace_back(*e);
  std::vector<char *> envp;
  for (auto &s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", arg = std::string("--gtest_filter=") + filter;
  char *argv[] = {self.data(), arg.data(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, self.c_str(), &fa, nullptr, argv, envp.data()), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t k; (k = read(out[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<size_t>(k));
  close(out[0]);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
  return text;
}

// The addresses in the child's line "live 0x... gone 0x..." (empty strings when it has none).
inline std::pair<std::string, std::string> live_and_gone(const std::string &text) {
  char live[32] = "", gone[32] = "";
  const auto at = text.find("live 0x");
  if (at == std::string::npos ||
      std::sscanf(text.c_str() + at, "live %31s gone %31s", live, gone) != 2)
    return {};
  return {live, gone};
}

}  // namespace corepool::test
