// Who holds a lock: reused pids, another boot, another host's live and expired leases,
// fencing tokens across recoveries and force-unlocks, and tokens that are not ours.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "lock_test_support.h"
#include "warden/failpoint.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::Child;
using testing::slurp;
using testing::spit;
using testing::TempDir;
using testing::wait_until;

TEST(LockIdentityTest, ReusedPidWithAnotherStartTimeIsStale) {
  TempDir dir;
  // A live process (a sleeping child) whose start time is not the recorded one.
  Child other = Child::fork_function([] {
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(testing::wait_until([&] { return process_start_time(other.pid()).has_value(); }));
  LockRecord r = forged_record("crsp", other.pid(), 11);
  r.pid_start -= 1;
  plant(dir.path(), r);
  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kStalePidReused);
  EXPECT_FALSE(status.holder_alive);
  EXPECT_NE(status.reason.find("pid " + std::to_string(other.pid())), std::string::npos);
  FileLock lock(dir.path(), "crsp");
  auto token = lock.try_acquire();
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->token, 12u);
  EXPECT_FALSE(other.finished());  // the process that reused the pid is left alone
}

TEST(LockIdentityTest, PidOneOfAContainerIsNotTheHolder) {
  TempDir dir;
  LockRecord r = forged_record("crsp", 1, 4);
  r.pid_start += 1;  // pid 1 exists, but it is not the process that wrote the record
  plant(dir.path(), r);
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kStalePidReused);
  FileLock lock(dir.path(), "crsp");
  EXPECT_TRUE(lock.try_acquire().has_value());
}

TEST(LockIdentityTest, AliveRecordedPidWithoutTheOfdLockIsStale) {
  TempDir dir;
  // Our own identity exactly, but nobody holds the OFD lock: the holder closed the file.
  plant(dir.path(), forged_record("crsp", ::getpid(), 2));
  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kStaleDeadPid);
  EXPECT_NE(status.reason.find("no longer holds"), std::string::npos) << status.reason;
}

TEST(LockIdentityTest, RecordFromAnEarlierBootIsStale) {
  TempDir dir;
  LockRecord r = forged_record("crsp", ::getpid(), 2);
  r.boot_id = "11111111-2222-4333-8444-555555555555";
  plant(dir.path(), r);
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kStaleDeadPid);
}

TEST(LockIdentityTest, ForeignHostLiveLeaseIsRemoteUnverifiableAndBlocks) {
  TempDir dir;
  LockRecord r = foreign_record("crsp", 9, 10min);
  plant(dir.path(), r);
  const std::string before = slurp(lock_path(dir.path(), "crsp"));
  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kRemoteUnverifiable);
  EXPECT_NE(status.resolve_command.find("ssh batch-7.remote.example ps -p 4242"), std::string::npos)
      << status.resolve_command;
  FileLock lock(dir.path(), "crsp");
  try {
    lock.acquire(50ms);
    FAIL() << "expected LockAcquisitionError";
  } catch (const LockAcquisitionError& e) {
    EXPECT_NE(std::string(e.what()).find("batch-7.remote.example"), std::string::npos);
  }
  EXPECT_EQ(slurp(lock_path(dir.path(), "crsp")), before);
}

TEST(LockIdentityTest, ForeignHostLeaseWithinRemoteGraceIsStillRespected) {
  TempDir dir;
  plant(dir.path(), foreign_record("crsp", 9, -10min));  // expired, but grace is 30 min
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kRemoteUnverifiable);
  FileLock lock(dir.path(), "crsp");
  EXPECT_FALSE(lock.try_acquire().has_value());
}

TEST(LockIdentityTest, ForeignHostExpiredLeaseIsStaleExpiredAndRecovered) {
  TempDir dir;
  plant(dir.path(), foreign_record("crsp", 900, -31min));
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kStaleExpired);
  FileLock lock(dir.path(), "crsp");
  auto token = lock.try_acquire();
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->token, 901u);  // above the foreign holder's, though it never wrote .token
}

// The token file is whatever the last removal left: a released record, a symlink to the
// number (recovery, force-unlock), or a number written by hand. Each gives the next holder
// a higher token.
TEST(LockIdentityTest, TheTokenFileIsTheLastReleasedRecordOrANumber) {
  TempDir dir;
  const std::string token_file = dir / "crsp.token";
  FileLock lock(dir.path(), "crsp");
  LockToken first = *lock.try_acquire();
  EXPECT_FALSE(stat_path(token_file).has_value()) << "acquire writes no token file";
  lock.release(first);
  LockRecord released = LockRecord::parse(slurp(token_file), token_file);
  EXPECT_EQ(released.token, first.token);
  EXPECT_EQ(released.writer_id, first.writer_id);
  EXPECT_EQ(last_fencing_token(dir.path(), "crsp"), first.token);

  ::unlink(token_file.c_str());
  ASSERT_EQ(::symlink("41", token_file.c_str()), 0);
  LockToken second = *lock.try_acquire();
  EXPECT_EQ(second.token, 42u);
  EXPECT_EQ(last_fencing_token(dir.path(), "crsp"), 42u) << "the holder's record counts";
  lock.release(second);
  EXPECT_EQ(stat_path(token_file)->type, FileInfo::Type::kRegular);
  EXPECT_EQ(last_fencing_token(dir.path(), "crsp"), 42u);

  spit(token_file, "99\n");
  LockToken third = *lock.try_acquire();
  EXPECT_EQ(third.token, 100u);
  lock.release(third);
}

