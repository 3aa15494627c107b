// `warden lock status --store` and `warden lock force-unlock --store`, through the real
// binary, on both backends: leases beside file locks, and the commands that resolve them.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "lease_test_support.h"
#include "lock_test_support.h"

namespace warden {
namespace {

using namespace lease_testing;
using testing::Child;
using testing::ChildResult;
using testing::run_warden;
using testing::TempDir;
using testing::warden_binary;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

constexpr const char* kDead = "pipeline.batch.2026-01-15";
constexpr const char* kLive = "pipeline.batch.2026-01-16";

class LeaseCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  LeaseCliTest() : store_(GetParam()), db_(store_.open()) {}

  std::string data() const { return store_.dir() / "data"; }
  ChildResult warden(std::vector<std::string> args,
                     const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), {"--data-dir", data()});
    return run_warden(args, env);
  }

  StoreFixture store_;
  std::shared_ptr<sql::Database> db_;
};

TEST_P(LeaseCliTest, StatusShowsFileLocksAndLeasesSideBySide) {
  Child file_holder = lock_testing::hold_in_child(data() + "/locks", "crsp");
  Child lease_holder =
      hold_lease_in_child(store_.spec(), kLive, store_.dir().path(), short_lease(60s, 1s));
  plant_lease(*db_, kDead, host_name(), boot_id(), lock_testing::dead_pid(), 1, 10min);

  ChildResult text = warden({"lock", "status", "--store", store_.spec()});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const std::string& out = text.out;
  const std::string backend = GetParam();
  EXPECT_TRUE(std::regex_search(out, std::regex("LOCK +STATE +HOLDER +TOKEN +AGE +LEASE +BACKEND")))
      << out;
  EXPECT_TRUE(std::regex_search(
      out, std::regex("crsp +held +pid " + std::to_string(file_holder.pid()) + " .* file\n")))
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("pipeline\\.batch\\.2026-01-16 +held +pid " +
                                                std::to_string(lease_holder.pid()) +
                                                " on [^ ]+ \\(alive\\) .* " + backend + "\n")))
      << out;
  EXPECT_TRUE(std::regex_search(
      out, std::regex("pipeline\\.batch\\.2026-01-15 +stale_dead_pid .* " + backend + "\n")))
      << out;
  EXPECT_TRUE(contains(out, force_unlock_lease_command(*db_, kDead))) << out;
  EXPECT_TRUE(contains(out, "(table warden_leases); to free it now:")) << out;

  ChildResult json = warden({"lock", "status", "--json"}, {{"WARDEN_STORE", store_.spec()}});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["store"], db_->location());
  ASSERT_EQ(parsed["locks"].size(), 3u) << json.out;
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& lock : parsed["locks"]) by_name[lock["name"]] = lock;
  EXPECT_EQ(by_name["crsp"]["backend"], "file");
  EXPECT_EQ(by_name[kLive]["backend"], backend);
  EXPECT_EQ(by_name[kLive]["verdict"], "held");
  EXPECT_EQ(by_name[kLive]["path"], db_->location());
  EXPECT_EQ(by_name[kLive]["record"]["token"], child_lease_token(store_.dir().path(), kLive));
  EXPECT_EQ(by_name[kDead]["verdict"], "stale_dead_pid");
  EXPECT_EQ(by_name[kDead]["stale"], true);
  EXPECT_EQ(by_name[kDead]["resolve_command"], force_unlock_lease_command(*db_, kDead));
}

