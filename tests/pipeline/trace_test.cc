// trace finds each problem planted in a pipeline's state, says why and how to fix it, and
// finds nothing in a clean one; trace --file follows one file end to end.
#include <filesystem>

#include "pipeline_fixture.h"

namespace warden::pipeline {
namespace {

using testing::Child;

class TraceTest : public PipelineTest {
 protected:
  // 25 files of 2024-01-01 (today): two manifests, five pending; one manifest "converted"
  // the way the worker records it.
  void SetUp() override {
    PipelineTest::SetUp();
    land_days(1, 25);
    IngestResult r = Pipeline(options()).ingest({dir_ / "landing"});
    ASSERT_EQ(r.batch.manifests.size(), 2u);
    first_ = r.batch.manifests[0];
    second_ = r.batch.manifests[1];
    complete(first_);
  }
  void complete(const ManifestCreated& m) {
    const std::string output = layout().parquet_path(m.date, m.id);
    make_directories(parent_directory(output));
    testing::spit(output, "PAR1 not really parquet PAR1");
    db()->query(
        "UPDATE pipeline_manifests SET status = 'completed', output = $2, output_checksum = $3, "
        "output_rows = 20, attempts = 1 WHERE id = $1",
        {m.id, output, sha256_file(output)});
  }
  std::vector<std::string> kinds(const TraceReport& report) const {
    std::vector<std::string> k;
    for (const TraceFinding& f : report.findings) k.push_back(f.kind);
    return k;
  }
  const TraceFinding* find(const TraceReport& report, const std::string& kind) const {
    for (const TraceFinding& f : report.findings) {
      if (f.kind == kind) return &f;
    }
    return nullptr;
  }
  TraceReport trace() { return Pipeline(options()).trace(); }
  void exec(const std::string& sql, const sql::Params& params = {}) { db()->query(sql, params); }

