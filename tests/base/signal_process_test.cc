// signal_process with a start time: only the process that started then is signalled (what
// `warden guard cleanup` uses to stop a holder that is not its child).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iterator>
#include <set>
#include <thread>

#include "helpers/test_support.h"
#include "warden/posix.h"

namespace warden {
namespace {

using testing::Child;

// A pid whose start time is not the recorded one is another process (a reused pid): left
// alone, reported as gone.
TEST(SignalProcessTest, AnotherStartTimeIsNotSignalled) {
  Child sleeper = Child::spawn({"/bin/sleep", "300"});
  ASSERT_TRUE(testing::wait_until([&] { return process_stat(sleeper.pid()).has_value(); }));
  const uint64_t started = process_stat(sleeper.pid())->start_time;
  EXPECT_FALSE(signal_process(sleeper.pid(), started + 1, SIGKILL));
  EXPECT_TRUE(signal_process(sleeper.pid(), started, SIGTERM));
  testing::ChildResult result = sleeper.wait();
  EXPECT_FALSE(result.exited);
  EXPECT_EQ(result.signal, SIGTERM) << "SIGKILL here means the wrong start time was signalled";
}

TEST(SignalProcessTest, AProcessThatIsGoneIsReportedNotThrown) {
  Child quick = Child::spawn({"/bin/true"});
  const pid_t pid = quick.pid();
  ASSERT_TRUE(quick.wait().exited);
  EXPECT_FALSE(signal_process(pid, 1, SIGTERM));
  EXPECT_FALSE(signal_process(0, 1, SIGTERM));
}

}  // namespace
}  // namespace warden

namespace warden {
namespace {

// random_u64 names temp files and makes nonces: two processes or threads must never draw the
// same numbers. A forked child starts with a copy of its parent's generator, so without a
// reseed it would repeat exactly what the parent draws next.
TEST(RandomTest, ForkedChildrenAndThreadsDrawTheirOwnNumbers) {
  (void)random_u64();  // the parent's generator is seeded before the fork
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    uint64_t drawn[4];
    for (auto& value : drawn) value = random_u64();
    ssize_t written = ::write(pipe_fds[1], drawn, sizeof drawn);
    ::_exit(written == static_cast<ssize_t>(sizeof drawn) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  uint64_t from_child[4] = {};
  ASSERT_EQ(::read(pipe_fds[0], from_child, sizeof from_child),
            static_cast<ssize_t>(sizeof from_child));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  std::set<uint64_t> seen(std::begin(from_child), std::end(from_child));
  for (int i = 0; i < 4; ++i) seen.insert(random_u64());
  uint64_t from_thread[4] = {};
  std::thread([&] {
    for (auto& value : from_thread) value = random_u64();
  }).join();
  seen.insert(std::begin(from_thread), std::end(from_thread));
  EXPECT_EQ(seen.size(), 12u) << "a number came up twice across parent, child and thread";
}

}  // namespace
}  // namespace warden
