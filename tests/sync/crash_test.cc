// Crash tests: a real `warden sync full` child is killed with SIGKILL at each dangerous
// moment; the rerun resumes where it was, verify is clean, and every row equals the source.
// Plus readers during a rewrite, and bad input (corrupt manifest, truncated Parquet, a
// manifest naming a missing file).
#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "sync_fixture.h"
#include "warden/checksum.h"
#include "warden/posix.h"

namespace warden::testing {
namespace {

const char* const kCrsp =
    "SELECT permno, permco, date, prc, ret, retx, vol, shrout, cfacpr, cfacshr FROM crsp.dsf";

class SyncCrashTest : public SyncFixture {
 protected:
  std::vector<std::string> args(std::vector<std::string> command) const {
    command.insert(command.begin(), {"--data-dir", data_.path()});
    return command;
  }
  std::vector<std::string> full_2018_2022() const {
    return args({"sync", "full", "--dataset", "crsp", "--start-year", "2018", "--end-year", "2022",
                 "--json", "--source", "duckdb:" + sample_path()});
  }
  std::map<std::string, std::string> env(const std::string& failpoints = "") const {
    return {{"WARDEN_FAILPOINTS", failpoints}, {"WARDEN_CONFIG", ""}, {"WARDEN_SOURCE", ""}};
  }
  size_t manifest_files() const {
    try {
      auto m = load_manifest(DataLayout(data_.path()), "crsp");
      return m ? m->files.size() : 0;
    } catch (const Error&) {
      return 0;
    }
  }
  size_t checkpointed_years() const {
    try {
      auto p = load_progress(DataLayout(data_.path()), "crsp");
      return p ? p->years_completed.size() : 0;
    } catch (const Error&) {
      return 0;
    }
  }
  bool hidden_temp_in(const std::string& dir) const {
    for (const std::string& name : list_names(dir)) {
      if (name[0] == '.' && name.find(".tmp.") != std::string::npos) return true;
    }
    return false;
  }
  // After the crash: the rerun resumes, verify is clean, the rows are the source's, and no
  // temp file is left anywhere.
  void expect_rerun_resumes_and_matches(const std::vector<int>& skipped) {
    ChildResult rerun = run_warden(full_2018_2022(), env());
    ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
    nlohmann::json out = nlohmann::json::parse(rerun.out);
    EXPECT_EQ(out["years_skipped"].get<std::vector<int>>(), skipped) << rerun.out;
    EXPECT_EQ(out["resumed"].get<bool>(), !skipped.empty());
    ChildResult verify = run_warden(args({"sync", "verify", "--dataset", "crsp"}), env());
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
    EXPECT_EQ(rows_differing(std::string(kCrsp) + " WHERE year(date) BETWEEN 2018 AND 2022",
                             crsp_dir() + "/*.parquet"),
              0);
    EXPECT_EQ(list_names(crsp_dir()),
              (std::vector<std::string>{"2018.parquet", "2019.parquet", "2020.parquet",
                                        "2021.parquet", "2022.parquet"}));
    for (const char* dir : {"manifests", "sync_progress", "schemas"}) {
      EXPECT_FALSE(hidden_temp_in(data_ / dir)) << dir;
    }
  }
};

// The four dangerous moments of a partition's publication.
const char* const kFailpoints[] = {
    "sync.partition.after_temp_write",    // the Parquet temp file is written, not renamed
    "sync.partition.after_rename",        // the file is in place, the manifest does not name it
    "storage.manifest.after_temp_write",  // mid-manifest: the new manifest is a temp file
    "sync.checkpoint.after_temp_write",   // mid-checkpoint: the new checkpoint is a temp file
};

class SyncCrashAtFailpoint : public SyncCrashTest,
                             public ::testing::WithParamInterface<const char*> {};

// SIGKILL the first time the process reaches the moment.
TEST_P(SyncCrashAtFailpoint, KilledAtFirstHitRerunCompletesVerifiedAndExact) {
  ChildResult crashed = run_warden(full_2018_2022(), env(std::string(GetParam()) + "=crash"));
  ASSERT_FALSE(crashed.exited) << crashed.err;
  ASSERT_EQ(crashed.signal, SIGKILL);
  // Whatever the crash left, a reader of the committed manifest sees only complete files.
  if (auto m = load_manifest(DataLayout(data_.path()), "crsp")) {
    for (const ManifestFile& f : m->files) {
      EXPECT_EQ(sha256_file(data_.path() + "/" + f.path), f.sha256) << f.path;
    }
  }
  expect_rerun_resumes_and_matches({});
}

// SIGKILL in the middle of the third year: the child is held at the third year's hit of the
// moment (the earlier hits pass) and the test kills it there once it sees the first two
// years committed and the third at the moment. (A sleep at every hit raced the test's
// polling: a slow poll saw the third year's moment only after it had passed.)
TEST_P(SyncCrashAtFailpoint, KilledAtThirdYearRerunResumesAfterTheSecond) {
  const std::string failpoint = GetParam();
  std::vector<std::string> argv = full_2018_2022();
  argv.insert(argv.begin(), warden_binary());
  // The checkpoint is also saved once when the sync starts: its third year is its 4th hit.
  const int hit = failpoint == "sync.checkpoint.after_temp_write" ? 4 : 3;
  Child child = Child::spawn(argv, env(failpoint + "=" + std::to_string(hit) + ":pause"));
  std::function<bool()> at_third_year;
  if (failpoint == "sync.partition.after_temp_write") {
    // The staged years are hidden in the table directory from the start of their export:
    // the second year's checkpoint marks the third year's turn.
    at_third_year = [&] {
      return manifest_files() == 2 && checkpointed_years() == 2 && hidden_temp_in(crsp_dir());
    };
  } else if (failpoint == "sync.partition.after_rename") {
    at_third_year = [&] { return manifest_files() == 2 && stat_path(crsp_file(2020)).has_value(); };
  } else if (failpoint == "storage.manifest.after_temp_write") {
    at_third_year = [&] {
      return manifest_files() == 2 && checkpointed_years() == 2 &&
             hidden_temp_in(data_ / "manifests");
    };
  } else {
    at_third_year = [&] {
      return manifest_files() == 3 && checkpointed_years() == 2 &&
             hidden_temp_in(data_ / "sync_progress");
    };
  }
  ASSERT_TRUE(wait_until(at_third_year, std::chrono::seconds(60)));
  child.kill(SIGKILL);
  ChildResult killed = child.wait();
  ASSERT_FALSE(killed.exited) << killed.err;
  expect_rerun_resumes_and_matches({2018, 2019});
}

INSTANTIATE_TEST_SUITE_P(Moments, SyncCrashAtFailpoint, ::testing::ValuesIn(kFailpoints),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '.') c = '_';
                           }
                           return name;
                         });