  ManifestCreated first_, second_;
};

TEST_P(TraceTest, ACleanPipelineHasNoFindingsAndItsCountsCorrelate) {
  TraceReport r = trace();
  EXPECT_TRUE(r.clean()) << r.to_json().dump(2);
  EXPECT_EQ(r.files_by_status["pending"], 5);
  EXPECT_EQ(r.files_by_status["manifested"], 20);
  EXPECT_EQ(r.manifests_by_status["pending"], 1);
  EXPECT_EQ(r.manifests_by_status["completed"], 1);
  EXPECT_EQ(r.manifest_files, 2);
  EXPECT_EQ(r.parquet_files, 1);
  ASSERT_EQ(r.dates.size(), 1u);
  EXPECT_EQ(r.dates[0].manifests, 2);
  for (const Correlation& c : r.correlations) {
    if (c.name.rfind("completed MANIFEST records", 0) == 0) {
      EXPECT_FALSE(c.ok());  // one of two converted so far
    } else {
      EXPECT_TRUE(c.ok()) << c.name;
    }
  }
  nlohmann::json json = r.to_json();
  EXPECT_EQ(json["clean"], true);
  EXPECT_EQ(json["files"]["manifested"], 20);
}

TEST_P(TraceTest, AFileManifestedIntoNoRecordIsFound) {
  const std::string key =
      db()->query("SELECT key FROM pipeline_files WHERE status = 'pending' ORDER BY key LIMIT 1")
          .at(0)
          .at(0)
          .value();
  exec(
      "UPDATE pipeline_files SET status = 'manifested', manifest_id = '2024-01-01-gone' "
      "WHERE key = $1",
      {key});
  TraceReport r = trace();
  const TraceFinding* f = find(r, "file_without_manifest");
  ASSERT_NE(f, nullptr) << r.to_json().dump(2);
  EXPECT_EQ(f->subject, key);
  EXPECT_NE(f->detail.find("2024-01-01-gone"), std::string::npos);
  EXPECT_EQ(kinds(r).size(), 1u) << r.to_json().dump(2);
}

TEST_P(TraceTest, ARecordWithoutItsManifestFileIsFoundAndFlushRebuildsIt) {
  ASSERT_TRUE(remove_file(second_.path));
  TraceReport r = trace();
  const TraceFinding* f = find(r, "record_without_manifest_file");
  ASSERT_NE(f, nullptr) << r.to_json().dump(2);
  EXPECT_EQ(f->subject, second_.id);
  EXPECT_NE(f->fix.find("warden pipeline flush"), std::string::npos);
  Pipeline(options()).batch();
  EXPECT_TRUE(trace().clean());
}

TEST_P(TraceTest, AManifestFileWithoutRecordIsFoundAndFlushRemovesIt) {
  ManifestDocument doc = load_manifest_document(second_.path);
  doc.files.pop_back();
  std::vector<std::string> keys;
  for (const ManifestEntry& e : doc.files) keys.push_back(e.key);
  doc.id = manifest_id_for(doc.date, keys);
  const std::string orphan = layout().manifest_path(doc.date, doc.id);
  testing::spit(orphan, doc.to_json());
  TraceReport r = trace();
  const TraceFinding* f = find(r, "manifest_file_without_record");
  ASSERT_NE(f, nullptr) << r.to_json().dump(2);
  EXPECT_EQ(f->subject, orphan);
  BatchResult flushed = Pipeline(options()).batch();
  EXPECT_EQ(flushed.orphan_files_removed, std::vector<std::string>{orphan});
  EXPECT_TRUE(trace().clean());
}

TEST_P(TraceTest, AnOutputWithoutACompletedRecordIsFound) {
  const std::string output = layout().parquet_path(second_.date, second_.id);
  testing::spit(output, "PAR1");
  const std::string stray = layout().parquet_path("2024-01-01", "2024-01-01-0000000000000000");
  testing::spit(stray, "PAR1");
  TraceReport r = trace();
  std::vector<std::string> subjects;
  for (const TraceFinding& f : r.findings) {
    EXPECT_EQ(f.kind, "output_without_completed_record");
    subjects.push_back(f.subject);
  }
  std::sort(subjects.begin(), subjects.end());
  std::vector<std::string> expected = {output, stray};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(subjects, expected);
}

TEST_P(TraceTest, ACompletedRecordWhoseOutputIsMissingOrChangedIsFound) {
  complete(second_);
  const std::string first_output = layout().parquet_path(first_.date, first_.id);
  ASSERT_TRUE(remove_file(first_output));
  testing::spit(layout().parquet_path(second_.date, second_.id), "PAR1 changed PAR1");
  TraceReport r = trace();
  const TraceFinding* missing = find(r, "completed_output_missing");
  const TraceFinding* changed = find(r, "completed_output_checksum_mismatch");
  ASSERT_NE(missing, nullptr) << r.to_json().dump(2);
  ASSERT_NE(changed, nullptr) << r.to_json().dump(2);
  EXPECT_EQ(missing->subject, first_.id);
  EXPECT_EQ(changed->subject, second_.id);
  EXPECT_EQ(r.findings.size(), 2u);
}

TEST_P(TraceTest, PendingFilesAtTheThresholdWithNoBatchRunningAreFound) {
  land_days(1, 12, /*first_day=*/5);
  Pipeline(options(1000)).ingest({dir_ / "landing"});  // registered, never batched
  TraceReport r = trace();
  const TraceFinding* f = find(r, "pending_over_threshold");
  ASSERT_NE(f, nullptr) << r.to_json().dump(2);
  EXPECT_EQ(f->subject, "2024-01-05");
  EXPECT_NE(f->fix.find("check-locks"), std::string::npos);
  EXPECT_EQ(r.findings.size(), 1u);
}

TEST_P(TraceTest, PendingFilesOfAnOlderDateAreFound) {
  PipelineOptions later = options();
  later.today = "2024-01-02";
  TraceReport r = Pipeline(later).trace();
  const TraceFinding* f = find(r, "pending_older_date");
  ASSERT_NE(f, nullptr) << r.to_json().dump(2);
  EXPECT_EQ(f->subject, "2024-01-01");
  EXPECT_EQ(f->fix, "warden pipeline flush");
}

TEST_P(TraceTest, FailedManifestsAndExpiredClaimsAreFound) {
  exec(
      "UPDATE pipeline_manifests SET status = 'failed', error = 'malformed NDJSON in x', "
      "attempts = 3 WHERE id = $1",
      {second_.id});
  TraceReport failed = trace();
  const TraceFinding* f = find(failed, "manifest_failed");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->detail.find("malformed NDJSON in x"), std::string::npos);
  EXPECT_NE(f->fix.find("reprocess-failed"), std::string::npos);
  auto store = db();
  exec(std::string("UPDATE pipeline_manifests SET status = 'processing', claim_token = 7, "
                   "claim_writer = 'w', claim_expires_ms = ") +
           store->now_ms() + " - 5000 WHERE id = $1",
       {second_.id});
  TraceReport claimed = trace();
  const TraceFinding* claim = find(claimed, "claim_expired");
  ASSERT_NE(claim, nullptr);
  EXPECT_EQ(claim->subject, second_.id);
}

TEST_P(TraceTest, AnExpiredLeaseIsFound) {
  const std::string store = store_;
  const std::string state = layout().state_path();
  // A batcher that dies holding a short lease (no destructor runs: _exit).
  Child child = Child::fork_function([store, state] {
    LockOptions o;
    o.lease = std::chrono::milliseconds(200);
    o.refresh_interval = std::chrono::milliseconds(50);
    auto* lock = new TableLock(sql::open_store(store, state), "pipeline.batch.2024-01-01", o);
    return lock->try_acquire() ? 0 : 1;
  });
  ASSERT_EQ(child.wait().exit_code, 0);
  ASSERT_TRUE(testing::wait_until([&] { return find(trace(), "lease_expired") != nullptr; },
                                  std::chrono::seconds(20)));
  TraceReport r = trace();
  const TraceFinding* f = find(r, "lease_expired");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->subject, "pipeline.batch.2024-01-01");
  EXPECT_EQ(f->fix, "warden pipeline check-locks --clear-expired");
}

TEST_P(TraceTest, FollowingOneFileShowsEachStep) {
  ManifestDocument doc = load_manifest_document(first_.path);
  FileTrace t = Pipeline(options()).trace_file(doc.files[0].key);
  EXPECT_TRUE(t.registered);
  EXPECT_EQ(t.status, "manifested");
  EXPECT_EQ(t.manifest_id, first_.id);
  EXPECT_EQ(t.manifest_status, "completed");
  EXPECT_TRUE(t.manifest_file_exists);
  EXPECT_TRUE(t.listed_in_manifest_file);
  EXPECT_TRUE(t.output_exists);
  EXPECT_TRUE(t.problems.empty());
  ASSERT_TRUE(remove_file(layout().parquet_path(first_.date, first_.id)));
  FileTrace broken = Pipeline(options()).trace_file(doc.files[0].key);
  ASSERT_EQ(broken.problems.size(), 1u);
  EXPECT_NE(broken.problems[0].find("is missing"), std::string::npos);
  FileTrace unknown = Pipeline(options()).trace_file(dir_ / "nowhere.ndjson");
  EXPECT_FALSE(unknown.registered);
  EXPECT_EQ(unknown.to_json()["ok"], false);
}

WARDEN_PIPELINE_BACKENDS(TraceTest);

}  // namespace
}  // namespace warden::pipeline
