// Seed 001's test_locking.py, cases 1-11, each under its own name (case 11, the fsync
// ordering, is proven on the real binary in lock_cli_test.cc: FsyncCalledAfterLockCreation).
#include <gtest/gtest.h>
#include <signal.h>

#include "lock_test_support.h"
#include "warden/events.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::Child;
using testing::slurp;
using testing::spit;
using testing::TempDir;

bool has_event(const std::vector<nlohmann::json>& events, const std::string& name) {
  for (const auto& e : events) {
    if (e.value("event", "") == name) return true;
  }
  return false;
}

TEST(TestLocking, Case01_AcquisitionSucceedsWhenUnlocked) {
  TempDir dir;
  FileLock lock(dir.path(), "crsp");
  LockToken token = lock.acquire(1s);
  EXPECT_EQ(token.name, "crsp");
  EXPECT_EQ(token.token, 1u);
  EXPECT_GE(lock.held_fd(), 0);
  LockRecord on_disk = LockRecord::parse(slurp(lock_path(dir.path(), "crsp")), "crsp.lock");
  EXPECT_EQ(on_disk.pid, ::getpid());
  EXPECT_EQ(on_disk.pid_start, self_identity().start_time);
  EXPECT_EQ(on_disk.boot_id, boot_id());
  EXPECT_EQ(on_disk.hostname, host_name());
  EXPECT_EQ(on_disk.writer_id, token.writer_id);
  EXPECT_EQ(on_disk.token, 1u);
  EXPECT_EQ(last_fencing_token(dir.path(), "crsp"), 1u);
  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kHeld);
  EXPECT_TRUE(status.holder_alive);
}

TEST(TestLocking, Case02_AcquisitionFailsWhenLockedByActiveProcess) {
  TempDir dir;
  Child holder = hold_in_child(dir.path(), "crsp");
  FileLock lock(dir.path(), "crsp");
  EXPECT_FALSE(lock.try_acquire().has_value());
  try {
    lock.acquire(200ms);
    FAIL() << "expected LockAcquisitionError";
  } catch (const LockAcquisitionError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLockHeld);
    std::string message = e.what();
    EXPECT_NE(message.find("pid " + std::to_string(holder.pid())), std::string::npos) << message;
    EXPECT_NE(message.find(lock_path(dir.path(), "crsp")), std::string::npos) << message;
    EXPECT_NE(message.find("warden lock status"), std::string::npos) << message;
  }
  // The holder's record is untouched.
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").record->pid, holder.pid());
}

TEST(TestLocking, Case03_ReleaseDeletesLockFile) {
  TempDir dir;
  FileLock lock(dir.path(), "crsp");
  LockToken token = lock.acquire(1s);
  ASSERT_TRUE(stat_path(lock_path(dir.path(), "crsp")).has_value());
  lock.release(token);
  EXPECT_FALSE(stat_path(lock_path(dir.path(), "crsp")).has_value());
  EXPECT_EQ(lock.held_fd(), -1);
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kFree);
  lock.release(token);  // idempotent for the token this object released
}

TEST(TestLocking, Case04_StaleLockDetectedWhenTimeoutExceeded) {
  TempDir dir;
  LockOptions options;
  options.remote_grace = 30min;
  // Another host's lease that ended 31 minutes ago: past lease + remote grace.
  plant(dir.path(), foreign_record("crsp", 5, -31min));
  LockStatus status = inspect_file_lock(dir.path(), "crsp", options);
  EXPECT_EQ(status.verdict, LockVerdict::kStaleExpired);
  EXPECT_LT(status.expires_in.count(), 0);
  EXPECT_NE(status.reason.find("batch-7.remote.example"), std::string::npos) << status.reason;
  EXPECT_NE(status.resolve_command.find("warden lock force-unlock --dataset crsp --yes"),
            std::string::npos);
  // A hold longer than max_hold is flagged even when its holder is alive and refreshing.
  Child holder = hold_in_child(dir.path(), "cpst");
  LockOptions strict;
  strict.max_hold = 1ms;
  std::this_thread::sleep_for(5ms);
  start_event_capture();
  FileLock waiter(dir.path(), "cpst", strict);
  EXPECT_FALSE(waiter.try_acquire().has_value());
  auto events = stop_event_capture();
  EXPECT_TRUE(has_event(events, "sync.lock.stale"));
  EXPECT_TRUE(inspect_file_lock(dir.path(), "cpst", strict).max_hold_exceeded);
}

