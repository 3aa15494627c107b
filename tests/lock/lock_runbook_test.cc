// docs/runbooks/lock-recovery.md, run: every ```sh block is extracted from the page and run
// with bash (set -euo pipefail) against the real situation its marker names, so the runbook
// cannot drift from what warden does.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <regex>
#include <set>

#include "lock_test_support.h"
#include "warden/lease_lock.h"
#include "warden/sql.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::Child;
using testing::ChildResult;
using testing::slurp;
using testing::spit;
using testing::TempDir;
using testing::wait_until;
using testing::warden_binary;

const char* const kScenarios[] = {"running-holder", "crashed-holder", "remote-host",
                                  "malformed",      "split-brain",    "crashed-lease-holder"};
// The lease of section 6: the pipeline's batch lock for one date, in the default store.
const char* const kLeaseName = "pipeline.batch.2026-01-15";

// The page's sh blocks, in order, by the scenario named in the marker line before each.
std::map<std::string, std::vector<std::string>> runbook_blocks(std::string* error) {
  return testing::runbook_blocks_by_scenario(
      std::string(WARDEN_SOURCE_DIR) + "/docs/runbooks/lock-recovery.md", error);
}

TEST(LockRunbookTest, EveryShBlockBelongsToAScenarioThisTestSetsUp) {
  std::string error;
  auto blocks = runbook_blocks(&error);
  EXPECT_EQ(error, "");
  std::set<std::string> found, expected(std::begin(kScenarios), std::end(kScenarios));
  for (const auto& [name, list] : blocks) found.insert(name);
  EXPECT_EQ(found, expected);
}

class LockRunbookScenarioTest : public ::testing::TestWithParam<const char*> {};

// A `warden lock run` holder of crsp in `data_dir`, started and waited for.
Child start_holder(const std::string& data_dir) {
  Child holder = Child::spawn({warden_binary(), "--data-dir", data_dir, "lock", "run", "--dataset",
                               "crsp", "--", "sleep", "300"});
  EXPECT_TRUE(wait_until([&] {
    return inspect_file_lock(data_dir + "/locks", "crsp").verdict == LockVerdict::kHeld;
  }));
  return holder;
}

TEST_P(LockRunbookScenarioTest, RunsEveryCommand) {
  const std::string scenario = GetParam();
  std::string error;
  auto blocks = runbook_blocks(&error)[scenario];
  ASSERT_FALSE(blocks.empty()) << "no sh block for " << scenario;

  TempDir dir;
  const std::string data = dir / "data";
  const std::string locks = data + "/locks";
  std::optional<Child> holder;
  uint64_t crashed_token = 0;
  if (scenario == "running-holder") {
    holder.emplace(start_holder(data));
  } else if (scenario == "crashed-holder" || scenario == "split-brain") {
    Child crashed = start_holder(data);
    crashed_token = inspect_file_lock(locks, "crsp").record->token;
    crashed.kill(SIGKILL);
    crashed.wait();
    // The command inherited the lock (so it never writes unlocked); the watchdog kills it
    // within milliseconds of warden's death, and only then is the lock free.
    ASSERT_TRUE(wait_until(
        [&] { return inspect_file_lock(locks, "crsp").verdict == LockVerdict::kStaleDeadPid; },
        std::chrono::seconds(10)));
  } else if (scenario == "remote-host") {
    plant(locks, foreign_record("crsp", 5, 10min));
  } else if (scenario == "malformed") {
    make_directories(locks);
    spit(lock_path(locks, "crsp"), "{\"version\":1,\"name\":\"crsp\",\"pid\":");
  } else if (scenario == "crashed-lease-holder") {
    // A batcher holding its date's lease (default TTL 5 min) in the default store, killed.
    const std::string store = data + "/pipeline/state.sqlite";
    Child crashed = Child::fork_function([=] {
      TableLock lease(sql::open_sqlite(store), kLeaseName);
      lease.acquire(10s);
      for (;;) ::pause();
      return 0;
    });
    ASSERT_TRUE(wait_until([&] {
      return stat_path(store) &&
             inspect_lease(*sql::open_sqlite(store), kLeaseName).verdict == LockVerdict::kHeld;
    }));
    crashed.kill(SIGKILL);
    crashed.wait();
  }

  const std::string bin_dir = parent_directory(warden_binary());
  const char* path = std::getenv("PATH");
  std::string output;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string script = dir / ("block" + std::to_string(i) + ".sh");
    spit(script, "set -euo pipefail\ncd '" + dir.path() + "'\n" + blocks[i]);
    ChildResult result = Child::spawn({"/bin/bash", script},
                                      {{"PATH", bin_dir + ":" + (path ? path : "/usr/bin:/bin")},
                                       {"WARDEN_DATA_DIR", data}})
                             .wait(120s);
    EXPECT_EQ(result.exit_code, 0) << scenario << " block " << i << ":\n"
                                   << blocks[i] << "stdout:\n"
                                   << result.out << "stderr:\n"
                                   << result.err;
    output += result.out;
  }

  // Every scenario ends with the lock free and the fencing token never lower.
  EXPECT_EQ(inspect_file_lock(locks, "crsp").verdict, LockVerdict::kFree) << output;
  if (scenario == "running-holder") {
    ChildResult ended = holder->wait(30s);
    EXPECT_EQ(ended.exit_code, 128 + SIGTERM) << "the holder's command got the SIGTERM";
    EXPECT_NE(output.find("crsp is free again"), std::string::npos) << output;
  }
  if (scenario == "crashed-holder") {
    EXPECT_NE(output.find("is not running"), std::string::npos) << output;
    EXPECT_GE(last_fencing_token(locks, "crsp"), crashed_token);
  }
  if (scenario == "remote-host") {
    EXPECT_NE(output.find("remote_unverifiable"), std::string::npos) << output;
    EXPECT_GE(last_fencing_token(locks, "crsp"), 5u);
  }
  if (scenario == "malformed") {
    EXPECT_NE(output.find("crsp lock works again"), std::string::npos) << output;
  }
  if (scenario == "crashed-lease-holder") {
    EXPECT_NE(output.find(std::string(kLeaseName) + "  stale_dead_pid"), std::string::npos)
        << output;
    EXPECT_NE(output.find("removed lease " + std::string(kLeaseName)), std::string::npos) << output;
    EXPECT_EQ(inspect_lease(*sql::open_sqlite(data + "/pipeline/state.sqlite"), kLeaseName).verdict,
              LockVerdict::kFree);
  }
  if (scenario == "split-brain") {
    std::smatch a, b;
    ASSERT_TRUE(std::regex_search(output, a, std::regex("writer A holds token (\\d+)"))) << output;
    ASSERT_TRUE(std::regex_search(output, b, std::regex("writer B holds token (\\d+)"))) << output;
    EXPECT_NE(a[1], b[1]);
    EXPECT_GT(std::stoull(a[1]), crashed_token);
    EXPECT_GT(std::stoull(b[1]), crashed_token);
    EXPECT_EQ(last_fencing_token(locks, "crsp"), std::max(std::stoull(a[1]), std::stoull(b[1])));
    const uint64_t last = std::max(std::stoull(a[1]), std::stoull(b[1]));
    EXPECT_NE(output.find("last fencing token of crsp: " + std::to_string(last)), std::string::npos)
        << output;
  }
}

INSTANTIATE_TEST_SUITE_P(LockRecoveryMd, LockRunbookScenarioTest, ::testing::ValuesIn(kScenarios),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace warden
