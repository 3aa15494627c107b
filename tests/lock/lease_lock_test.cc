// TableLock (lease_lock.h) on both backends: one holder at a time, takeover after expiry with
// a larger token, token-checked refresh and release, LockGuard heartbeats and loss, SIGKILLed
// holders, clear_expired_leases, and real processes counting under the lease.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "lease_test_support.h"
#include "lock_test_support.h"
#include "warden/events.h"

namespace warden {
namespace {

using namespace lease_testing;
using testing::Child;
using testing::ChildResult;
using testing::slurp;
using testing::spit;
using testing::wait_until;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class LeaseLockTest : public ::testing::TestWithParam<std::string> {
 protected:
  LeaseLockTest() : store_(GetParam()), db_(store_.open()) {}

  LockStatus status(const std::string& name) { return inspect_lease(*db_, name); }
  // Waits (on the database clock) until the row's lease has ended.
  void wait_expired(const std::string& name) {
    ASSERT_TRUE(wait_until([&] { return status(name).verdict == LockVerdict::kStaleExpired; }, 30s))
        << status(name).reason;
  }
  std::string row_text(const std::string& name) {
    sql::Rows rows =
        db_->query(std::string("SELECT ") +
                       "writer_id, token, hostname, pid, acquired_ms, refreshed_ms, expires_ms "
                       "FROM warden_leases WHERE name = $1",
                   {name});
    std::string out;
    for (const auto& row : rows) {
      for (const auto& value : row) out += value.value_or("NULL") + "|";
    }
    return out;
  }

  StoreFixture store_;
  std::shared_ptr<sql::Database> db_;
};

TEST_P(LeaseLockTest, OneHolderAtATimeAndTheWaiterIsToldWhoAndHowToResolveIt) {
  TableLock a(db_, "orders", short_lease(60s, 1s));
  TableLock b(store_.open(), "orders", short_lease(60s, 1s));
  LockToken held = a.acquire(5s);
  EXPECT_GT(held.token, 0u);
  EXPECT_EQ(b.try_acquire(), std::nullopt);
  try {
    b.acquire(200ms);
    FAIL() << "acquired a lease someone holds";
  } catch (const LockAcquisitionError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kLockHeld);
    EXPECT_TRUE(contains(what, "held by pid " + std::to_string(::getpid()) + " on host " +
                                   host_name() + " (writer " + held.writer_id + ", token " +
                                   std::to_string(held.token)))
        << what;
    EXPECT_TRUE(contains(what, "ends in ")) << what;
    EXPECT_TRUE(contains(what, "warden lock status --store ")) << what;
    EXPECT_TRUE(contains(what, force_unlock_lease_command(*db_, "orders"))) << what;
  }
  EXPECT_TRUE(a.holds(held));
  a.release(held);
  EXPECT_FALSE(a.holds(held));
  EXPECT_EQ(status("orders").verdict, LockVerdict::kFree);
  LockToken next = b.acquire(5s);
  EXPECT_GT(next.token, held.token);
  b.release(next);
}

TEST_P(LeaseLockTest, TheRowRecordsItsHolderAndTheDatabaseClock) {
  LockOptions options = short_lease(60s, 1s);
  options.writer_id = "batcher-7";
  TableLock lock(db_, "orders", options);
  const int64_t before = db_->clock_ms();
  LockToken token = lock.acquire(5s);
  const int64_t after = db_->clock_ms();
  LockStatus s = status("orders");
  ASSERT_TRUE(s.record);
  EXPECT_EQ(s.backend, GetParam());
  EXPECT_EQ(s.path, db_->location());
  EXPECT_EQ(s.verdict, LockVerdict::kHeld);
  EXPECT_TRUE(s.holder_alive);
  EXPECT_EQ(s.record->writer_id, "batcher-7");
  EXPECT_EQ(s.record->token, token.token);
  EXPECT_EQ(s.record->pid, ::getpid());
  EXPECT_EQ(s.record->pid_start, self_identity().start_time);
  EXPECT_EQ(s.record->hostname, host_name());
  EXPECT_EQ(s.record->boot_id, boot_id());
  const int64_t acquired = lease_ms(s.record->acquired_at);
  EXPECT_GE(acquired, before);
  EXPECT_LE(acquired, after);
  EXPECT_EQ(lease_ms(s.record->expires_at), acquired + 60000);
  EXPECT_EQ(token.expires_at, s.record->expires_at);
  EXPECT_EQ(s.resolve_command, "");
}

TEST_P(LeaseLockTest, TakeoverOfAnExpiredRowGivesALargerToken) {
  TableLock a(db_, "orders", short_lease(300ms));
  TableLock b(store_.open(), "orders", short_lease(300ms));
  LockToken old_token = a.acquire(5s);
  wait_expired("orders");
  LockToken new_token = b.acquire(5s);
  EXPECT_GT(new_token.token, old_token.token);
  EXPECT_EQ(status("orders").record->writer_id, new_token.writer_id);
  EXPECT_FALSE(a.holds(old_token));
  EXPECT_TRUE(b.holds(new_token));
}

TEST_P(LeaseLockTest, ExpiryNeedsNoDeletion) {
  // The row of an expired lease stays in the table; the next acquisition takes it over in
  // its own statement, with no clean-up in between.
  TableLock a(db_, "orders", short_lease(300ms));
  LockToken first = a.acquire(5s);
  wait_expired("orders");
  EXPECT_EQ(db_->query("SELECT COUNT(*) FROM warden_leases").at(0).at(0), "1");
  TableLock b(store_.open(), "orders", short_lease(60s, 1s));
  auto second = b.try_acquire();
  ASSERT_TRUE(second);
  EXPECT_GT(second->token, first.token);
}

TEST_P(LeaseLockTest, StaleReleaseChangesNothingAndSaysItWasTakenOver) {
  TableLock a(db_, "orders", short_lease(300ms));
  TableLock b(store_.open(), "orders", short_lease(60s, 1s));
  LockToken old_token = a.acquire(5s);
  wait_expired("orders");
  LockToken new_token = b.acquire(5s);
  const std::string row = row_text("orders");
  try {
    a.release(old_token);
    FAIL() << "a stale token released a lease";
  } catch (const LockRecoveryError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLockLost);
    EXPECT_TRUE(contains(e.what(), "taken over by token " + std::to_string(new_token.token)))
        << e.what();
  }
  EXPECT_EQ(row_text("orders"), row);
  EXPECT_TRUE(b.holds(new_token));
}

