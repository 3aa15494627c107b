// docs/runbooks/duckdb-operations.md, section "The guard", run: every ```bash block of the
// section is extracted and run with bash (set -euo pipefail) against the real situation its
// marker names (a live guard, a SIGKILLed guard and DuckDB writer, a damaged WAL, ...), and
// must exit with the code the marker gives, so the runbook cannot drift from warden.
// (The page's ```sh blocks belong to the sync part's runbook test; this section uses
// ```bash so the two tests never claim each other's blocks.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "guard_test_support.h"
#include "warden/guard.h"

namespace warden {
namespace {

namespace fs = std::filesystem;
using testing::Child;
using testing::ChildResult;
using testing::TempDir;

const char* const kScenarios[] = {"stuck-job", "crashed-job", "wal-left", "wal-corrupt",
                                  "double-run"};

struct Block {
  std::string script;
  int exit_code = 0;
};

// The section's bash blocks, in order, by the scenario named in the marker line before each.
std::map<std::string, std::vector<Block>> runbook_blocks(std::string* error) {
  std::map<std::string, std::vector<Block>> blocks;
  std::istringstream in(
      testing::slurp(std::string(WARDEN_SOURCE_DIR) + "/docs/runbooks/duckdb-operations.md"));
  const std::regex marker("^<!-- guard-runbook: ([a-z-]+)(?: exits ([0-9]+))? -->$");
  std::string line, scenario;
  Block block;
  bool in_section = false, in_block = false;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.rfind("## ", 0) == 0) in_section = line == "## The guard";
    if (!in_section) continue;
    std::smatch m;
    if (in_block) {
      if (line == "```") {
        blocks[scenario].push_back(block);
        in_block = false;
        scenario.clear();
      } else {
        block.script += line + "\n";
      }
    } else if (std::regex_match(line, m, marker)) {
      scenario = m[1];
      block = Block{"", m[2].matched ? std::stoi(m[2]) : 0};
    } else if (line == "```bash" || line == "```sh") {
      if (scenario.empty() || line == "```sh") {
        *error += "line " + std::to_string(line_number) + ": " + line + " block without a marker\n";
      }
      in_block = true;
      block.script.clear();
    } else if (!line.empty()) {
      scenario.clear();  // a marker belongs to the block right after it
    }
  }
  if (blocks.empty()) *error += "no \"## The guard\" section with bash blocks\n";
  return blocks;
}

TEST(GuardRunbook, EveryBashBlockBelongsToAScenarioThisTestSetsUp) {
  std::string error;
  auto blocks = runbook_blocks(&error);
  EXPECT_EQ(error, "");
  std::set<std::string> found, expected(std::begin(kScenarios), std::end(kScenarios));
  for (const auto& [name, list] : blocks) found.insert(name);
  EXPECT_EQ(found, expected);
}

class GuardRunbookScenario : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "bin");
    fs::create_directories(dir_ / "data");
    fs::create_symlink(testing::warden_binary(), dir_ / "bin/warden");
    // `ingest`, the runbook's stand-in for a job: a DuckDB writer that inserts 1000 rows into
    // table t of the database and exits 0 (this test program in its helper mode).
    testing::spit(dir_ / "bin/ingest",
                  "#!/bin/sh\nWARDEN_GUARD_TEST_HELPER=insert WARDEN_HELPER_DB='" + db_ +
                      "' WARDEN_HELPER_ROWS=1000 exec '" + testing::self_binary() + "'\n");
    ::chmod((dir_ / "bin/ingest").c_str(), 0755);
  }
  std::map<std::string, std::string> env() const {
    const char* path = std::getenv("PATH");
    return {{"PATH", (dir_ / "bin") + ":" + (path ? path : "/usr/bin:/bin")},
            {"WARDEN_FAILPOINTS", ""}};
  }
  // `warden guard run --db F -- <DuckDB helper in `mode`>`, once the helper is ready.
  Child start_guarded_helper(const std::string& mode) {
    auto helper_env = testing::duckdb_helper_env(mode, db_, dir_ / "ready", 1000);
    Child guard = Child::spawn(
        {testing::warden_binary(), "guard", "run", "--db", db_, "--", testing::self_binary()},
        helper_env, true);
    EXPECT_TRUE(
        testing::wait_until([&] { return fs::exists(dir_ / "ready"); }, std::chrono::seconds(30)));
    return guard;
  }
  void crash_a_writer() {
    Child writer = testing::start_duckdb_helper("write", db_, dir_ / "ready", 1000);
    writer.kill(SIGKILL);
    writer.wait();
    ASSERT_TRUE(fs::exists(db_ + ".wal"));
  }

  TempDir dir_;
  const std::string db_ = dir_ / "data/liquidations.duckdb";
};

