// The sync and sample commands driven through the real `warden` binary: exit codes, the
// source from flag / environment / config file, events when not on a terminal, the lock.
#include <nlohmann/json.hpp>

#include "sync_fixture.h"
#include "warden/lock.h"
#include "warden/posix.h"

namespace warden::testing {
namespace {

class SyncCliTest : public SyncFixture {
 protected:
  // Every run sees a private HOME and no WARDEN_SOURCE/WARDEN_CONFIG from the caller.
  ChildResult warden(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), {"--data-dir", data_dir()});
    env.emplace("HOME", home_.path());
    env.emplace("WARDEN_SOURCE", "");
    env.emplace("WARDEN_CONFIG", "");
    env.emplace("WARDEN_DATA_DIR", "");
    return run_warden(args, env);
  }
  std::string data_dir() const { return data_ / "data"; }
  std::string source() const { return "duckdb:" + sample_path(); }
  static std::vector<nlohmann::json> json_lines(const std::string& text) {
    std::vector<nlohmann::json> out;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      if (!line.empty() && line[0] == '{') out.push_back(nlohmann::json::parse(line));
      start = end + 1;
    }
    return out;
  }
  static size_t count_events(const std::string& text, const std::string& name) {
    size_t n = 0;
    for (const auto& e : json_lines(text)) n += e.value("event", "") == name;
    return n;
  }

  TempDir home_;
};