TEST_P(LeaseLockTest, StaleRefreshChangesNothingAndSaysItWasTakenOver) {
  TableLock a(db_, "orders", short_lease(300ms));
  TableLock b(store_.open(), "orders", short_lease(60s, 1s));
  LockToken old_token = a.acquire(5s);
  wait_expired("orders");
  LockToken new_token = b.acquire(5s);
  const std::string row = row_text("orders");
  try {
    a.refresh(old_token);
    FAIL() << "a stale token refreshed a lease";
  } catch (const LockRecoveryError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLockLost);
    EXPECT_TRUE(contains(e.what(), "taken over by token " + std::to_string(new_token.token)))
        << e.what();
    EXPECT_TRUE(contains(e.what(), "Stop writing")) << e.what();
  }
  EXPECT_EQ(row_text("orders"), row);
}

TEST_P(LeaseLockTest, RefreshAfterExpirySaysExpiredAndDoesNotExtend) {
  TableLock a(db_, "orders", short_lease(300ms));
  LockToken token = a.acquire(5s);
  wait_expired("orders");
  const std::string row = row_text("orders");
  try {
    a.refresh(token);
    FAIL() << "an expired lease was extended";
  } catch (const LockRecoveryError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLockLost);
    EXPECT_TRUE(contains(e.what(), "it expired at " + format_utc(token.expires_at))) << e.what();
  }
  EXPECT_EQ(row_text("orders"), row);
  EXPECT_FALSE(a.holds(token));
}

TEST_P(LeaseLockTest, RefreshExtendsTheLeaseOnTheDatabaseClock) {
  TableLock a(db_, "orders", short_lease(60s, 1s));
  LockToken token = a.acquire(5s);
  std::this_thread::sleep_for(20ms);
  const int64_t before = db_->clock_ms();
  LockToken refreshed = a.refresh(token);
  EXPECT_EQ(refreshed.token, token.token);
  EXPECT_GE(lease_ms(refreshed.expires_at), before + 60000);
  EXPECT_GT(refreshed.expires_at, token.expires_at);
  EXPECT_EQ(status("orders").record->expires_at, refreshed.expires_at);
  a.release(refreshed);
}