// A holder force-unlocked between its release's look and its rename moves its successor's
// record onto the token name: it puts it back, and the successor still holds the lock.
TEST(LockIdentityTest, AReleaseThatMovedItsSuccessorsRecordPutsItBack) {
  TempDir dir;
  FileLock old_holder(dir.path(), "crsp"), successor(dir.path(), "crsp");
  LockToken old_token = *old_holder.try_acquire();
  const std::string go = dir / "go";
  failpoint_arm("lock.release.before_rename", "wait:" + go);
  std::string lost;
  std::thread releasing([&] {
    try {
      old_holder.release(old_token);
    } catch (const LockRecoveryError& e) {
      lost = e.what();
    }
  });
  ASSERT_TRUE(wait_until([&] { return stat_path(go + ".reached").has_value(); }));
  ASSERT_TRUE(force_unlock(dir.path(), "crsp", true).removed);
  LockToken successors = *successor.try_acquire();
  spit(go, "");
  releasing.join();
  failpoints_clear();
  EXPECT_NE(lost.find("replaced by another holder's"), std::string::npos) << lost;
  LockStatus now = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(now.verdict, LockVerdict::kHeld);
  ASSERT_TRUE(now.record);
  EXPECT_EQ(now.record->writer_id, successors.writer_id);
  EXPECT_EQ(last_fencing_token(dir.path(), "crsp"), successors.token);
  successor.release(successors);
  EXPECT_GT(old_holder.try_acquire()->token, successors.token);
}

TEST(LockIdentityTest, FencingTokensStrictlyIncreaseAcrossRecoveriesAndForceUnlocks) {
  TempDir dir;
  std::vector<uint64_t> tokens;
  auto take = [&](FileLock& lock) {
    auto token = lock.try_acquire();
    EXPECT_TRUE(token.has_value());
    tokens.push_back(token ? token->token : 0);
    return token.value_or(LockToken{});
  };
  FileLock lock(dir.path(), "crsp", quick_options());
  lock.release(take(lock));
  // A holder killed while holding: recovered.
  {
    Child holder = hold_in_child(dir.path(), "crsp");
    tokens.push_back(child_token(dir.path(), "crsp"));
    holder.kill(SIGKILL);
    holder.wait();
  }
  lock.release(take(lock));
  // A live holder force-unlocked (--force): the next token is above its token.
  {
    Child holder = hold_in_child(dir.path(), "crsp");
    tokens.push_back(child_token(dir.path(), "crsp"));
    ForceUnlockResult refused = force_unlock(dir.path(), "crsp", false);
    EXPECT_FALSE(refused.removed);
    ForceUnlockResult forced = force_unlock(dir.path(), "crsp", true);
    EXPECT_TRUE(forced.removed) << forced.message;
    lock.release(take(lock));
  }
  // A stale record with a high token and the token file lost: still above it.
  ::unlink((dir / "crsp.token").c_str());
  plant(dir.path(), forged_record("crsp", dead_pid(), 5000));
  ForceUnlockResult removed = force_unlock(dir.path(), "crsp", false);
  EXPECT_TRUE(removed.removed) << removed.message;
  lock.release(take(lock));
  for (size_t i = 1; i < tokens.size(); ++i) {
    EXPECT_GT(tokens[i], tokens[i - 1]) << "token " << i;
  }
  EXPECT_GT(tokens.back(), 5000u);
}

TEST(LockIdentityTest, ReleaseAndRefreshRefuseATokenThatIsNotTheHolders) {
  TempDir dir;
  Child holder = hold_in_child(dir.path(), "crsp");
  LockRecord theirs = *inspect_file_lock(dir.path(), "crsp").record;
  FileLock mine(dir.path(), "crsp");
  LockToken forged{theirs.name, theirs.writer_id, theirs.token, theirs.acquired_at,
                   theirs.expires_at};
  EXPECT_THROW(mine.release(forged), LockRecoveryError);
  EXPECT_THROW(mine.refresh(forged), LockRecoveryError);
  LockStatus after = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(after.verdict, LockVerdict::kHeld);
  EXPECT_EQ(after.record->token, theirs.token);
}

TEST(LockIdentityTest, HolderLearnsItWasForceUnlockedAtItsNextRefresh) {
  TempDir dir;
  FileLock lock(dir.path(), "crsp", quick_options());
  LockToken token = lock.acquire(1s);
  ForceUnlockResult forced = force_unlock(dir.path(), "crsp", true);
  ASSERT_TRUE(forced.removed);
  FileLock next(dir.path(), "crsp");
  LockToken theirs = next.acquire(1s);
  EXPECT_GT(theirs.token, token.token);
  try {
    lock.refresh(token);
    FAIL() << "expected LockRecoveryError";
  } catch (const LockRecoveryError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLockLost);
  }
  // The new holder's record is untouched by the old holder's failed refresh.
  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kHeld);
  EXPECT_EQ(status.record->token, theirs.token);
  next.release(theirs);
}

TEST(LockIdentityTest, InvalidNamesAreRefused) {
  TempDir dir;
  EXPECT_THROW(FileLock(dir.path(), "../etc"), InvalidArgumentError);
  EXPECT_THROW(FileLock(dir.path(), ".hidden"), InvalidArgumentError);
  EXPECT_THROW(FileLock(dir.path(), ""), InvalidArgumentError);
}

}  // namespace
}  // namespace warden
