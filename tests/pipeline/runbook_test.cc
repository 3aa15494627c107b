// docs/runbooks/pipeline-lock-recovery.md, run: every ```sh block is extracted and run with
// bash (set -euo pipefail) in a directory holding landing/ and data/ in the situation its
// marker names, on both backends (PostgreSQL through WARDEN_STORE), so the runbook cannot
// drift from warden.
#include <signal.h>

#include <set>

#include "pipeline_fixture.h"

namespace warden::pipeline {
namespace {

using testing::Child;
using testing::ChildResult;

const char* const kScenarios[] = {"healthy", "expired-lock", "active-lock", "below-threshold"};

std::string runbook_path() {
  return std::string(WARDEN_SOURCE_DIR) + "/docs/runbooks/pipeline-lock-recovery.md";
}

TEST(PipelineRunbookTest, EveryShBlockBelongsToAScenarioThisTestSetsUp) {
  std::string error;
  auto blocks = testing::runbook_blocks_by_scenario(runbook_path(), &error);
  EXPECT_EQ(error, "");
  std::set<std::string> found, expected(std::begin(kScenarios), std::end(kScenarios));
  for (const auto& [name, list] : blocks) found.insert(name);
  EXPECT_EQ(found, expected);
}

class PipelineRunbookScenarioTest : public PipelineTest {};

std::string utc_today() { return format_utc(std::chrono::system_clock::now()).substr(0, 10); }

TEST_P(PipelineRunbookScenarioTest, CommandsRunCleanly) {
  std::string error;
  auto all_blocks = testing::runbook_blocks_by_scenario(runbook_path(), &error);
  make_directories(dir_ / "bin");
  std::filesystem::create_symlink(testing::warden_binary(), dir_ / "bin/warden");
  const char* path = std::getenv("PATH");
  std::map<std::string, std::string> env = {
      {"PATH", (dir_ / "bin") + ":" + (path ? path : "/usr/bin:/bin")},
      {"HOME", dir_.path()},
      {"WARDEN_DATA_DIR", ""},
      {"WARDEN_FAILPOINTS", ""},
      {"WARDEN_STORE", store_}};
  auto warden = [&](std::vector<std::string> args, const std::string& failpoints = "") {
    std::map<std::string, std::string> e = env;
    e["WARDEN_FAILPOINTS"] = failpoints;
    args.insert(args.begin(), {"--data-dir", data_dir(), "pipeline"});
    return testing::run_warden(args, e);
  };

  for (const char* scenario : kScenarios) {
    SCOPED_TRACE(scenario);
    std::filesystem::remove_all(dir_ / "landing");
    std::filesystem::remove_all(data_dir());
    if (pg_) {
      pg_->exec(
          "DROP TABLE IF EXISTS pipeline_files; DROP TABLE IF EXISTS pipeline_manifests; "
          "DROP TABLE IF EXISTS warden_leases");
    }
    const std::string name = scenario;
    if (name == "healthy") {
      land_days(13, 10);
      ASSERT_EQ(warden({"ingest", dir_ / "landing"}).exit_code, 0);
    } else if (name == "expired-lock" || name == "active-lock") {
      land_days(1, 20);
      std::vector<std::string> args = {"ingest", dir_ / "landing"};
      if (name == "expired-lock") args.insert(args.end(), {"--lease", "1s"});
      ChildResult killed = warden(args, "pipeline.batch.after_manifest_write=crash");
      ASSERT_FALSE(killed.exited) << killed.err;
      if (name == "expired-lock") {
        auto store = db();
        ASSERT_TRUE(testing::wait_until(
            [&] {
              auto leases = lease_status(*store);
              return leases.size() == 1 && leases[0].verdict == LockVerdict::kStaleExpired;
            },
            std::chrono::seconds(30)));
      }
    } else if (name == "below-threshold") {
      for (int i = 0; i < 3; ++i) land(utc_today(), "f" + std::to_string(i) + ".ndjson");
      ASSERT_EQ(warden({"ingest", dir_ / "landing"}).exit_code, 0);
    }

    for (const std::string& block : all_blocks[name]) {
      ChildResult r =
          Child::spawn({"/bin/bash", "-c", "set -euo pipefail\ncd '" + dir_.path() + "'\n" + block},
                       env)
              .wait(std::chrono::seconds(120));
      EXPECT_TRUE(r.exited && r.exit_code == 0)
          << "block:\n"
          << block << "exit " << r.exit_code << " signal " << r.signal << "\nstdout:\n"
          << r.out << "\nstderr:\n"
          << r.err;
    }

    // What each scenario's commands must have achieved.
    if (name == "expired-lock") {
      EXPECT_TRUE(lease_status(*db()).empty());
      EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 2);
      expect_consistent();
    } else if (name == "active-lock") {
      EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 0);  // blocked, as said
      EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'"), 20);
    } else if (name == "healthy") {
      EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 13);
      EXPECT_TRUE(std::filesystem::exists(dir_ / "pipeline-state.json"));
    } else if (name == "below-threshold") {
      EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 1);
      EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'"), 0);
    }
  }
}

WARDEN_PIPELINE_BACKENDS(PipelineRunbookScenarioTest);

}  // namespace
}  // namespace warden::pipeline
