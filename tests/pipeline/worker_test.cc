// PipelineWorker and `warden pipeline work|reprocess-failed` on both backends: seed 002's
// counts end to end, failures retried then failed with a clear error, reprocessing after a
// fix, claims fenced by their token and kept alive by the heartbeat.
#include <future>
#include <nlohmann/json.hpp>

#include "warden/events.h"
#include "warden/failpoint.h"
#include "worker_test_fixture.h"

namespace warden::pipeline {
namespace {

using testing::run_warden;

class WorkerEndToEnd : public WorkerTest {};
WARDEN_PIPELINE_BACKENDS(WorkerEndToEnd);

// Seed 002: "For 130 input files with threshold of 10 files/manifest: 13 MANIFEST records,
// 13 Parquet outputs", every input row present exactly once.
TEST_P(WorkerEndToEnd, SeedCountsThirteenCompletedManifestsAndOutputsEveryRowOnce) {
  std::vector<std::string> keys;
  for (int day = 1; day <= 3; ++day) {
    const int files = day == 2 ? 50 : 40;
    for (int i = 0; i < files; ++i) keys.push_back(land("2024-01-0" + std::to_string(day), i));
  }
  ASSERT_EQ(keys.size(), 130u);
  testing::ChildResult ingest =
      run_warden(cli({"ingest", dir_ / "landing", "--threshold", "10", "--today", "2024-01-01"}));
  ASSERT_EQ(ingest.exit_code, 0) << ingest.err;

  testing::ChildResult work = run_warden(cli({"work", "--once", "--json"}));
  ASSERT_EQ(work.exit_code, 0) << work.err;
  nlohmann::json out = nlohmann::json::parse(work.out);
  EXPECT_EQ(out["results"].size(), 13u);
  EXPECT_EQ(out["counts"], nlohmann::json({{"completed", 13}}));

  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 13);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests WHERE status = 'completed'"), 13);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'manifested'"), 130);
  EXPECT_EQ(parquet_dir_files().size(), 13u);
  expect_every_row_exactly_once(keys);

  // A second run finds nothing to do and rewrites nothing.
  testing::ChildResult again = run_warden(cli({"work", "--once"}));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "no manifest to work on\n");
}

TEST_P(WorkerEndToEnd, MalformedFileFailsItsManifestAfterMaxAttemptsAndReprocessFixesIt) {
  std::vector<std::string> keys = land_days({30});
  const std::string bad = keys[14];  // in the second manifest (keys are sorted)
  const std::string good_text = testing::slurp(bad);
  testing::spit(bad, "{\"event_id\":\"x\"}\n{\"event_id\": \n{\"event_id\":\"y\"}\n");
  ingest();
  Pipeline pipeline(options());
  PipelineWorker worker(pipeline, worker_options(3));
  std::vector<WorkResult> results = worker.work_until_idle();

  std::map<std::string, int> by_status;
  std::string failed_id, failed_error;
  for (const WorkResult& r : results) {
    ++by_status[r.status];
    if (r.status == "failed") failed_id = r.id, failed_error = r.error;
  }
  // Two attempts back to pending, the third fails; the other two manifests complete.
  EXPECT_EQ(by_status,
            (std::map<std::string, int>{{"completed", 2}, {"pending", 2}, {"failed", 1}}));
  ASSERT_FALSE(failed_id.empty());
  sql::Row record = db()->query(
                            "SELECT status, attempts, error, output FROM pipeline_manifests"
                            " WHERE id = $1",
                            {failed_id})
                        .at(0);
  EXPECT_EQ(record[0].value_or(""), "failed");
  EXPECT_EQ(record[1].value_or(""), "3");
  EXPECT_FALSE(record[3].has_value());
  // The file is named; DuckDB's reason is kept; the SQL is not.
  const std::string error = record[2].value_or("");
  EXPECT_EQ(error, failed_error);
  EXPECT_NE(
      error.find("malformed NDJSON in " + bad + ": Invalid Input Error: Malformed JSON in file"),
      std::string::npos)
      << error;
  EXPECT_EQ(error.find("LINE 1"), std::string::npos) << error;
  EXPECT_FALSE(stat_path(layout().parquet_path("2024-01-01", failed_id)));
  EXPECT_EQ(parquet_dir_files().size(), 2u);

  // The operator fixes the file: work alone does not retry a failed manifest...
  testing::spit(bad, good_text);
  EXPECT_TRUE(worker.work_until_idle().empty());
  // ...reprocess-failed re-records the fixed file and puts the manifest back to pending.
  testing::ChildResult reprocess = run_warden(cli({"reprocess-failed", "--json"}));
  ASSERT_EQ(reprocess.exit_code, 0) << reprocess.err;
  nlohmann::json out = nlohmann::json::parse(reprocess.out);
  ASSERT_EQ(out["reprocessed"].size(), 1u);
  EXPECT_EQ(out["reprocessed"][0]["id"], failed_id);
  EXPECT_EQ(out["reprocessed"][0]["changed_files"], nlohmann::json::array({bad}));
  EXPECT_EQ(status_of(failed_id), "pending");
  EXPECT_EQ(count("SELECT attempts FROM pipeline_manifests WHERE id = $1", {failed_id}), 0);
  EXPECT_EQ(db()->query("SELECT checksum FROM pipeline_files WHERE key = $1", {bad}).at(0).at(0),
            std::optional<std::string>(sha256_file(bad)));

  testing::ChildResult work = run_warden(cli({"work", "--once"}));
  ASSERT_EQ(work.exit_code, 0) << work.err;
  EXPECT_EQ(work.out.rfind("completed  " + failed_id, 0), 0u) << work.out;
  expect_every_row_exactly_once(keys);
}