TEST(TestLocking, Case05_StaleLockRecoveredWhenPidIsDead) {
  TempDir dir;
  uint64_t dead_token = 0;
  {
    Child holder = hold_in_child(dir.path(), "crsp");
    dead_token = child_token(dir.path(), "crsp");
    holder.kill(SIGKILL);
    holder.wait();
  }
  LockStatus before = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(before.verdict, LockVerdict::kStaleDeadPid);
  EXPECT_FALSE(before.holder_alive);
  start_event_capture();
  FileLock lock(dir.path(), "crsp");
  auto token = lock.try_acquire();  // no wait: the kernel says at once that the holder died
  auto events = stop_event_capture();
  ASSERT_TRUE(token.has_value());
  EXPECT_GT(token->token, dead_token);
  EXPECT_TRUE(has_event(events, "lock.recovered"));
}

TEST(TestLocking, Case06_PidReuseIsNotMistakenForTheHolder) {
  TempDir dir;
  // The recorded pid is alive (this very process) but started at another time: a reused pid.
  LockRecord reused = forged_record("crsp", ::getpid(), 7);
  reused.pid_start += 12345;
  plant(dir.path(), reused);
  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kStalePidReused);
  FileLock lock(dir.path(), "crsp");
  auto token = lock.try_acquire();
  ASSERT_TRUE(token.has_value());
  EXPECT_GT(token->token, 7u);
  EXPECT_NE(token->writer_id, reused.writer_id);
}

TEST(TestLocking, Case07_MalformedJsonRejected) {
  TempDir dir;
  const std::string path = lock_path(dir.path(), "crsp");
  spit(path, "{\"version\":1,\"name\":\"crsp\",");
  FileLock lock(dir.path(), "crsp");
  try {
    lock.acquire(100ms);
    FAIL() << "expected MalformedLockFileError";
  } catch (const MalformedLockFileError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMalformed);
    std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
    EXPECT_NE(message.find("warden lock force-unlock --dataset crsp --yes"), std::string::npos)
        << message;
  }
  EXPECT_EQ(slurp(path), "{\"version\":1,\"name\":\"crsp\",");  // never removed silently
}

TEST(TestLocking, Case08_ExtraFieldsInJsonRejected) {
  LockRecord r = forged_record("crsp", ::getpid(), 3);
  std::string json = r.to_json();
  json.insert(json.rfind('}'), ",\"owner\":\"mallory\"");
  try {
    LockRecord::parse(json, "crsp.lock");
    FAIL() << "expected MalformedLockFileError";
  } catch (const MalformedLockFileError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown field \"owner\""), std::string::npos) << e.what();
  }
  // And the record as written parses back to itself.
  LockRecord back = LockRecord::parse(r.to_json(), "crsp.lock");
  EXPECT_EQ(back.to_json(), r.to_json());
}

TEST(TestLocking, Case09_ReleaseValidatesToken) {
  TempDir dir;
  FileLock lock(dir.path(), "crsp");
  LockToken token = lock.acquire(1s);
  LockToken wrong = token;
  wrong.token += 1;
  EXPECT_THROW(lock.release(wrong), LockRecoveryError);
  LockToken other_writer = token;
  other_writer.writer_id = "someone-else";
  EXPECT_THROW(lock.release(other_writer), LockRecoveryError);
  EXPECT_THROW(lock.refresh(wrong), LockRecoveryError);
  // A FileLock that does not hold the lock cannot release it, even with the right token.
  FileLock stranger(dir.path(), "crsp");
  try {
    stranger.release(token);
    FAIL() << "expected LockRecoveryError";
  } catch (const LockRecoveryError& e) {
    EXPECT_NE(std::string(e.what()).find("left untouched"), std::string::npos) << e.what();
  }
  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kHeld);
  EXPECT_EQ(status.record->token, token.token);
  lock.release(token);
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kFree);
}

TEST(TestLocking, Case10_RefreshExtendsExpiry) {
  TempDir dir;
  FileLock lock(dir.path(), "crsp", quick_options());
  LockToken token = lock.acquire(1s);
  const FileInfo before = *stat_path(lock_path(dir.path(), "crsp"));
  std::this_thread::sleep_for(20ms);
  LockToken refreshed = lock.refresh(token);
  EXPECT_GT(refreshed.expires_at, token.expires_at);
  EXPECT_EQ(refreshed.token, token.token);
  EXPECT_EQ(refreshed.writer_id, token.writer_id);
  LockRecord on_disk = LockRecord::parse(slurp(lock_path(dir.path(), "crsp")), "crsp.lock");
  EXPECT_EQ(format_utc(on_disk.expires_at), format_utc(refreshed.expires_at));
  EXPECT_EQ(format_utc(on_disk.acquired_at), format_utc(token.acquired_at));
  // Published as a new file (atomically), still held through the OFD lock.
  EXPECT_NE(stat_path(lock_path(dir.path(), "crsp"))->inode, before.inode);
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kHeld);
  lock.release(refreshed);
}

}  // namespace
}  // namespace warden
