// The pre-check and `warden guard status`: who holds a DuckDB file, and what a crash left.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "guard_test_support.h"
#include "warden/guard.h"

namespace warden {
namespace {

using testing::Child;
using testing::TempDir;

TEST(GuardPaths, EverySpellingOfAPathMeetsTheSameLease) {
  TempDir dir;
  std::filesystem::create_directories(dir / "sub");
  GuardPaths direct = guard_paths(dir / "f.duckdb");
  GuardPaths roundabout = guard_paths(dir / "sub/../f.duckdb");
  EXPECT_EQ(direct.db, roundabout.db);
  EXPECT_EQ(direct.lock_file, roundabout.lock_file);
  EXPECT_EQ(direct.wal, direct.db + ".wal");
  EXPECT_EQ(direct.lock_dir, std::filesystem::canonical(dir.path()).string() + "/.warden-guard");
  EXPECT_EQ(direct.lock_name, "f.duckdb");
}

TEST(GuardPaths, ReplacedCharactersCannotMakeTwoDatabasesShareALease) {
  TempDir dir;
  GuardPaths spaced = guard_paths(dir / "my db.duckdb");
  GuardPaths underscored = guard_paths(dir / "my_db.duckdb");
  EXPECT_NE(spaced.lock_name, underscored.lock_name);
  EXPECT_EQ(spaced.lock_name.rfind("my_db.duckdb-", 0), 0u) << spaced.lock_name;
  EXPECT_NO_THROW(validate_lock_name(spaced.lock_name));
}

TEST(GuardPaths, RejectsADirectory) {
  TempDir dir;
  EXPECT_THROW(guard_paths(dir.path()), InvalidArgumentError);
  EXPECT_THROW(guard_paths(""), InvalidArgumentError);
}

TEST(GuardStatus, NewDatabaseIsFree) {
  TempDir dir;
  GuardStatus status = inspect_guard(dir / "f.duckdb");
  EXPECT_FALSE(status.held());
  EXPECT_FALSE(status.db_exists);
  EXPECT_FALSE(status.wal_exists);
  EXPECT_TRUE(status.holders.empty());
  EXPECT_STREQ(status.state_name(), "free");
}

TEST(GuardStatus, PlainDuckDbProcessIsNamedAsTheHolder) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  Child holder = testing::start_duckdb_helper("hold", db, dir / "ready");
  GuardStatus status = inspect_guard(db);
  EXPECT_TRUE(status.held());
  ASSERT_TRUE(status.duckdb_lock_pid.has_value());
  EXPECT_EQ(*status.duckdb_lock_pid, holder.pid());
  ASSERT_EQ(status.holders.size(), 1u);
  const DbHolder& h = status.holders[0];
  EXPECT_EQ(h.pid, holder.pid());
  EXPECT_EQ(h.ppid, ::getpid());
  EXPECT_TRUE(h.holds_duckdb_lock);
  EXPECT_TRUE(h.has_db_open);
  EXPECT_FALSE(h.holds_guard_lease);
  EXPECT_EQ(h.command, testing::self_binary());
  std::string message = blocked_message(status);
  EXPECT_NE(message.find("pid " + std::to_string(holder.pid())), std::string::npos) << message;
  EXPECT_NE(message.find("warden guard cleanup --db " + status.paths.db), std::string::npos);
  EXPECT_NE(message.find("kill -TERM " + std::to_string(holder.pid())), std::string::npos);
}

TEST(GuardStatus, WalOfALiveWriterIsNotACrash) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  Child writer = testing::start_duckdb_helper("write", db, dir / "ready");
  GuardStatus status = inspect_guard(db);
  EXPECT_TRUE(status.wal_exists);
  EXPECT_TRUE(status.held());
  EXPECT_FALSE(status.crash_wal());
}

TEST(GuardStatus, WalOfAKilledWriterIsReportedAsLeftByACrash) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  Child writer = testing::start_duckdb_helper("write", db, dir / "ready");
  writer.kill(SIGKILL);
  writer.wait();
  GuardStatus status = inspect_guard(db);
  EXPECT_FALSE(status.held());
  EXPECT_TRUE(status.wal_exists);
  EXPECT_GT(status.wal_size, 0u);
  EXPECT_TRUE(status.crash_wal());
  EXPECT_STREQ(status.state_name(), "crashed");
  EXPECT_NE(format_guard_status(status).find("left by a crash"), std::string::npos);
}

TEST(GuardStatusCli, ExitCodeAndJsonSayFreeHeldOrCrashed) {
  TempDir dir;
  const std::string db = dir / "f.duckdb";
  auto free = testing::run_warden({"guard", "status", "--db", db, "--json"});
  EXPECT_EQ(free.exit_code, 0) << free.err;
  EXPECT_EQ(nlohmann::json::parse(free.out)["state"], "free");

  Child writer = testing::start_duckdb_helper("write", db, dir / "ready");
  auto held = testing::run_warden({"guard", "status", "--db", db, "--json"});
  EXPECT_EQ(held.exit_code, 2) << held.err;
  auto json = nlohmann::json::parse(held.out);
  EXPECT_EQ(json["state"], "held");
  EXPECT_EQ(json["duckdb_lock_pid"], writer.pid());
  EXPECT_EQ(json["holders"][0]["pid"], writer.pid());
  EXPECT_EQ(json["wal"]["exists"], true);
  EXPECT_EQ(json["wal"]["left_by_crash"], false);

  writer.kill(SIGKILL);
  writer.wait();
  auto crashed = testing::run_warden({"guard", "status", "--db", db});
  EXPECT_EQ(crashed.exit_code, 3) << crashed.err;
  EXPECT_NE(crashed.out.find("left by a crash"), std::string::npos) << crashed.out;
  EXPECT_NE(crashed.out.find("warden guard cleanup --db " + guard_paths(db).db), std::string::npos)
      << crashed.out;
}

}  // namespace
}  // namespace warden
