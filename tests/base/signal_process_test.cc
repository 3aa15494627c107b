// signal_process with a start time: only the process that started then is signalled (what
// `warden guard cleanup` uses to stop a holder that is not its child).
#include <gtest/gtest.h>
#include <signal.h>

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
