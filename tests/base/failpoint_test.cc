// The failpoint actions tests use to hold a process at a moment without sizing a sleep:
// wait:<path> and the N-th-hit prefix.
#include "warden/failpoint.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "helpers/test_support.h"
#include "warden/error.h"

namespace warden {
namespace {

using testing::TempDir;

// The thread parked at the failpoint goes on only once the file exists: it is observed
// parked (not passed) first, however long the main thread takes.
TEST(FailpointTest, WaitHoldsUntilTheFileExists) {
  TempDir dir;
  const std::string go = dir / "go";
  failpoint_arm("test.wait.here", "wait:" + go);
  std::atomic<bool> entered{false}, passed{false};
  std::thread parked([&] {
    entered = true;
    WARDEN_FAILPOINT("test.wait.here");
    passed = true;
  });
  ASSERT_TRUE(testing::wait_until([&] { return entered.load(); }));
  ASSERT_TRUE(testing::wait_until([&] { return ::access((go + ".reached").c_str(), F_OK) == 0; }))
      << "wait: says it got there";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(passed.load()) << "wait: must hold while the file is missing";
  testing::spit(go, "");
  parked.join();
  EXPECT_TRUE(passed.load());
  failpoints_clear();
}

// "3:error" throws at the third hit only: not before, not after.
TEST(FailpointTest, HitPrefixActsAtThatHitOnly) {
  failpoint_arm("test.nth", "3:error");
  int thrown_at = 0;
  for (int hit = 1; hit <= 5; ++hit) {
    try {
      WARDEN_FAILPOINT("test.nth");
    } catch (const Error&) {
      EXPECT_EQ(thrown_at, 0) << "thrown twice";
      thrown_at = hit;
    }
  }
  EXPECT_EQ(thrown_at, 3);
  // Arming again starts the count again.
  failpoint_arm("test.nth", "1:error");
  EXPECT_THROW(WARDEN_FAILPOINT("test.nth"), Error);
  EXPECT_NO_THROW(WARDEN_FAILPOINT("test.nth"));
  failpoints_clear();
}

}  // namespace
}  // namespace warden
