// A holder SIGKILLed at every failpoint of acquire, refresh, release and recover (a real
// child, armed through WARDEN_FAILPOINTS=name=crash): the lock is never left held by the
// dead, never malformed, the next acquisition succeeds at once with a higher fencing token,
// and what the crash left behind is swept.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>

#include <cstdlib>
#include <filesystem>

#include "lock_test_support.h"
#include "warden/failpoint.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::Child;
using testing::ChildResult;
using testing::TempDir;

enum class Operation { kAcquire, kRefresh, kRelease, kRecover };

struct CrashCase {
  const char* failpoint;
  Operation operation;
};

const CrashCase kCrashCases[] = {
    {"lock.acquire.after_temp_write", Operation::kAcquire},
    {"lock.acquire.after_link", Operation::kAcquire},
    {"lock.acquire.after_dir_fsync", Operation::kAcquire},
    {"lock.refresh.after_temp_write", Operation::kRefresh},
    {"lock.refresh.after_exchange", Operation::kRefresh},
    {"lock.release.after_rename", Operation::kRelease},
    {"lock.release.after_unlock", Operation::kRelease},
    {"lock.recover.before_rename", Operation::kRecover},
    {"lock.recover.after_rename", Operation::kRecover},
    {"lock.recover.after_remove", Operation::kRecover},
};

class LockCrashTest : public ::testing::TestWithParam<CrashCase> {};

// Names in the directory other than the lock's permanent ones.
std::vector<std::string> leftovers(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name != "crsp.lock" && name != "crsp.token" && name != ".crsp.recovery") {
      out.push_back(name);
    }
  }
  return out;
}

void backdate(const std::string& path, std::chrono::seconds by) {
  struct timeval times[2];
  ::gettimeofday(&times[0], nullptr);
  times[0].tv_sec -= by.count();
  times[1] = times[0];
  ASSERT_EQ(::lutimes(path.c_str(), times), 0) << path;
}

TEST_P(LockCrashTest, HolderKilledAtFailpointIsRecovered) {
  const CrashCase c = GetParam();
  TempDir dir;
  uint64_t highest_seen = 0;
  if (c.operation == Operation::kRecover) {
    plant(dir.path(), forged_record("crsp", dead_pid(), 40));
    highest_seen = 40;
  } else {
    FileLock warm(dir.path(), "crsp");
    warm.release(warm.acquire(1s));  // token 1 issued and released
    highest_seen = 1;
  }

  Child child = Child::fork_function([&] {
    const std::string armed = std::string(c.failpoint) + "=crash";
    FileLock lock(dir.path(), "crsp", quick_options());
    if (c.operation == Operation::kAcquire || c.operation == Operation::kRecover) {
      ::setenv("WARDEN_FAILPOINTS", armed.c_str(), 1);
      failpoints_reload();
      lock.acquire(10s);
      return 3;  // must not get here
    }
    LockToken token = lock.acquire(10s);
    ::setenv("WARDEN_FAILPOINTS", armed.c_str(), 1);
    failpoints_reload();
    if (c.operation == Operation::kRefresh) lock.refresh(token);
    if (c.operation == Operation::kRelease) lock.release(token);
    return 3;
  });
  ChildResult result = child.wait(30s);
  ASSERT_FALSE(result.exited) << "the child was meant to die at " << c.failpoint << ", exit code "
                              << result.exit_code;
  ASSERT_EQ(result.signal, SIGKILL);

  // What the crash left: free, or a stale record of the dead child; never held, never
  // malformed.
  LockStatus after = inspect_file_lock(dir.path(), "crsp");
  EXPECT_TRUE(after.verdict == LockVerdict::kFree || after.verdict == LockVerdict::kStaleDeadPid)
      << lock_verdict_name(after.verdict) << ": " << after.reason;
  if (after.record) highest_seen = std::max(highest_seen, after.record->token);
  highest_seen = std::max(highest_seen, last_fencing_token(dir.path(), "crsp"));
  for (const auto& status : lock_status(dir.path())) EXPECT_EQ(status.name, "crsp");

  // The next acquisition needs no wait: the kernel dropped the dead child's OFD lock.
  FileLock next(dir.path(), "crsp");
  auto token = next.try_acquire();
  ASSERT_TRUE(token.has_value()) << c.failpoint;
  EXPECT_GT(token->token, highest_seen);
  next.release(*token);
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kFree);

  // Leftovers of the dead child (temp, release or recovery files) are swept once they are
  // older than a minute; nothing of a live process would be.
  for (const auto& name : leftovers(dir.path())) backdate(dir / name, std::chrono::seconds(120));
  FileLock sweeper(dir.path(), "crsp");
  sweeper.release(sweeper.acquire(1s));
  EXPECT_EQ(leftovers(dir.path()), std::vector<std::string>{}) << c.failpoint;
}

INSTANTIATE_TEST_SUITE_P(EveryFailpoint, LockCrashTest, ::testing::ValuesIn(kCrashCases),
                         [](const auto& info) {
                           std::string name = info.param.failpoint;
                           for (char& ch : name) {
                             if (ch == '.') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace warden