TEST_P(WorkerEndToEnd, ReprocessFailedRefusesAnUnknownOrUnfailedManifest) {
  land_and_ingest({10});
  testing::ChildResult unknown = run_warden(cli({"reprocess-failed", "--id", "2024-01-01-nope"}));
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("reprocess-failed 2024-01-01-nope: no such manifest record"),
            std::string::npos)
      << unknown.err;
  const std::string id = manifest_ids().at(0);
  testing::ChildResult pending = run_warden(cli({"reprocess-failed", "--id", id}));
  EXPECT_EQ(pending.exit_code, 64);
  EXPECT_NE(pending.err.find("the manifest is pending, not failed"), std::string::npos)
      << pending.err;
}

TEST_P(WorkerEndToEnd, InputChangedAfterRegistrationFailsWithTheFileNamed) {
  std::vector<std::string> keys = land_and_ingest({10});
  testing::spit(keys[3], testing::slurp(keys[3]) + "{\"event_id\":\"late\"}\n");
  Pipeline pipeline(options());
  PipelineWorker worker(pipeline, worker_options(1));
  std::vector<WorkResult> results = worker.work_until_idle();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, "failed");
  EXPECT_NE(results[0].error.find("verify inputs of manifest " + results[0].id + ": " + keys[3] +
                                  " has "),
            std::string::npos)
      << results[0].error;
  EXPECT_NE(results[0].error.find("reprocess-failed --id " + results[0].id), std::string::npos);
  EXPECT_TRUE(parquet_dir_files().empty());

  // Accepting the new content: reprocess re-records it, and the work completes.
  std::vector<Reprocessed> reprocessed = worker.reprocess_failed(results[0].id);
  ASSERT_EQ(reprocessed.size(), 1u);
  EXPECT_EQ(reprocessed[0].changed_files, std::vector<std::string>{keys[3]});
  EXPECT_EQ(load_manifest_document(reprocessed[0].manifest_path).files[3].sha256,
            sha256_file(keys[3]));
  ASSERT_EQ(worker.work_until_idle().at(0).status, "completed");
  expect_every_row_exactly_once(keys);
}