TEST_P(LeaseLockTest, ReleaseOfATokenThisLockDoesNotHoldTouchesNothing) {
  TableLock a(db_, "orders", short_lease(60s, 1s));
  LockToken token = a.acquire(5s);
  LockToken forged = token;
  forged.token += 1;
  const std::string row = row_text("orders");
  try {
    a.release(forged);
    FAIL() << "released with a forged token";
  } catch (const LockRecoveryError& e) {
    EXPECT_TRUE(
        contains(e.what(), "is not the current holder's (token " + std::to_string(token.token)))
        << e.what();
  }
  TableLock stranger(store_.open(), "orders", short_lease(60s, 1s));
  EXPECT_THROW(stranger.release(token), LockRecoveryError);
  EXPECT_THROW(stranger.refresh(token), LockRecoveryError);
  EXPECT_EQ(row_text("orders"), row);
  EXPECT_TRUE(a.holds(token));
  EXPECT_FALSE(a.holds(forged));
  a.release(token);
  a.release(token);  // idempotent
}

TEST_P(LeaseLockTest, AForceUnlockedHolderIsToldItsRowIsGone) {
  TableLock a(db_, "orders", short_lease(60s, 1s));
  LockToken token = a.acquire(5s);
  ForceUnlockResult result = force_unlock_lease(*store_.open(), "orders", true);
  EXPECT_TRUE(result.removed) << result.message;
  try {
    a.refresh(token);
    FAIL() << "refreshed a lease that was force-unlocked";
  } catch (const LockRecoveryError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLockLost);
    EXPECT_TRUE(contains(e.what(), "its row is gone")) << e.what();
  }
  EXPECT_EQ(status("orders").verdict, LockVerdict::kFree);
}

TEST_P(LeaseLockTest, ForceUnlockRefusesALiveHolderOnThisHostUnlessAllowed) {
  TableLock a(db_, "orders", short_lease(60s, 1s));
  LockToken token = a.acquire(5s);
  ForceUnlockResult refused = force_unlock_lease(*db_, "orders", false);
  EXPECT_FALSE(refused.removed);
  EXPECT_EQ(refused.before.verdict, LockVerdict::kHeld);
  EXPECT_TRUE(contains(refused.message, "refusing to remove lease orders")) << refused.message;
  EXPECT_TRUE(a.holds(token));
  ForceUnlockResult removed = force_unlock_lease(*db_, "orders", true);
  EXPECT_TRUE(removed.removed) << removed.message;
  EXPECT_FALSE(a.holds(token));
  ForceUnlockResult nothing = force_unlock_lease(*db_, "orders", true);
  EXPECT_FALSE(nothing.removed);
  EXPECT_EQ(nothing.before.verdict, LockVerdict::kFree);
  EXPECT_TRUE(contains(nothing.message, "nothing to remove")) << nothing.message;
  TableLock b(store_.open(), "orders", short_lease(60s, 1s));
  EXPECT_GT(b.acquire(5s).token, token.token);
}

TEST_P(LeaseLockTest, GuardKeepsAShortLeaseAliveWellPastItsTtl) {
  // A 1 s lease refreshed every 100 ms, held for four leases. (Shorter leases work too, but a
  // busy CI disk can stall a synchronous SQLite commit for a few hundred milliseconds.)
  TableLock lock(db_, "orders", short_lease(1s, 100ms));
  TableLock other(store_.open(), "orders", short_lease(1s, 100ms));
  std::mutex mutex;
  std::string reason;
  LockGuard guard(lock, 5s, [&](const LockToken&, const std::string& why) {
    std::lock_guard<std::mutex> held(mutex);
    reason = why;
  });
  const LockToken first = guard.token();  // copied before the first refresh, 100 ms away
  for (int i = 0; i < 16; ++i) {          // 16 x 250 ms = four leases
    std::this_thread::sleep_for(250ms);
    auto stolen = other.try_acquire();
    ASSERT_EQ(stolen, std::nullopt)
        << "round " << i << "; guard lost: " << guard.lost() << " " << reason;
  }
  EXPECT_FALSE(guard.lost()) << reason;
  LockStatus s = status("orders");
  EXPECT_EQ(s.verdict, LockVerdict::kHeld) << s.reason;
  EXPECT_GT(s.record->expires_at, first.expires_at);
  EXPECT_EQ(s.record->token, first.token);
}

