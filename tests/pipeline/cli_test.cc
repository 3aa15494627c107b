// `warden pipeline ingest|flush|trace|check-locks` through the real binary, on both backends:
// output, exit codes, and seed 002's LOCK left by a SIGKILLed batcher.
#include <signal.h>

#include <nlohmann/json.hpp>

#include "pipeline_fixture.h"

namespace warden::pipeline {
namespace {

using testing::ChildResult;
using testing::run_warden;
using Json = nlohmann::json;

using PipelineCliTest = PipelineTest;

std::map<std::string, std::string> env(const std::string& failpoints = "") {
  return {{"WARDEN_FAILPOINTS", failpoints}, {"WARDEN_STORE", ""}, {"WARDEN_DATA_DIR", ""}};
}

Json parse(const ChildResult& r) {
  Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
  return j;
}

TEST_P(PipelineCliTest, IngestBatchesAndTraceReportsTheSeedsExpectedCounts) {
  land_days(13, 10);
  ChildResult ingest =
      run_warden(cli({"ingest", dir_ / "landing", "--today", "2024-01-01", "--json"}), env());
  ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
  Json result = parse(ingest);
  EXPECT_EQ(result["registered"], 130);
  EXPECT_EQ(result["manifests"].size(), 13u);
  EXPECT_EQ(result["pending"], 0);

  ChildResult again = run_warden(cli({"ingest", dir_ / "landing", "--today", "2024-01-01"}), env());
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("registered 0 new file(s), 130 already known"), std::string::npos)
      << again.out;