TEST_P(GuardRunbookScenario, CommandsDoWhatThePageSays) {
  const std::string scenario = GetParam();
  std::string error;
  std::vector<Block> blocks = runbook_blocks(&error)[scenario];
  ASSERT_FALSE(blocks.empty());

  std::optional<Child> first;
  if (scenario == "stuck-job" || scenario == "double-run") {
    first.emplace(start_guarded_helper("hold"));  // a live guard whose DuckDB job never ends
  } else if (scenario == "crashed-job") {
    Child guard = start_guarded_helper("write");  // 1000 rows only in the WAL
    pid_t writer = testing::read_pid_file(dir_ / "ready");
    testing::PinnedProcess pinned_writer(writer);  // not our child: its pid may be reused
    guard.kill(SIGKILL);
    pinned_writer.kill(SIGKILL);
    guard.wait();
    ASSERT_TRUE(testing::wait_until([&] { return !testing::process_alive(writer); }));
    ASSERT_TRUE(testing::wait_until([&] { return inspect_guard(db_).stale_lease(); }));
  } else if (scenario == "wal-left" || scenario == "wal-corrupt") {
    crash_a_writer();
    if (scenario == "wal-corrupt") {
      std::string bytes = testing::slurp(db_ + ".wal");
      ASSERT_GT(bytes.size(), 400u);
      for (size_t i = 100; i < 400; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
      testing::spit(db_ + ".wal", bytes);
    }
  }

  for (const Block& block : blocks) {
    ChildResult r = Child::spawn({"/bin/bash", "-c",
                                  "set -euo pipefail\ncd '" + dir_.path() + "'\n" + block.script},
                                 env())
                        .wait(std::chrono::seconds(120));
    EXPECT_TRUE(r.exited && r.exit_code == block.exit_code)
        << "block:\n"
        << block.script << "expected exit " << block.exit_code << ", got " << r.exit_code
        << " signal " << r.signal << "\nstdout:\n"
        << r.out << "\nstderr:\n"
        << r.err;
  }

  // What the page promises happened.
  GuardStatus after = inspect_guard(db_);
  testing::TableCount count = testing::count_rows(db_);
  if (scenario == "stuck-job") {
    EXPECT_EQ(first->wait().exit_code, 128 + SIGTERM);  // cleanup stopped the guard
    ASSERT_TRUE(count.ok) << count.error;
    EXPECT_EQ(count.rows, 1000);  // then the rerun ingested
    EXPECT_EQ(after.state_name(), std::string("free"));
  } else if (scenario == "crashed-job") {
    ASSERT_TRUE(count.ok) << count.error;
    EXPECT_EQ(count.rows, 2000);  // the WAL's 1000 rows replayed, then 1000 more
    EXPECT_EQ(after.state_name(), std::string("free"));
  } else if (scenario == "wal-left") {
    ASSERT_TRUE(count.ok) << count.error;
    EXPECT_EQ(count.rows, 1000);
    EXPECT_FALSE(after.wal_exists);
  } else if (scenario == "wal-corrupt") {
    EXPECT_FALSE(after.wal_exists);
    EXPECT_EQ(after.corrupt_wals.size(), 1u);
  } else if (scenario == "double-run") {
    EXPECT_FALSE(first->finished());  // the first run is untouched
    first->kill(SIGTERM);
    EXPECT_EQ(first->wait().exit_code, 128 + SIGTERM);
    count = testing::count_rows(db_);  // and the refused run never wrote
    EXPECT_FALSE(count.ok);
    EXPECT_NE(count.error.find("t does not exist"), std::string::npos) << count.error;
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, GuardRunbookScenario, ::testing::ValuesIn(kScenarios),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

}  // namespace
}  // namespace warden
