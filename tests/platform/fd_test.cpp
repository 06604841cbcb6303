// platform/fd.h: write_all writes everything, across partial writes, and reports errors.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include <cerrno>
#include <string>
#include <thread>

#include "platform/fd.h"

namespace cpl = corepool::platform;

TEST(PlatformFd, WritesEverythingThroughAPipeSmallerThanTheData) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  // More than a pipe buffer (64 KiB): the writer sees partial writes while the reader drains.
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>('a' + i % 26);
  std::string got;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  });
  EXPECT_EQ(cpl::write_all(fds[1], data.data(), data.size()), 0);
  close(fds[1]);
  reader.join();
  close(fds[0]);
  EXPECT_EQ(got, data);
}

TEST(PlatformFd, ReportsTheErrorAsANegativeErrno) {
  EXPECT_EQ(cpl::write_all(-1, "x", 1), -EBADF);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[1]);
  EXPECT_EQ(cpl::write_all(fds[0], "x", 1), -EBADF);  // the read end
  close(fds[0]);
  EXPECT_EQ(cpl::write_all(-1, "", 0), 0);  // nothing to write: no call
}

// A file-size limit makes write(2) return a partial count, then fail with EFBIG: write_all
// must continue after the partial write and report the failure of the next one.
TEST(PlatformFd, ContinuesAfterAPartialWriteAndReportsTheNextError) {
  std::FILE *f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the limit is per process: set it in a child only
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit rl{1000, 1000};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
    char buf[4096] = {};
    int r = cpl::write_all(fileno(f), buf, sizeof buf);  // 1000 bytes, then EFBIG
    _exit(r == -EFBIG ? 0 : 1);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_EQ(lseek(fileno(f), 0, SEEK_END), 1000);  // the bytes before the error stay written
  std::fclose(f);
}
