// `warden guard cleanup`: stops stuck holders, removes stale leases, replays a WAL a crash
// left, and never deletes a WAL DuckDB cannot replay.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "guard_test_support.h"
#include "warden/checksum.h"
#include "warden/guard.h"

namespace warden {
namespace {

namespace fs = std::filesystem;
using testing::Child;
using testing::TempDir;

// A crashed writer: 1000 rows only in the WAL, then SIGKILL (seed 004 scenario C).
void crash_a_writer(const std::string& db, const std::string& ready) {
  Child writer = testing::start_duckdb_helper("write", db, ready, 1000);
  writer.kill(SIGKILL);
  auto result = writer.wait();
  ASSERT_EQ(result.signal, SIGKILL);
  ASSERT_TRUE(fs::exists(db + ".wal"));
}

TEST(GuardCleanup, ReplaysTheWalOfAKilledWriterWithTheDataIntact) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  crash_a_writer(db, dir / "ready");
  auto result = testing::run_warden({"guard", "cleanup", "--db", db, "--yes"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("WAL replayed and checkpointed"), std::string::npos) << result.out;
  EXPECT_FALSE(fs::exists(db + ".wal"));
  testing::TableCount count = testing::count_rows(db);
  ASSERT_TRUE(count.ok) << count.error;
  EXPECT_EQ(count.rows, 1000);
  EXPECT_EQ(count.sum, 999 * 1000 / 2);
}

TEST(GuardCleanup, StopsALiveHolderWithTheChosenSignal) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  Child holder = testing::start_duckdb_helper("hold", db, dir / "ready");
  auto result = testing::run_warden({"guard", "cleanup", "--db", db, "--yes", "--signal", "INT"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  auto ended = holder.wait();
  EXPECT_EQ(ended.signal, SIGINT);
  EXPECT_NE(result.out.find("sending SIGINT to pid " + std::to_string(holder.pid())),
            std::string::npos)
      << result.out;
  EXPECT_FALSE(inspect_guard(db).held());
}

// A live guard is stopped first: TERM to the guard, which stops its job and releases its
// lease on the way out (seed 004's "kill if stuck", without leaving a PID file behind).
TEST(GuardCleanup, StopsALiveGuardWhichStopsItsJobAndReleasesItsLease) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  Child guard = Child::spawn({testing::warden_binary(), "guard", "run", "--db", db, "--", "/bin/sh",
                              "-c", "echo $$ > \"$D/job\"; sleep 300"},
                             {{"D", dir.path()}});
  ASSERT_TRUE(testing::wait_until([&] { return testing::read_pid_file(dir / "job") > 0; }));
  pid_t job = testing::read_pid_file(dir / "job");
  auto result = testing::run_warden({"guard", "cleanup", "--db", db, "--yes"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("sending SIGTERM to pid " + std::to_string(guard.pid())),
            std::string::npos)
      << result.out;
  EXPECT_EQ(guard.wait().exit_code, 128 + SIGTERM);
  EXPECT_FALSE(testing::process_alive(job));
  EXPECT_EQ(inspect_guard(db).lease.verdict, LockVerdict::kFree);
}

TEST(GuardCleanup, KillsAHolderThatIgnoresTermAfterTheGrace) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  Child holder = testing::start_duckdb_helper("hold", db, dir / "ready", 0, /*ignore_term=*/true);
  GuardCleanupOptions options;
  options.db = db;
  options.yes = true;
  options.grace = std::chrono::milliseconds(300);
  GuardCleanupReport report = guard_cleanup(options);
  EXPECT_EQ(report.stopped, std::vector<pid_t>{holder.pid()});
  EXPECT_EQ(report.killed, std::vector<pid_t>{holder.pid()});
  EXPECT_EQ(holder.wait().signal, SIGKILL);
  EXPECT_TRUE(report.clean());
}

TEST(GuardCleanup, AsksAndLeavesTheHolderRunningWhenNobodySaysYes) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  Child holder = testing::start_duckdb_helper("hold", db, dir / "ready");
  std::vector<std::string> questions;
  GuardCleanupOptions options;
  options.db = db;
  options.confirm = [&](const std::string& question) {
    questions.push_back(question);
    return false;
  };
  GuardCleanupReport report = guard_cleanup(options);
  ASSERT_EQ(questions.size(), 1u);
  EXPECT_NE(questions[0].find("Stop pid " + std::to_string(holder.pid())), std::string::npos);
  EXPECT_EQ(report.left_running, std::vector<pid_t>{holder.pid()});
  EXPECT_FALSE(report.clean());
  EXPECT_FALSE(holder.finished());
  // The CLI outside a terminal cannot ask: it leaves the holder and exits 1.
  auto result = testing::run_warden({"guard", "cleanup", "--db", db});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_FALSE(holder.finished());
}

// Flips bytes inside the WAL's entries: DuckDB then refuses to replay it (checksum).
void corrupt_wal(const std::string& wal) {
  std::string bytes = testing::slurp(wal);
  ASSERT_GT(bytes.size(), 400u);
  for (size_t i = 100; i < 400; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
  testing::spit(wal, bytes);
}

TEST(GuardCleanup, NeverDeletesAWalDuckDbCannotReplay) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  crash_a_writer(db, dir / "ready");
  corrupt_wal(db + ".wal");
  const std::string digest = sha256_file(db + ".wal");

  auto refused = testing::run_warden({"guard", "cleanup", "--db", db});
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("DuckDB cannot replay"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("left in place (never deleted)"), std::string::npos) << refused.out;
  EXPECT_EQ(sha256_file(db + ".wal"), digest);

  auto forced = testing::run_warden({"guard", "cleanup", "--db", db, "--yes"});
  EXPECT_EQ(forced.exit_code, 0) << forced.out;
  EXPECT_NE(forced.out.find("THE TRANSACTIONS IN THAT WAL ARE NOT IN THE DATABASE"),
            std::string::npos)
      << forced.out;
  EXPECT_FALSE(fs::exists(db + ".wal"));
  GuardStatus after = inspect_guard(db);
  ASSERT_EQ(after.corrupt_wals.size(), 1u);
  EXPECT_EQ(after.corrupt_wals[0].rfind(after.paths.wal + ".corrupt.", 0), 0u);
  EXPECT_EQ(sha256_file(after.corrupt_wals[0]), digest);
  // The database opens without it; the table lived only in the WAL, so it is not there.
  testing::TableCount count = testing::count_rows(db);
  EXPECT_FALSE(count.ok);
  EXPECT_NE(count.error.find("t does not exist"), std::string::npos) << count.error;
  EXPECT_NE(format_guard_status(after).find("NOT in the database"), std::string::npos);
}

TEST(GuardCleanup, LeavesAProcessThatOnlyHasTheFileOpenAlone) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  testing::spit(db, "");
  // touch must not inherit fd 3: while it runs it would be a second process with the file open
  // (CI saw two holders), and the test counts exactly one.
  Child reader =
      Child::spawn({"/bin/sh", "-c", "exec 3<\"$DB\"; touch \"$READY\" 3<&-; exec sleep 300"},
                   {{"DB", db}, {"READY", dir / "ready"}});
  ASSERT_TRUE(testing::wait_until([&] { return fs::exists(dir / "ready"); }));
  GuardStatus status = inspect_guard(db);
  EXPECT_FALSE(status.held());
  ASSERT_EQ(status.holders.size(), 1u);
  EXPECT_FALSE(status.holders[0].blocks());
  GuardCleanupOptions options;
  options.db = db;
  options.yes = true;
  GuardCleanupReport report = guard_cleanup(options);
  EXPECT_TRUE(report.stopped.empty());
  EXPECT_FALSE(reader.finished());
}

}  // namespace
}  // namespace warden