TEST_P(LeaseLockTest, GuardReportsLossWhenItsRowIsStolen) {
  TableLock lock(db_, "orders", short_lease(1s, 50ms));
  std::mutex mutex;
  std::string reason;
  std::optional<LockToken> stolen;
  {
    LockGuard guard(lock, 5s, [&](const LockToken&, const std::string& why) {
      std::lock_guard<std::mutex> held(mutex);
      reason = why;
    });
    // Another process's view: force-unlock, then acquire, in one transaction so the guard
    // cannot refresh in between and the row it finds carries the thief's token.
    auto thief_db = store_.open();
    TableLock thief(thief_db, "orders", short_lease(60s, 1s));
    thief_db->transaction([&] {
      ASSERT_TRUE(force_unlock_lease(*thief_db, "orders", true).removed);
      stolen = thief.try_acquire();
    });
    ASSERT_TRUE(stolen);
    // lost() turns true just before the callback runs: wait for the callback, as
    // lock_guard_test.cc's LostReport does.
    ASSERT_TRUE(wait_until(
        [&] {
          std::lock_guard<std::mutex> held(mutex);
          return !reason.empty();
        },
        10s));
    EXPECT_TRUE(guard.lost());
    std::lock_guard<std::mutex> held(mutex);
    EXPECT_TRUE(contains(reason, "taken over by token " + std::to_string(stolen->token))) << reason;
    thief.release(*stolen);
    stolen.reset();
    // The guard ends without touching the (now free) row.
  }
  EXPECT_EQ(status("orders").verdict, LockVerdict::kFree);
}

TEST_P(LeaseLockTest, ALostGuardLeavesTheThiefsRowAlone) {
  TableLock lock(db_, "orders", short_lease(1s, 50ms));
  auto thief_db = store_.open();
  TableLock thief(thief_db, "orders", short_lease(60s, 1s));
  std::optional<LockToken> stolen;
  {
    LockGuard guard(lock, 5s);
    thief_db->transaction([&] {
      ASSERT_TRUE(force_unlock_lease(*thief_db, "orders", true).removed);
      stolen = thief.try_acquire();
    });
    ASSERT_TRUE(stolen);
    ASSERT_TRUE(wait_until([&] { return guard.lost(); }, 10s));
  }
  EXPECT_TRUE(thief.holds(*stolen));
  EXPECT_EQ(status("orders").record->token, stolen->token);
}

TEST_P(LeaseLockTest, SigkilledHolderLeavesItsRowUntilItExpiresThenItIsTakenOver) {
  Child holder =
      hold_lease_in_child(store_.spec(), "orders", store_.dir().path(), short_lease(1500ms));
  const uint64_t dead_token = child_lease_token(store_.dir().path(), "orders");
  LockStatus live = status("orders");
  EXPECT_EQ(live.verdict, LockVerdict::kHeld) << live.reason;
  EXPECT_TRUE(live.holder_alive);
  holder.kill(SIGKILL);
  holder.wait();

  LockStatus dead = status("orders");
  if (dead.verdict != LockVerdict::kStaleExpired) {  // still within its last lease
    EXPECT_EQ(dead.verdict, LockVerdict::kStaleDeadPid) << dead.reason;
    EXPECT_TRUE(contains(dead.reason, "is not running")) << dead.reason;
    EXPECT_EQ(dead.resolve_command, force_unlock_lease_command(*db_, "orders"));
  }
  wait_expired("orders");
  EXPECT_EQ(status("orders").record->token, dead_token);
  TableLock next(db_, "orders", short_lease(60s, 1s));
  LockToken token = next.acquire(5s);
  EXPECT_GT(token.token, dead_token);
}