TEST_P(WorkerEndToEnd, CompletionOfATakenOverClaimIsRefusedAndTheNewClaimantCompletes) {
  std::vector<std::string> keys = land_and_ingest({10});
  Pipeline first_pipeline(options());
  Pipeline second_pipeline(options());
  WorkerOptions short_lease = worker_options();
  short_lease.claim_lease = std::chrono::milliseconds(300);
  PipelineWorker first(first_pipeline, short_lease);
  PipelineWorker second(second_pipeline, short_lease);

  std::optional<ManifestClaim> old_claim = first.claim();
  ASSERT_TRUE(old_claim);
  EXPECT_FALSE(second.claim()) << "a live claim was taken";
  // No heartbeat runs outside process(): the claim expires and is taken over.
  std::optional<ManifestClaim> new_claim;
  ASSERT_TRUE(testing::wait_until([&] { return (new_claim = second.claim()).has_value(); },
                                  std::chrono::seconds(10)));
  EXPECT_EQ(new_claim->id, old_claim->id);
  EXPECT_GT(new_claim->token, old_claim->token);
  EXPECT_EQ(new_claim->took_over_from, first.writer_id());
  EXPECT_EQ(new_claim->attempts, 2);

  WorkResult stale = first.process(*old_claim);
  EXPECT_EQ(stale.status, "claim_lost") << stale.error;
  EXPECT_TRUE(parquet_dir_files().empty()) << "the fenced-off worker published";
  sql::Row row = db()->query("SELECT status, claim_token FROM pipeline_manifests").at(0);
  EXPECT_EQ(row[0].value_or(""), "processing");
  EXPECT_EQ(row[1].value_or(""), std::to_string(new_claim->token));

  EXPECT_EQ(second.process(*new_claim).status, "completed");
  expect_every_row_exactly_once(keys);
}

TEST_P(WorkerEndToEnd, HeartbeatKeepsALongConversionsClaimFromBeingTakenOver) {
  std::vector<std::string> keys = land_and_ingest({10});
  Pipeline pipeline(options());
  WorkerOptions short_lease = worker_options();
  short_lease.claim_lease = std::chrono::milliseconds(400);
  PipelineWorker worker(pipeline, short_lease);
  std::optional<ManifestClaim> claim = worker.claim();
  ASSERT_TRUE(claim);
  // The conversion holds its durable temp output for 3 lease lengths before publishing.
  failpoint_arm("pipeline.convert.after_temp_write", "sleep:1200");
  std::future<WorkResult> result =
      std::async(std::launch::async, [&] { return worker.process(*claim); });
  Pipeline other_pipeline(options());
  PipelineWorker other(other_pipeline, short_lease);
  int attempts_to_steal = 0;
  while (result.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    EXPECT_FALSE(other.claim()) << "claim taken over while its heartbeat ran";
    ++attempts_to_steal;
  }
  failpoints_clear();
  EXPECT_GT(attempts_to_steal, 10);
  EXPECT_EQ(result.get().status, "completed");
  expect_every_row_exactly_once(keys);
}

TEST_P(WorkerEndToEnd, ExpiredClaimOfAManifestAtMaxAttemptsIsFailedNotClaimedAgain) {
  land_and_ingest({10});
  Pipeline pipeline(options());
  WorkerOptions options = worker_options(1);
  options.claim_lease = std::chrono::milliseconds(200);
  PipelineWorker worker(pipeline, options);
  std::optional<ManifestClaim> claim = worker.claim();  // and then "dies": never processed
  ASSERT_TRUE(claim);
  start_event_capture();
  // Until the claim expires nothing is claimable; once it has, claim() fails the record
  // instead of claiming it a second time.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        EXPECT_FALSE(worker.claim());
        return status_of(claim->id) == "failed";
      },
      std::chrono::seconds(10)));
  std::vector<nlohmann::json> events = stop_event_capture();
  EXPECT_TRUE(std::any_of(events.begin(), events.end(), [](const nlohmann::json& e) {
    return e["event"] == "pipeline.manifest.failed";
  }));
  const std::string error =
      db()->query("SELECT error FROM pipeline_manifests").at(0).at(0).value_or("");
  EXPECT_NE(error.find("claimed 1 times and every claimant stopped before finishing (the last, " +
                       worker.writer_id() + ", let its claim expire)"),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace warden::pipeline
