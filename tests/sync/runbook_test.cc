// docs/runbooks/{data-storage,duckdb-operations,data-backup-restore}.md, run: every ```sh
// block is extracted and run with bash (set -euo pipefail) from a directory holding a real
// data/ in the situation its marker names, so the runbooks cannot drift from warden.
#include <map>
#include <set>

#include "sync_fixture.h"
#include "warden/posix.h"

namespace warden::testing {
namespace {

const char* const kPages[] = {"data-storage.md", "duckdb-operations.md", "data-backup-restore.md"};
const char* const kScenarios[] = {"healthy", "failed-sync", "quarantine", "reading", "backup"};

// Every page's sh blocks, in order, by the scenario named in the marker line before each.
std::map<std::string, std::vector<std::string>> runbook_blocks(std::string* error) {
  std::map<std::string, std::vector<std::string>> blocks;
  for (const char* page : kPages) {
    auto page_blocks = testing::runbook_blocks_by_scenario(
        std::string(WARDEN_SOURCE_DIR) + "/docs/runbooks/" + page, error);
    for (auto& [scenario, list] : page_blocks) {
      blocks[scenario].insert(blocks[scenario].end(), list.begin(), list.end());
    }
  }
  return blocks;
}

TEST(SyncRunbookTest, EveryShBlockBelongsToAScenarioThisTestSetsUp) {
  std::string error;
  auto blocks = runbook_blocks(&error);
  EXPECT_EQ(error, "");
  std::set<std::string> found, expected(std::begin(kScenarios), std::end(kScenarios));
  for (const auto& [name, list] : blocks) found.insert(name);
  EXPECT_EQ(found, expected);
}

class SyncRunbookScenarioTest : public SyncFixture,
                                public ::testing::WithParamInterface<const char*> {
 protected:
  std::map<std::string, std::string> env(const std::string& failpoints = "") const {
    const char* path = std::getenv("PATH");
    return {{"PATH", (data_ / "bin") + ":" + (path ? path : "/usr/bin:/bin")},
            {"HOME", data_.path()},
            {"WARDEN_SOURCE", "duckdb:" + sample_path()},
            {"WARDEN_CONFIG", ""},
            {"WARDEN_DATA_DIR", ""},
            {"WARDEN_FAILPOINTS", failpoints}};
  }
  ChildResult warden(std::vector<std::string> args, const std::string& failpoints = "") {
    args.insert(args.begin(), {"--data-dir", data_ / "data"});
    return run_warden(args, env(failpoints));
  }
  std::vector<std::string> full_crsp() const {
    return {"sync", "full", "--dataset", "crsp", "--start-year", "2018", "--end-year", "2022"};
  }
};

TEST_P(SyncRunbookScenarioTest, CommandsRunCleanly) {
  const std::string scenario = GetParam();
  std::string error;
  std::vector<std::string> blocks = runbook_blocks(&error)[scenario];
  ASSERT_FALSE(blocks.empty());
  make_directories(data_ / "bin");
  std::filesystem::create_symlink(warden_binary(), data_ / "bin/warden");
  ASSERT_EQ(warden(full_crsp()).exit_code, 0);

  std::optional<Child> background;
  if (scenario == "failed-sync") {
    ChildResult crashed = warden(full_crsp(), "storage.manifest.after_temp_write=crash");
    ASSERT_FALSE(crashed.exited);
  } else if (scenario == "quarantine") {
    const std::string file = data_ / "data/wrds/crsp/daily/2021.parquet";
    std::string bytes = slurp(file);
    bytes[bytes.size() / 3] ^= 0x5a;
    spit(file, bytes);
    ASSERT_EQ(warden({"sync", "verify", "--dataset", "crsp"}).exit_code, 3);
  } else if (scenario == "reading") {
    // A sync rewriting the dataset while the commands run (each partition slowed down).
    std::vector<std::string> argv = {warden_binary(), "--data-dir", data_ / "data"};
    for (const std::string& a : full_crsp()) argv.push_back(a);
    background.emplace(Child::spawn(argv, env("sync.partition.after_rename=sleep:300")));
  }

  for (const std::string& block : blocks) {
    ChildResult r =
        Child::spawn({"/bin/bash", "-c", "set -euo pipefail\ncd '" + data_.path() + "'\n" + block},
                     env())
            .wait(std::chrono::seconds(120));
    EXPECT_TRUE(r.exited && r.exit_code == 0)
        << "block:\n"
        << block << "exit " << r.exit_code << " signal " << r.signal << "\nstdout:\n"
        << r.out << "\nstderr:\n"
        << r.err;
  }
  if (background) {
    ChildResult sync = background->wait(std::chrono::seconds(120));
    EXPECT_EQ(sync.exit_code, 0) << sync.err;
  }
  EXPECT_EQ(warden({"sync", "verify", "--all"}).exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, SyncRunbookScenarioTest, ::testing::ValuesIn(kScenarios),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace warden::testing