  ChildResult trace = run_warden(cli({"trace", "--today", "2024-01-01"}), env());
  EXPECT_EQ(trace.exit_code, 0) << trace.out << trace.err;
  EXPECT_NE(trace.out.find("files:            130 (pending 0, manifested 130)"), std::string::npos)
      << trace.out;
  EXPECT_NE(trace.out.find("MANIFEST records: 13 (pending 13"), std::string::npos);
  EXPECT_NE(trace.out.find("problems: none"), std::string::npos);
  Json json = parse(run_warden(cli({"trace", "--json", "--today", "2024-01-01"}), env()));
  EXPECT_EQ(json["manifest_files"], 13);
  EXPECT_EQ(json["manifests"]["pending"], 13);
}

TEST_P(PipelineCliTest, TraceExitsThreeOnAProblemAndNamesTheFix) {
  land_days(1, 10);
  ASSERT_EQ(run_warden(cli({"ingest", dir_ / "landing", "--today", "2024-01-01"}), env()).exit_code,
            0);
  ASSERT_TRUE(remove_file(manifest_files().at(0)));
  ChildResult trace = run_warden(cli({"trace", "--today", "2024-01-01"}), env());
  EXPECT_EQ(trace.exit_code, 3) << trace.out << trace.err;
  EXPECT_NE(trace.out.find("[record_without_manifest_file]"), std::string::npos) << trace.out;
  EXPECT_NE(trace.out.find("fix: warden pipeline flush"), std::string::npos) << trace.out;
  ASSERT_EQ(run_warden(cli({"flush", "--today", "2024-01-01"}), env()).exit_code, 0);
  EXPECT_EQ(run_warden(cli({"trace", "--today", "2024-01-01"}), env()).exit_code, 0);
}

TEST_P(PipelineCliTest, TraceFileFollowsOneFile) {
  std::vector<std::string> keys = land_days(1, 10);
  ASSERT_EQ(run_warden(cli({"ingest", dir_ / "landing", "--today", "2024-01-01"}), env()).exit_code,
            0);
  ChildResult t = run_warden(cli({"trace", "--file", keys[3]}), env());
  EXPECT_EQ(t.exit_code, 0) << t.out << t.err;
  EXPECT_NE(t.out.find("record:   manifested, date 2024-01-01"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("lists it"), std::string::npos) << t.out;
  Json json = parse(run_warden(cli({"trace", "--file", keys[3], "--json"}), env()));
  EXPECT_EQ(json["manifest"]["status"], "pending");
  EXPECT_EQ(run_warden(cli({"trace", "--file", dir_ / "nope.ndjson"}), env()).exit_code, 3);
}

TEST_P(PipelineCliTest, AChangedFileExitsThreeAndAnUndatableOneIsAUsageError) {
  const std::string a = land("2024-01-01", "a.ndjson");
  ASSERT_EQ(run_warden(cli({"ingest", a}), env()).exit_code, 0);
  testing::spit(a, "{\"x\":2}\n");
  ChildResult changed = run_warden(cli({"ingest", a}), env());
  EXPECT_EQ(changed.exit_code, 3);
  EXPECT_NE(changed.err.find("already registered with sha256"), std::string::npos) << changed.err;
  make_directories(dir_ / "nodate");
  testing::spit(dir_ / "nodate/x.ndjson", "{}\n");
  EXPECT_EQ(run_warden(cli({"ingest", dir_ / "nodate"}), env()).exit_code, 64);
  ChildResult patterned = run_warden(cli({"ingest", dir_ / "nodate", "--date-field", "d"}), env());
  EXPECT_EQ(patterned.exit_code, 64);
  testing::spit(dir_ / "nodate/x.ndjson", "{\"d\":\"2024-02-03\"}\n");
  EXPECT_EQ(run_warden(cli({"ingest", dir_ / "nodate", "--date-field", "d"}), env()).exit_code, 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE date_prefix = '2024-02-03'"), 1);
}

TEST_P(PipelineCliTest, FlushAllTakesTodaysFilesBelowTheThreshold) {
  land_days(2, 3);
  ChildResult ingest = run_warden(
      cli({"ingest", dir_ / "landing", "--today", "2024-01-02", "--threshold", "10"}), env());
  ASSERT_EQ(ingest.exit_code, 0);
  EXPECT_NE(ingest.out.find("created 1 manifest(s)"), std::string::npos) << ingest.out;
  EXPECT_NE(ingest.out.find("3 file(s) pending"), std::string::npos);
  ChildResult flush = run_warden(cli({"flush", "--today", "2024-01-02"}), env());
  EXPECT_NE(flush.out.find("created 0 manifest(s)"), std::string::npos) << flush.out;
  Json all = parse(run_warden(cli({"flush", "--all", "--today", "2024-01-02", "--json"}), env()));
  EXPECT_EQ(all["manifests"].size(), 1u);
  EXPECT_EQ(all["pending"], 0);
}

// Seed 002's failure: a batcher dies holding the date's LOCK. check-locks shows it active,
// the date is blocked (exit 2) until the lease ends, then it shows expired; --clear-expired
// removes it; the next batch proceeds; nothing is lost or duplicated.
TEST_P(PipelineCliTest, ALockLeftByAKilledBatcherIsShownActiveThenExpiredAndCleared) {
  land_days(1, 20);
  const std::vector<std::string> today = {"--today", "2024-01-01"};
  ChildResult killed =
      run_warden(cli({"ingest", dir_ / "landing", "--today", "2024-01-01", "--lease", "15s"}),
                 env("pipeline.batch.after_manifest_write=crash"));
  ASSERT_FALSE(killed.exited);
  ASSERT_EQ(killed.signal, SIGKILL);

  ChildResult active = run_warden(cli({"check-locks"}), env());
  EXPECT_EQ(active.exit_code, 0);
  EXPECT_NE(active.out.find("pipeline.batch.2024-01-01"), std::string::npos) << active.out;
  EXPECT_NE(active.out.find("active"), std::string::npos) << active.out;
  EXPECT_NE(active.out.find("expires in"), std::string::npos) << active.out;

  ChildResult blocked = run_warden(cli({"flush", "--today", "2024-01-01"}), env());
  EXPECT_EQ(blocked.exit_code, 2) << blocked.out << blocked.err;
  EXPECT_NE(blocked.out.find("warden pipeline check-locks"), std::string::npos);
  EXPECT_NE(blocked.err.find("pipeline.batch.lock_held"), std::string::npos);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 0);

  ASSERT_TRUE(testing::wait_until(
      [&] {
        Json j = parse(run_warden(cli({"check-locks", "--json"}), env()));
        return j["leases"].size() == 1 && j["leases"][0]["state"] == "expired";
      },
      std::chrono::seconds(60)));
  ChildResult expired = run_warden(cli({"check-locks"}), env());
  EXPECT_NE(expired.out.find("EXPIRED"), std::string::npos) << expired.out;
  EXPECT_NE(expired.out.find("stuck for"), std::string::npos) << expired.out;
  EXPECT_EQ(run_warden(cli({"trace", "--today", "2024-01-01"}), env()).exit_code, 3);

  ChildResult cleared = run_warden(cli({"check-locks", "--clear-expired"}), env());
  EXPECT_EQ(cleared.exit_code, 0);
  EXPECT_NE(cleared.out.find("cleared 1 expired lease(s)"), std::string::npos) << cleared.out;
  EXPECT_EQ(parse(run_warden(cli({"check-locks", "--json"}), env()))["leases"].size(), 0u);

  ChildResult flush = run_warden(cli({"flush", "--today", "2024-01-01"}), env());
  EXPECT_EQ(flush.exit_code, 0) << flush.err;
  EXPECT_NE(flush.out.find("created 2 manifest(s)"), std::string::npos) << flush.out;
  expect_consistent();
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'manifested'"), 20);
  EXPECT_EQ(run_warden(cli({"trace", "--today", "2024-01-01"}), env()).exit_code, 0);
}

TEST_P(PipelineCliTest, AnExpiredLockIsTakenOverByTheNextBatchWithoutClearing) {
  land_days(1, 10);
  ChildResult killed =
      run_warden(cli({"ingest", dir_ / "landing", "--today", "2024-01-01", "--lease", "1s"}),
                 env("pipeline.batch.after_commit=crash"));
  ASSERT_FALSE(killed.exited);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        Json j = parse(run_warden(cli({"check-locks", "--json"}), env()));
        return j["leases"].size() == 1 && j["leases"][0]["state"] == "expired";
      },
      std::chrono::seconds(60)));
  land("2024-01-01", "z-late-0.ndjson");
  ChildResult later = run_warden(
      cli({"ingest", dir_ / "landing", "--today", "2024-01-01", "--threshold", "1"}), env());
  EXPECT_EQ(later.exit_code, 0) << later.err;
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 2);
  expect_consistent();
}

WARDEN_PIPELINE_BACKENDS(PipelineCliTest);

}  // namespace
}  // namespace warden::pipeline