TEST_P(LeaseCliTest, ForceUnlockRemovesAStaleLeaseAndRefusesALiveHolder) {
  Child lease_holder =
      hold_lease_in_child(store_.spec(), kLive, store_.dir().path(), short_lease(60s, 1s));
  plant_lease(*db_, kDead, host_name(), boot_id(), lock_testing::dead_pid(), 1, 10min);

  ChildResult unconfirmed =
      warden({"lock", "force-unlock", "--name", kDead, "--store", store_.spec()});
  EXPECT_EQ(unconfirmed.exit_code, 1) << unconfirmed.out << unconfirmed.err;
  EXPECT_TRUE(contains(unconfirmed.out, "stdin is not a terminal; add --yes")) << unconfirmed.out;
  EXPECT_EQ(inspect_lease(*db_, kDead).verdict, LockVerdict::kStaleDeadPid);

  ChildResult removed =
      warden({"lock", "force-unlock", "--name", kDead, "--store", store_.spec(), "--yes"});
  EXPECT_EQ(removed.exit_code, 0) << removed.out << removed.err;
  EXPECT_TRUE(contains(removed.out, std::string("lease ") + kDead + " (" + db_->location() +
                                        ", table warden_leases): stale_dead_pid"))
      << removed.out;
  EXPECT_TRUE(contains(removed.out, "removed lease " + std::string(kDead))) << removed.out;
  EXPECT_EQ(inspect_lease(*db_, kDead).verdict, LockVerdict::kFree);

  ChildResult refused =
      warden({"lock", "force-unlock", "--name", kLive, "--yes"}, {{"WARDEN_STORE", store_.spec()}});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_TRUE(contains(refused.out, "refusing: its holder is alive on this host")) << refused.out;
  EXPECT_EQ(inspect_lease(*db_, kLive).verdict, LockVerdict::kHeld);

  ChildResult forced = warden(
      {"lock", "force-unlock", "--name", kLive, "--store", store_.spec(), "--yes", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.out << forced.err;
  // The holder loses its lease at its next refresh; it can never delete a successor's row.
  TableLock next(db_, kLive, short_lease(60s, 1s));
  EXPECT_GT(next.acquire(5s).token, child_lease_token(store_.dir().path(), kLive));

  ChildResult nothing =
      warden({"lock", "force-unlock", "--name", kDead, "--store", store_.spec(), "--yes"});
  EXPECT_EQ(nothing.exit_code, 0) << nothing.out << nothing.err;
  EXPECT_TRUE(contains(nothing.out, "and no lease in " + db_->location() + ": nothing to remove"))
      << nothing.out;
}

TEST_P(LeaseCliTest, TheResolveCommandThatStatusPrintsWorksAsPrinted) {
  plant_lease(*db_, kDead, host_name(), boot_id(), lock_testing::dead_pid(), 1, 10min);
  ChildResult json = warden({"lock", "status", "--store", store_.spec(), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::string command;
  const auto parsed = nlohmann::json::parse(json.out);
  for (const auto& lock : parsed["locks"]) {
    if (lock["name"] == kDead) command = lock["resolve_command"];
  }
  ASSERT_FALSE(command.empty()) << json.out;
  const char* path = std::getenv("PATH");
  ChildResult ran =
      Child::spawn({"/bin/sh", "-c", command},
                   {{"PATH", parent_directory(warden_binary()) + ":" + (path ? path : "/usr/bin")},
                    {"WARDEN_DATA_DIR", data()}})
          .wait(60s);
  EXPECT_EQ(ran.exit_code, 0) << command << "\n" << ran.out << ran.err;
  EXPECT_EQ(inspect_lease(*db_, kDead).verdict, LockVerdict::kFree);
}

INSTANTIATE_TEST_SUITE_P(Backends, LeaseCliTest, ::testing::Values("sqlite", "postgresql"),
                         backend_test_name);

TEST(LeaseCliDefaultStoreTest, ThePipelineSqliteFileIsUsedWhenItExistsAndNeverCreated) {
  TempDir dir;
  const std::string data = dir / "data";
  const std::string state = data + "/pipeline/state.sqlite";
  ChildResult none = run_warden({"--data-dir", data, "lock", "status"});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "no locks in " + data + "/locks\n");
  EXPECT_FALSE(stat_path(state).has_value()) << "a look created the store";

  auto db = sql::open_sqlite(state);
  ChildResult empty = run_warden({"--data-dir", data, "lock", "status"});
  EXPECT_EQ(empty.out, "no locks in " + data + "/locks and no leases in sqlite:" + state + "\n");
  plant_lease(*db, kDead, host_name(), boot_id(), lock_testing::dead_pid(), 1, 10min);
  ChildResult listed = run_warden({"--data-dir", data, "lock", "status"});
  EXPECT_TRUE(std::regex_search(
      listed.out, std::regex("pipeline\\.batch\\.2026-01-15 +stale_dead_pid .* sqlite\n")))
      << listed.out;
  ChildResult removed =
      run_warden({"--data-dir", data, "lock", "force-unlock", "--name", kDead, "--yes"});
  EXPECT_EQ(removed.exit_code, 0) << removed.out << removed.err;
  EXPECT_EQ(inspect_lease(*db, kDead).verdict, LockVerdict::kFree);
}

TEST(LeaseCliDefaultStoreTest, HelpNamesTheStoreOption) {
  for (const char* command : {"status", "force-unlock"}) {
    ChildResult help = run_warden({"lock", command, "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_TRUE(contains(help.out, "--store")) << help.out;
    EXPECT_TRUE(contains(help.out, "WARDEN_STORE")) << help.out;
  }
  ChildResult help = run_warden({"lock", "force-unlock", "--help"});
  EXPECT_TRUE(contains(help.out, "--name")) << help.out;
}

}  // namespace
}  // namespace warden