TEST_P(LeaseLockTest, ClearExpiredRemovesOnlyRowsWhoseLeaseHasEnded) {
  Child holder =
      hold_lease_in_child(store_.spec(), "crashed", store_.dir().path(), short_lease(2s, 100ms));
  const uint64_t dead_token = child_lease_token(store_.dir().path(), "crashed");
  holder.kill(SIGKILL);
  holder.wait();
  TableLock live(db_, "live", short_lease(60s, 1s));
  LockToken live_token = live.acquire(5s);

  // The dead holder's row has not expired: it is not cleared, however dead its holder.
  if (status("crashed").verdict == LockVerdict::kStaleDeadPid) {
    EXPECT_TRUE(clear_expired_leases(*db_).empty());
    EXPECT_EQ(status("crashed").record->token, dead_token);
  }
  wait_expired("crashed");
  std::vector<LockStatus> cleared = clear_expired_leases(*db_);
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0].name, "crashed");
  EXPECT_EQ(cleared[0].verdict, LockVerdict::kStaleExpired);
  EXPECT_EQ(cleared[0].record->token, dead_token);
  EXPECT_EQ(status("crashed").verdict, LockVerdict::kFree);
  EXPECT_TRUE(live.holds(live_token));
  EXPECT_TRUE(clear_expired_leases(*db_).empty());
  TableLock next(db_, "crashed", short_lease(60s, 1s));
  EXPECT_GT(next.try_acquire().value().token, dead_token);
}

TEST_P(LeaseLockTest, StatusJudgesEveryKindOfRow) {
  plant_lease(*db_, "alive", host_name(), boot_id(), ::getpid(), self_identity().start_time, 60s);
  plant_lease(*db_, "dead", host_name(), boot_id(), lock_testing::dead_pid(), 1, 60s);
  plant_lease(*db_, "reused", host_name(), boot_id(), ::getpid(), self_identity().start_time + 99,
              60s);
  plant_lease(*db_, "rebooted", host_name(), "00000000-0000-4000-8000-000000000001", ::getpid(),
              self_identity().start_time, 60s);
  plant_lease(*db_, "remote", "batch-7.remote.example", "00000000-0000-4000-8000-000000000007",
              4242, 987654, 60s);
  const uint64_t expired_token =
      plant_lease(*db_, "expired", "batch-7.remote.example", "00000000-0000-4000-8000-000000000007",
                  4242, 987654, -5s);
  std::vector<LockStatus> all = lease_status(*db_);
  ASSERT_EQ(all.size(), 6u);
  std::map<std::string, LockStatus> by_name;
  for (const auto& s : all) by_name[s.name] = s;
  EXPECT_EQ(all[0].name, "alive");  // sorted by name
  EXPECT_EQ(by_name["alive"].verdict, LockVerdict::kHeld);
  EXPECT_TRUE(by_name["alive"].holder_alive);
  EXPECT_EQ(by_name["dead"].verdict, LockVerdict::kStaleDeadPid);
  EXPECT_EQ(by_name["reused"].verdict, LockVerdict::kStalePidReused);
  EXPECT_EQ(by_name["rebooted"].verdict, LockVerdict::kStaleDeadPid);
  EXPECT_TRUE(contains(by_name["rebooted"].reason, "before this host last booted"));
  EXPECT_EQ(by_name["remote"].verdict, LockVerdict::kHeld);
  EXPECT_FALSE(by_name["remote"].holder_alive);
  EXPECT_EQ(by_name["remote"].resolve_command,
            "ssh batch-7.remote.example ps -p 4242  # if it is gone: " +
                force_unlock_lease_command(*db_, "remote"));
  EXPECT_EQ(by_name["expired"].verdict, LockVerdict::kStaleExpired);
  EXPECT_LT(by_name["expired"].expires_in.count(), 0);
  for (const char* name : {"dead", "reused", "rebooted", "expired"}) {
    EXPECT_EQ(by_name[name].resolve_command, force_unlock_lease_command(*db_, name)) << name;
  }
  for (const auto& s : all) {
    EXPECT_EQ(s.backend, GetParam());
    EXPECT_EQ(s.path, db_->location());
    EXPECT_GE(s.age.count(), 60000) << s.name;
    EXPECT_TRUE(s.max_hold_exceeded == false) << s.name;
  }
  // A dead holder's row still blocks until it expires: liveness is for people, expiry for
  // the lock.
  TableLock dead(db_, "dead", short_lease(60s, 1s));
  EXPECT_EQ(dead.try_acquire(), std::nullopt);
  TableLock expired(db_, "expired", short_lease(60s, 1s));
  EXPECT_GT(expired.try_acquire().value().token, expired_token);
}