TEST_F(SyncCrashTest, ReaderDuringRewritesNeverSeesAnErrorOrAPartialFile) {
  ASSERT_EQ(run_warden(full_2018_2022(), env()).exit_code, 0);
  const int64_t expected = source_count(2018, 2022);
  std::atomic<bool> stop{false}, failed{false};
  std::atomic<int> reads{0};
  std::string failure;
  std::thread reader([&] {
    duckdb::Database db = duckdb::Database::in_memory({{"threads", "1"}});
    duckdb::Connection con = db.connect();
    const std::string glob = "read_parquet('" + crsp_dir() + "/*.parquet')";
    while (!stop && failure.empty()) {
      try {
        // Every row, every column decoded: a partial file would fail or come up short.
        int64_t rows = con.query("SELECT count(*), sum(hash(permno, date, prc, ret)) FROM " + glob)
                           .get_int64(0, 0);
        if (rows != expected) failure = "read " + std::to_string(rows) + " rows";
        ++reads;
      } catch (const std::exception& e) {
        failure = e.what();
      }
    }
    failed = !failure.empty();
  });
  // At least two rewrites, and on until a whole read began and ended while they ran (a fixed
  // count raced the reader's start on a loaded machine: it could read nothing).
  const int before = reads.load();
  for (int i = 0; i < 2 || (reads.load() < before + 2 && !failed && i < 100); ++i) {
    ChildResult r = run_warden(full_2018_2022(), env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  stop = true;
  reader.join();
  EXPECT_EQ(failure, "");
  EXPECT_GE(reads.load(), before + 2);
}

TEST_F(SyncCrashTest, CorruptManifestIsRefusedNamingItAndNothingIsWritten) {
  ASSERT_EQ(run_warden(full_2018_2022(), env()).exit_code, 0);
  const std::string manifest = data_ / "manifests/crsp.json";
  spit(manifest, "{\"version\":1,\"dataset\":\"crsp\",");
  const std::string sha = sha256_file(crsp_file(2020));
  ChildResult r = run_warden(full_2018_2022(), env());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(manifest), std::string::npos) << r.err;
  EXPECT_EQ(slurp(manifest), "{\"version\":1,\"dataset\":\"crsp\",") << "never rewritten";
  EXPECT_EQ(sha256_file(crsp_file(2020)), sha);
  ChildResult verify = run_warden(args({"sync", "verify", "--dataset", "crsp"}), env());
  EXPECT_EQ(verify.exit_code, 1) << verify.err;
  EXPECT_NE(verify.err.find(manifest), std::string::npos) << verify.err;
  ChildResult status = run_warden(args({"sync", "status", "--dataset", "crsp"}), env());
  EXPECT_EQ(status.exit_code, 3) << status.out;
  EXPECT_NE(status.out.find("problem:"), std::string::npos) << status.out;
}

TEST_F(SyncCrashTest, TruncatedParquetIsFoundQuarantinedAndRepairedByResync) {
  ASSERT_EQ(run_warden(full_2018_2022(), env()).exit_code, 0);
  std::string bytes = slurp(crsp_file(2021));
  spit(crsp_file(2021), bytes.substr(0, bytes.size() / 2));
  ChildResult verify = run_warden(args({"sync", "verify", "--dataset", "crsp"}), env());
  EXPECT_EQ(verify.exit_code, 3) << verify.out;
  EXPECT_NE(verify.out.find("mismatch wrds/crsp/daily/2021.parquet: size"), std::string::npos)
      << verify.out;
  EXPECT_FALSE(stat_path(crsp_file(2021)).has_value()) << "quarantined";
  auto quarantined = list_quarantine(DataLayout(data_.path()));
  ASSERT_EQ(quarantined.size(), 1u);
  EXPECT_EQ(list_names(quarantined[0].dir),
            (std::vector<std::string>{"2021.parquet", "reason.json"}));
  ASSERT_EQ(run_warden(args({"sync", "full", "--dataset", "crsp", "--start-year", "2021",
                             "--end-year", "2021", "--source", "duckdb:" + sample_path()}),
                       env())
                .exit_code,
            0);
  EXPECT_EQ(run_warden(args({"sync", "verify", "--dataset", "crsp"}), env()).exit_code, 0);
  EXPECT_EQ(rows_differing(std::string(kCrsp) + " WHERE year(date) BETWEEN 2018 AND 2022",
                           crsp_dir() + "/*.parquet"),
            0);
}

TEST_F(SyncCrashTest, ManifestNamingAMissingFileIsReportedWithTheFix) {
  ASSERT_EQ(run_warden(full_2018_2022(), env()).exit_code, 0);
  remove_file(crsp_file(2019));
  ChildResult verify = run_warden(args({"sync", "verify", "--dataset", "crsp"}), env());
  EXPECT_EQ(verify.exit_code, 3) << verify.out;
  EXPECT_NE(verify.out.find("missing  wrds/crsp/daily/2019.parquet"), std::string::npos)
      << verify.out;
  EXPECT_NE(verify.err.find("warden sync full --dataset crsp --start-year 2019 --end-year 2019"),
            std::string::npos)
      << verify.err;
  ASSERT_EQ(run_warden(args({"sync", "full", "--dataset", "crsp", "--start-year", "2019",
                             "--end-year", "2019", "--source", "duckdb:" + sample_path()}),
                       env())
                .exit_code,
            0);
  EXPECT_EQ(run_warden(args({"sync", "verify", "--dataset", "crsp"}), env()).exit_code, 0);
}

}  // namespace
}  // namespace warden::testing
