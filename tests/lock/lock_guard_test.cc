// LockGuard / AtomicLock: refresh in the background, release at the end of the scope, and
// tell the holder it lost the lock while its lease still protects it.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "lock_test_support.h"
#include "warden/failpoint.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::slurp;
using testing::TempDir;
using testing::wait_until;

// What the lost-lease callback saw.
struct LostReport {
  std::mutex mutex;
  bool called = false;
  int calls = 0;
  std::string reason;
  WallClock::time_point when;
  WallClock::time_point lease_end;
  LockGuard::LostCallback callback() {
    return [this](const LockToken& token, const std::string& why) {
      std::lock_guard<std::mutex> held(mutex);
      called = true;
      ++calls;
      reason = why;
      when = WallClock::now();
      lease_end = token.expires_at;
    };
  }
  bool seen() {
    std::lock_guard<std::mutex> held(mutex);
    return called;
  }
};

TEST(LockGuardTest, RefreshesInTheBackgroundAndReleasesAtScopeEnd) {
  TempDir dir;
  LockOptions options = quick_options();
  options.lease = 1s;
  options.refresh_interval = 50ms;
  FileLock lock(dir.path(), "crsp", options);
  {
    LockGuard guard(lock, 1s);
    const auto first = LockRecord::parse(slurp(lock_path(dir.path(), "crsp")), "x").expires_at;
    // Held past its first lease: the refresher keeps moving expires_at.
    EXPECT_TRUE(wait_until(
        [&] {
          auto r = inspect_file_lock(dir.path(), "crsp").record;
          return r && r->expires_at > first + 1s;
        },
        10s));
    EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kHeld);
    EXPECT_FALSE(guard.lost());
  }
  EXPECT_FALSE(stat_path(lock_path(dir.path(), "crsp")).has_value());
}

TEST(LockGuardTest, ReportsForceUnlockBeforeTheLeaseRunsOut) {
  TempDir dir;
  LockOptions options;
  options.lease = 30s;
  options.refresh_interval = 50ms;
  FileLock lock(dir.path(), "crsp", options);
  LostReport report;
  LockGuard guard(lock, 1s, report.callback());
  ForceUnlockResult forced = force_unlock(dir.path(), "crsp", true);
  ASSERT_TRUE(forced.removed) << forced.message;
  ASSERT_TRUE(wait_until([&] { return report.seen(); }, 20s));
  EXPECT_TRUE(guard.lost());
  std::lock_guard<std::mutex> held(report.mutex);
  EXPECT_EQ(report.calls, 1);
  EXPECT_LT(report.when, report.lease_end);
  EXPECT_NE(report.reason.find("no longer held"), std::string::npos) << report.reason;
  EXPECT_THROW(guard.release(), LockRecoveryError);
}

TEST(LockGuardTest, ReportsARefreshThatKeepsFailingBeforeTheLeaseRunsOut) {
  TempDir dir;
  LockOptions options;
  // The guard gives up a fifth of the lease before its end; the refresher thread must run
  // within that margin, so keep it well above a loaded machine's scheduling stalls (1 s).
  options.lease = 5s;
  options.refresh_interval = 50ms;
  FileLock lock(dir.path(), "crsp", options);
  LostReport report;
  {
    LockGuard guard(lock, 1s, report.callback());
    failpoint_arm("lock.refresh.after_temp_write", "error");  // every refresh fails (disk)
    bool seen = wait_until([&] { return report.seen(); }, 20s);
    failpoints_clear();
    ASSERT_TRUE(seen);
    EXPECT_TRUE(guard.lost());
  }
  std::lock_guard<std::mutex> held(report.mutex);
  EXPECT_EQ(report.calls, 1);
  EXPECT_LT(report.when, report.lease_end);
  EXPECT_NE(report.reason.find("kept failing"), std::string::npos) << report.reason;
  // The failed refreshes left no temp files behind.
  int leftovers = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) ++leftovers;
  }
  EXPECT_EQ(leftovers, 0);
}

TEST(LockGuardTest, AtomicLockIsTheSeedsContextManager) {
  TempDir dir;
  uint64_t first = 0;
  {
    AtomicLock held(dir.path(), "crsp", 1s, quick_options());
    first = held.token().token;
    EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kHeld);
    FileLock other(dir.path(), "crsp");
    EXPECT_FALSE(other.try_acquire().has_value());
  }
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kFree);
  AtomicLock again(dir.path(), "crsp", 1s);
  EXPECT_GT(again.token().token, first);
}

TEST(LockGuardTest, ThrowsWhenTheLockIsHeldAndTheWaitRunsOut) {
  TempDir dir;
  AtomicLock held(dir.path(), "crsp", 1s);
  EXPECT_THROW(AtomicLock(dir.path(), "crsp", 50ms), LockAcquisitionError);
}

// Forwards to a FileLock and counts the calls made once it is retired (the guard's owner is
// done with it: in a real program the Lock may be destroyed by then).
class RetiringLock : public Lock {
 public:
  explicit RetiringLock(FileLock& inner) : inner_(inner) {}
  void retire() { retired_.store(true); }
  int calls_after_retire() const { return calls_after_retire_.load(); }
  const std::string& name() const override {
    note_call();
    return inner_.name();
  }
  const LockOptions& options() const override {
    note_call();
    return inner_.options();
  }
  LockToken acquire(std::chrono::milliseconds timeout) override {
    note_call();
    return inner_.acquire(timeout);
  }
  std::optional<LockToken> try_acquire() override {
    note_call();
    return inner_.try_acquire();
  }
  void release(const LockToken& token) override {
    note_call();
    inner_.release(token);
  }
  LockToken refresh(const LockToken& token) override {
    note_call();
    return inner_.refresh(token);
  }

 private:
  void note_call() const {
    if (retired_.load()) calls_after_retire_.fetch_add(1);
  }
  FileLock& inner_;
  std::atomic<bool> retired_{false};
  mutable std::atomic<int> calls_after_retire_{0};
};

// The refresher thread outlives the guard (stop() does not join it) and may not even have
// started when the guard is destroyed; it must then never touch the Lock, which its owner may
// already have destroyed (`warden guard run` whose command cannot be run: the guard ends at
// once and the process exits). Many short guards, so that some end before their thread runs.
TEST(LockGuardTest, TheRefresherNeverTouchesTheLockOnceTheGuardIsGone) {
  TempDir dir;
  FileLock inner(dir.path(), "crsp", quick_options());
  std::vector<std::unique_ptr<RetiringLock>> locks;
  for (int i = 0; i < 300; ++i) {
    locks.push_back(std::make_unique<RetiringLock>(inner));
    { LockGuard guard(*locks.back(), 1s); }
    locks.back()->retire();
  }
  std::this_thread::sleep_for(300ms);  // time for every late refresher to run and end
  int late_calls = 0;
  for (const auto& lock : locks) late_calls += lock->calls_after_retire();
  EXPECT_EQ(late_calls, 0);
}

}  // namespace
}  // namespace warden
