// The child-running facility (include/warden/process.h) that `warden lock run` stands on.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "helpers/test_support.h"
#include "warden/error.h"
#include "warden/posix.h"
#include "warden/process.h"

namespace warden {
namespace {

using testing::Child;
using testing::slurp;
using testing::TempDir;
using testing::wait_until;

TEST(ChildProcessTest, ReportsTheChildsExitCode) {
  ChildProcess child = ChildProcess::start({.argv = {"sh", "-c", "exit 7"}});
  ExitStatus status = child.wait();
  EXPECT_TRUE(status.exited);
  EXPECT_EQ(status.code, 7);
  EXPECT_EQ(status.shell_code(), 7);
}

TEST(ChildProcessTest, MissingCommandThrowsNotFound) {
  try {
    ChildProcess::start({.argv = {"/nonexistent/warden-no-such-command"}});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(e.errno_value(), ENOENT);
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("warden-no-such-command"), std::string::npos);
  }
}

TEST(ChildProcessTest, WaitForTimesOutThenTerminateGroupReportsSignal) {
  ChildProcess child = ChildProcess::start({.argv = {"sleep", "30"}});
  EXPECT_FALSE(child.wait_for(std::chrono::milliseconds(20)).has_value());
  auto stopped = child.terminate_group(std::chrono::seconds(5));
  EXPECT_FALSE(stopped.needed_kill);
  EXPECT_FALSE(stopped.status.exited);
  EXPECT_EQ(stopped.status.signal, SIGTERM);
  EXPECT_EQ(stopped.status.shell_code(), 128 + SIGTERM);
}

TEST(ChildProcessTest, TerminateGroupEscalatesToKillWhenTermIsIgnored) {
  TempDir dir;
  std::string ready = dir / "ready";
  ChildProcess child = ChildProcess::start(
      {.argv = {"sh", "-c", "trap '' TERM; touch " + ready + "; while true; do sleep 0.05; done"}});
  ASSERT_TRUE(wait_until([&] { return stat_path(ready).has_value(); }));
  auto stopped = child.terminate_group(std::chrono::milliseconds(200));
  EXPECT_TRUE(stopped.needed_kill);
  EXPECT_EQ(stopped.status.signal, SIGKILL);
}

TEST(ChildProcessTest, ForwardedSignalReachesTheChildGroup) {
  TempDir dir;
  std::string ready = dir / "ready";
  std::string got = dir / "got";
  ChildProcess child =
      ChildProcess::start({.argv = {"sh", "-c",
                                    "trap 'echo usr1 > " + got + "; exit 3' USR1; touch " + ready +
                                        "; while true; do sleep 0.01; done"}});
  SignalForwarder forward(child);
  ASSERT_TRUE(wait_until([&] { return stat_path(ready).has_value(); }));
  ::kill(::getpid(), SIGUSR1);
  ExitStatus status = child.wait();
  EXPECT_EQ(forward.last_forwarded(), SIGUSR1);
  EXPECT_EQ(status.shell_code(), 3);
  EXPECT_EQ(slurp(got), "usr1\n");
}

TEST(ChildProcessTest, WaitForReturnsEarlyWhenTheForwarderCatchesASignal) {
  TempDir dir;
  std::string ready = dir / "ready";
  ChildProcess child = ChildProcess::start(
      {.argv = {"sh", "-c", "trap '' USR1; touch " + ready + "; while true; do sleep 0.05; done"}});
  SignalForwarder forward(child);
  ASSERT_TRUE(wait_until([&] { return stat_path(ready).has_value(); }));
  std::thread sender([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ::kill(::getpid(), SIGUSR1);
  });
  // An hour-long wait that comes back still running can only have been woken by the signal.
  auto status = child.wait_for(std::chrono::hours(1), forward.wake_fd());
  sender.join();
  EXPECT_FALSE(status.has_value());
  EXPECT_EQ(forward.last_forwarded(), SIGUSR1);
  EXPECT_FALSE(child.wait_for(std::chrono::milliseconds(0)).has_value());
  // The wake byte was drained: a short wait now runs to its timeout and still finds it running.
  EXPECT_FALSE(child.wait_for(std::chrono::milliseconds(20), forward.wake_fd()).has_value());
  auto stopped = child.terminate_group(std::chrono::seconds(5));
  EXPECT_EQ(stopped.status.signal, SIGTERM);
}

TEST(ChildProcessTest, InheritedFdIsOpenInTheChildAndOthersAreNot) {
  TempDir dir;
  UniqueFd kept = open_read_write(dir / "kept");
  UniqueFd other = open_read_write(dir / "other");
  std::string out = dir / "fds";
  ChildProcess child = ChildProcess::start(
      {.argv = {"sh", "-c", "ls -l /proc/self/fd/ > " + out}, .inherit_fds = {kept.get()}});
  EXPECT_EQ(child.wait().shell_code(), 0);
  std::string listing = slurp(out);
  EXPECT_NE(listing.find(dir / "kept"), std::string::npos) << listing;
  EXPECT_EQ(listing.find(dir / "other"), std::string::npos) << listing;
}

// The runner is SIGKILLed: nothing of it runs, yet its child's whole group must die too.
TEST(ChildProcessTest, ChildGroupDiesWhenTheParentIsKilled) {
  TempDir dir;
  std::string pid_file = dir / "pids";
  Child runner = Child::fork_function([&] {
    ChildProcess child = ChildProcess::start(
        {.argv = {"sh", "-c", "sleep 60 & echo $$ $! > " + pid_file + "; wait"}});
    child.wait();
    return 0;
  });
  ASSERT_TRUE(wait_until([&] { return slurp(pid_file).find(' ') != std::string::npos; }));
  std::string pids = slurp(pid_file);
  pid_t shell = std::stoi(pids.substr(0, pids.find(' ')));
  pid_t grandchild = std::stoi(pids.substr(pids.find(' ') + 1));
  runner.kill(SIGKILL);
  runner.wait();
  // Zombies reparented to init count as gone: they run no code.
  auto gone = [](pid_t pid) {
    auto stat = process_stat(pid);
    return !stat || stat->state == 'Z';
  };
  EXPECT_TRUE(wait_until([&] { return gone(shell) && gone(grandchild); }));
}

// The watchdog is a member of the child's group, so that group id stays reserved for as long
// as the watchdog can fire: once the child has exited (here: a zombie, not yet reaped), the
// group still exists, and no unrelated process group can be given its id.
TEST(ChildProcessTest, WatchdogKeepsTheGroupIdReservedWhileItCanFire) {
  ChildProcess child = ChildProcess::start({.argv = {"sh", "-c", "exit 0"}});
  ASSERT_GT(child.watchdog_pid(), 0);
  EXPECT_EQ(::getpgid(child.watchdog_pid()), child.pid());
  ASSERT_TRUE(wait_until([&] {
    auto stat = process_stat(child.pid());
    return stat && stat->state == 'Z';
  }));
  EXPECT_EQ(::kill(-child.pid(), 0), 0) << "the group must still exist: the watchdog is in it";
  EXPECT_EQ(child.wait().shell_code(), 0);
  EXPECT_EQ(child.watchdog_pid(), -1) << "reaped before the child's pid could be reused";
}

}  // namespace
}  // namespace warden