TEST_F(SyncCliTest, SampleCreateWritesTheSourceAndRefusesToOverwriteIt) {
  const std::string path = data_ / "s.duckdb";
  ChildResult r = warden({"sample", "create", path, "--scale", "0.005", "--seed", "7", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_GT(out["crsp.dsf"].get<int64_t>(), 0);
  {
    duckdb::Database db = duckdb::Database::open(path, {{"access_mode", "READ_ONLY"}});
    EXPECT_EQ(db.connect().query("SELECT count(*) FROM crsp.dsf").get_int64(0, 0),
              out["crsp.dsf"].get<int64_t>());
  }
  ChildResult again = warden({"sample", "create", path});
  EXPECT_EQ(again.exit_code, 64) << again.err;
  EXPECT_NE(again.err.find(path), std::string::npos) << again.err;
}

TEST_F(SyncCliTest, FullSyncWritesPartitionsEmitsJsonEventsAndVerifiesClean) {
  ChildResult r = warden({"sync", "full", "--dataset", "crsp", "--start-year", "2020", "--end-year",
                          "2022", "--source", source()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("crsp: full sync wrote 3 partition(s)"), std::string::npos) << r.out;
  // Not a terminal: one JSON event per committed partition, no progress bar.
  EXPECT_EQ(count_events(r.err, "sync.partition.committed"), 3u) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos);
  EXPECT_EQ(list_names(data_dir() + "/wrds/crsp/daily"),
            (std::vector<std::string>{"2020.parquet", "2021.parquet", "2022.parquet"}));
  EXPECT_EQ(rows_differing("SELECT permno, permco, date, prc, ret, retx, vol, shrout, cfacpr, "
                           "cfacshr FROM crsp.dsf WHERE year(date) BETWEEN 2020 AND 2022",
                           data_dir() + "/wrds/crsp/daily/*.parquet"),
            0);

  ChildResult verify = warden({"sync", "verify", "--dataset", "crsp", "--json"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  nlohmann::json reports = nlohmann::json::parse(verify.out);
  EXPECT_EQ(reports[0]["files_checked"], 3);
  EXPECT_EQ(reports[0]["clean"], true);

  ChildResult status = warden({"sync", "status", "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json s = nlohmann::json::parse(status.out);
  bool found = false;
  for (const auto& d : s["datasets"]) {
    if (d["dataset"] != "crsp") continue;
    found = true;
    EXPECT_EQ(d["manifest"]["files"], 3);
    EXPECT_EQ(d["manifest"]["first_year"], 2020);
    EXPECT_EQ(d["progress"]["status"], "completed");
    EXPECT_EQ(d["lock"]["verdict"], "free");
  }
  EXPECT_TRUE(found) << status.out;
}

TEST_F(SyncCliTest, ProgressBarOnATerminalInsteadOfPartitionEvents) {
  // script(1) gives the command a pseudo-terminal for stdout and stderr.
  const std::string command = warden_binary() + " --data-dir " + data_dir() +
                              " sync full --dataset fama_french --start-year 2021 --end-year "
                              "2022 --source " +
                              source();
  ChildResult r = Child::spawn({"/usr/bin/script", "-qec", command, "/dev/null"},
                               {{"HOME", home_.path()}, {"WARDEN_CONFIG", ""}})
                      .wait();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\rfama_french  [############............] 2021 (1/2)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("[########################] 2022 (2/2)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"event\":\"sync.partition.committed\""), std::string::npos) << r.out;
}

TEST_F(SyncCliTest, SyncExitsTwoWhenTheDatasetLockIsHeld) {
  AtomicLock held(data_dir() + "/locks", "crsp", std::chrono::seconds(1));
  ChildResult r = warden({"sync", "full", "--dataset", "crsp", "--start-year", "2020", "--end-year",
                          "2020", "--wait", "0", "--source", source()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(std::to_string(self_identity().pid)), std::string::npos)
      << "the message names the holder: " << r.err;
  EXPECT_FALSE(stat_path(data_dir() + "/manifests/crsp.json").has_value());
  ChildResult verify = warden({"sync", "verify", "--dataset", "crsp", "--wait", "0"});
  EXPECT_EQ(verify.exit_code, 2) << verify.err;
}

TEST_F(SyncCliTest, VerifyExitsThreeAndQuarantinesAMismatchedFile) {
  ASSERT_EQ(warden({"sync", "full", "--dataset", "fama_french", "--start-year", "2021",
                    "--end-year", "2022", "--source", source()})
                .exit_code,
            0);
  const std::string file = data_dir() + "/wrds/fama_french/factors_daily/2021.parquet";
  std::string bytes = slurp(file);
  bytes[bytes.size() / 2] ^= 0x55;
  spit(file, bytes);
  ChildResult r = warden({"sync", "verify", "--all"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("mismatch wrds/fama_french/factors_daily/2021.parquet"), std::string::npos)
      << r.out;
  EXPECT_EQ(count_events(r.err, "sync.checksum.mismatch"), 1u) << r.err;
  EXPECT_FALSE(stat_path(file).has_value()) << "moved to quarantine";
  // The fix the message names brings it back.
  ASSERT_EQ(warden({"sync", "full", "--dataset", "fama_french", "--start-year", "2021",
                    "--end-year", "2021", "--source", source()})
                .exit_code,
            0);
  EXPECT_EQ(warden({"sync", "verify", "--all"}).exit_code, 0);
}

TEST_F(SyncCliTest, SourceComesFromFlagThenEnvironmentThenConfigFile) {
  std::vector<std::string> args = {"sync",         "full", "--dataset",  "fama_french",
                                   "--start-year", "2022", "--end-year", "2022"};
  ChildResult none = warden(args);
  EXPECT_EQ(none.exit_code, 64) << none.err;
  EXPECT_NE(none.err.find("WARDEN_SOURCE"), std::string::npos) << none.err;

  EXPECT_EQ(warden(args, {{"WARDEN_SOURCE", source()}}).exit_code, 0);

  const std::string config = data_ / "warden.toml";
  spit(config, "source = \"" + source() + "\"\n");
  EXPECT_EQ(warden(args, {{"WARDEN_CONFIG", config}}).exit_code, 0);
  std::vector<std::string> with_flag = args;
  with_flag.insert(with_flag.end(), {"--config", config});
  EXPECT_EQ(warden(with_flag).exit_code, 0);
  // The flag wins over the environment, which wins over the config file.
  std::vector<std::string> bad_flag = with_flag;
  bad_flag.insert(bad_flag.end(), {"--source", "duckdb:" + (data_ / "missing.duckdb")});
  ChildResult flag_wins = warden(bad_flag, {{"WARDEN_SOURCE", source()}});
  EXPECT_EQ(flag_wins.exit_code, 1) << flag_wins.err;
  EXPECT_NE(flag_wins.err.find("missing.duckdb"), std::string::npos) << flag_wins.err;

  spit(config, "source = \"" + source() + "\"\nsorce = \"typo\"\n");
  ChildResult typo = warden(with_flag);
  EXPECT_EQ(typo.exit_code, 64) << typo.err;
  EXPECT_NE(typo.err.find("unknown key 'sorce'"), std::string::npos) << typo.err;
}

TEST_F(SyncCliTest, UnknownSourceSchemeIsAUsageErrorThatHidesTheRest) {
  ChildResult r =
      warden({"sync", "full", "--dataset", "crsp", "--source", "ftp://user:secret@host/x"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("duckdb:PATH"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("secret"), std::string::npos) << "never echo credentials: " << r.err;
}

TEST_F(SyncCliTest, DatasetsFileAddsAUserDataset) {
  const std::string file = data_ / "datasets.toml";
  spit(file,
       "[datasets.ff_small]\n"
       "query = \"SELECT date, mktrf, rf FROM ff.factors_daily\"\n"
       "date_column = \"date\"\n"
       "table = \"daily\"\n");
  ChildResult r = warden({"sync", "full", "--dataset", "ff_small", "--start-year", "2023",
                          "--datasets", file, "--source", source()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(list_names(data_dir() + "/wrds/ff_small/daily"),
            (std::vector<std::string>{"2023.parquet", "2024.parquet"}));
  ChildResult unknown = warden({"sync", "full", "--dataset", "nope", "--source", source()});
  EXPECT_EQ(unknown.exit_code, 64);
  EXPECT_NE(unknown.err.find("known datasets: compustat, crsp, fama_french"), std::string::npos)
      << unknown.err;
}

TEST_F(SyncCliTest, IncrementalAllRepullsOnlyTheCurrentYearWhenNothingWasRevised) {
  ASSERT_EQ(warden({"sync", "full", "--dataset", "fama_french", "--start-year", "2022", "--source",
                    source()})
                .exit_code,
            0);
  ChildResult r = warden({"sync", "incremental", "--all", "--json", "--source", source()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["dataset"], "fama_french");
  EXPECT_EQ(out["years_written"], nlohmann::json::array({2024}));
  EXPECT_EQ(out["years_skipped"], nlohmann::json::array({2022, 2023}));
}

TEST_F(SyncCliTest, QueryReadsEachDatasetThroughItsManifest) {
  ASSERT_EQ(
      warden({"sync", "full", "--dataset", "crsp", "--start-year", "2023", "--source", source()})
          .exit_code,
      0);
  // A stray file in the directory that no manifest names is not part of the dataset.
  spit(data_dir() + "/wrds/crsp/daily/1999.parquet", "not parquet");
  ChildResult r = warden({"sync", "query", "SELECT count(*) AS n FROM crsp"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "n\n" + std::to_string(source_count(2023, 2024)) + "\n");
}

TEST_F(SyncCliTest, DatasetNamesThatCouldLeaveTheDataDirectoryAreRefused) {
  for (const std::string name : {"../escape", "a/b", "..", "."}) {
    ChildResult r = warden({"sync", "verify", "--dataset", name});
    EXPECT_EQ(r.exit_code, 64) << name << ": " << r.err;
    ChildResult s = warden({"sync", "full", "--dataset", name, "--source", source()});
    EXPECT_EQ(s.exit_code, 64) << name << ": " << s.err;
  }
  EXPECT_FALSE(stat_path(data_ / "escape").has_value());
  EXPECT_FALSE(stat_path(data_dir() + "/wrds").has_value()) << "nothing written";
}

}  // namespace
}  // namespace warden::testing