TEST_P(LeaseLockTest, AHoldLongerThanMaxHoldRaisesSyncLockStaleOnce) {
  LockOptions strict = short_lease(60s, 1s);
  strict.max_hold = 1ms;
  TableLock lock(db_, "orders", strict);
  LockToken token = lock.acquire(5s);
  std::this_thread::sleep_for(10ms);
  start_event_capture();
  token = lock.refresh(token);
  token = lock.refresh(token);
  auto events = stop_event_capture();
  int stale = 0;
  for (const auto& event : events) {
    if (event["event"] == "sync.lock.stale") {
      ++stale;
      EXPECT_EQ(event["lock"], "orders");
      EXPECT_EQ(event["token"], token.token);
    }
  }
  EXPECT_EQ(stale, 1);
  EXPECT_TRUE(inspect_lease(*db_, "orders", strict).max_hold_exceeded);
  EXPECT_FALSE(inspect_lease(*db_, "orders").max_hold_exceeded);
}

TEST_P(LeaseLockTest, RefusesBadNamesAndARefreshNotShorterThanTheLease) {
  EXPECT_THROW(TableLock(db_, "../x"), InvalidArgumentError);
  EXPECT_THROW(TableLock(db_, ".hidden"), InvalidArgumentError);
  EXPECT_THROW(TableLock(db_, "x", short_lease(100ms, 100ms)), InvalidArgumentError);
  EXPECT_THROW(inspect_lease(*db_, "a/b"), InvalidArgumentError);
  TableLock lock(db_, "orders", short_lease(60s, 1s));
  lock.acquire(5s);
  EXPECT_THROW(lock.try_acquire(), InvalidArgumentError);
}

// Real processes: N x M read-modify-write increments of a counter file under the lease give
// exactly N*M, and the fencing tokens grow in the order the increments happened.
TEST_P(LeaseLockTest, ProcessesIncrementingACounterUnderTheLeaseLoseNoUpdate) {
  constexpr int kProcesses = 4;
  constexpr int kIncrements = 25;
  const std::string counter = store_.dir() / "counter";
  const std::string journal = store_.dir() / "journal";
  spit(counter, "0");
  spit(journal, "");
  const std::string spec = store_.spec();
  std::vector<Child> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(Child::fork_function([=] {
      TableLock lock(sql::open_store(spec, ""), "counter", short_lease(10s, 1s));
      for (int i = 0; i < kIncrements; ++i) {
        LockToken token = lock.acquire(120s);
        int value = std::stoi(slurp(counter));
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // widen the window
        spit(counter, std::to_string(value + 1));
        std::string lines = slurp(journal);
        spit(journal, lines + std::to_string(value + 1) + " " + std::to_string(token.token) + "\n");
        lock.release(token);
      }
      return 0;
    }));
  }
  for (auto& child : children) {
    ChildResult result = child.wait(240s);
    EXPECT_TRUE(result.exited && result.exit_code == 0)
        << "exit " << result.exit_code << " signal " << result.signal;
  }
  EXPECT_EQ(slurp(counter), std::to_string(kProcesses * kIncrements));
  std::istringstream lines(slurp(journal));
  int expected_value = 1;
  uint64_t last_token = 0;
  int value = 0;
  uint64_t token = 0;
  while (lines >> value >> token) {
    EXPECT_EQ(value, expected_value);
    EXPECT_GT(token, last_token) << "at value " << value;
    ++expected_value;
    last_token = token;
  }
  EXPECT_EQ(expected_value, kProcesses * kIncrements + 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, LeaseLockTest, ::testing::Values("sqlite", "postgresql"),
                         backend_test_name);

}  // namespace
}  // namespace warden
