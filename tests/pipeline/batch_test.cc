// The batcher: seed 002's expected counts, the threshold, the orphan flush, the lease, and
// crashes at each dangerous moment of a batch (a real SIGKILL of a child).
#include <signal.h>

#include <thread>

#include "pipeline_fixture.h"
#include "warden/events.h"
#include "warden/failpoint.h"

namespace warden::pipeline {
namespace {

using BatchTest = PipelineTest;
using testing::Child;
using testing::ChildResult;

TEST_P(BatchTest, OneHundredThirtyFilesOverThirteenDatesMakeThirteenManifests) {
  land_days(13, 10);
  Pipeline pipeline(options());
  IngestResult r = pipeline.ingest({dir_ / "landing"});
  EXPECT_EQ(r.registered, 130u);
  EXPECT_EQ(r.batch.manifests.size(), 13u);
  EXPECT_TRUE(r.batch.dates_lock_held.empty());
  EXPECT_EQ(r.batch.pending_left, 0u);
  EXPECT_EQ(manifest_files().size(), 13u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests WHERE status = 'pending'"), 13);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'manifested'"), 130);
  EXPECT_EQ(count("SELECT COUNT(DISTINCT date_prefix) FROM pipeline_manifests"), 13);
  expect_consistent();
  // Each manifest names its date's ten files, and its id is the deterministic one.
  for (const ManifestCreated& m : r.batch.manifests) {
    ManifestDocument doc = load_manifest_document(m.path);
    EXPECT_EQ(doc.files.size(), 10u);
    std::vector<std::string> keys;
    for (const ManifestEntry& e : doc.files) keys.push_back(e.key);
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
    EXPECT_EQ(doc.id, manifest_id_for(m.date, keys));
    EXPECT_EQ(m.path, layout().manifest_path(m.date, m.id));
  }
  // Landing them again changes nothing.
  IngestResult again = pipeline.ingest({dir_ / "landing"});
  EXPECT_EQ(again.already_known, 130u);
  EXPECT_TRUE(again.batch.manifests.empty());
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 13);
}

TEST_P(BatchTest, BelowTheThresholdNothingIsBatched) {
  land_days(3, 9);
  Pipeline pipeline(options());
  IngestResult r = pipeline.ingest({dir_ / "landing"});
  EXPECT_TRUE(r.batch.manifests.empty());
  EXPECT_EQ(r.batch.pending_left, 27u);
  EXPECT_TRUE(manifest_files().empty());
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 0);
  // The tenth file of one date makes exactly that date's manifest.
  land("2024-01-02", "f999.ndjson");
  IngestResult tenth = pipeline.ingest({dir_ / "landing"});
  ASSERT_EQ(tenth.batch.manifests.size(), 1u);
  EXPECT_EQ(tenth.batch.manifests[0].date, "2024-01-02");
  EXPECT_EQ(tenth.batch.pending_left, 18u);
}

TEST_P(BatchTest, ManifestsHoldThresholdFilesAndTheRemainderWaits) {
  land_days(1, 25);
  Pipeline pipeline(options());
  IngestResult r = pipeline.ingest({dir_ / "landing"});
  ASSERT_EQ(r.batch.manifests.size(), 2u);
  EXPECT_EQ(r.batch.manifests[0].file_count, 10u);
  EXPECT_EQ(r.batch.manifests[1].file_count, 10u);
  EXPECT_EQ(r.batch.pending_left, 5u);
  expect_consistent();
}

TEST_P(BatchTest, OlderDatesAreFlushedBelowTheThreshold) {
  land_days(3, 4);  // 2024-01-01 .. 03
  PipelineOptions o = options();
  o.today = "2024-01-03";
  Pipeline pipeline(o);
  IngestResult r = pipeline.ingest({dir_ / "landing"});
  ASSERT_EQ(r.batch.manifests.size(), 2u);
  EXPECT_EQ(r.batch.manifests[0].date, "2024-01-01");
  EXPECT_EQ(r.batch.manifests[1].date, "2024-01-02");
  EXPECT_EQ(r.batch.manifests[0].file_count, 4u);
  EXPECT_EQ(r.batch.pending_left, 4u);  // today's wait for the threshold
  // flush --all takes today's as well.
  BatchResult all = pipeline.batch(FlushMode::kAllDates);
  ASSERT_EQ(all.manifests.size(), 1u);
  EXPECT_EQ(all.manifests[0].date, "2024-01-03");
  EXPECT_EQ(all.pending_left, 0u);
  expect_consistent();
}

TEST_P(BatchTest, TodayDefaultsToTheDatabaseClockInUtc) {
  PipelineOptions o = options();
  o.today = "";
  Pipeline pipeline(o);
  const std::string today = pipeline.today();
  EXPECT_TRUE(is_date(today)) << today;
  EXPECT_EQ(today, format_utc(std::chrono::system_clock::time_point(
                                  std::chrono::milliseconds(pipeline.db().clock_ms())))
                       .substr(0, 10));
}

TEST_P(BatchTest, AHeldLeaseIsRetriedThenLeftToItsHolder) {
  land_days(1, 10);
  auto store = db();
  TableLock holder(store, batch_lease_name("2024-01-01"));
  ASSERT_TRUE(holder.try_acquire());
  PipelineOptions o = options();
  o.lease_retries = 2;
  Pipeline pipeline(o);
  start_event_capture();
  IngestResult r = pipeline.ingest({dir_ / "landing"});
  std::vector<nlohmann::json> events = stop_event_capture();
  EXPECT_EQ(r.batch.dates_lock_held, std::vector<std::string>{"2024-01-01"});
  EXPECT_TRUE(r.batch.manifests.empty());
  int held = 0;
  for (const auto& e : events) held += e["event"] == "pipeline.batch.lock_held";
  EXPECT_EQ(held, 3);  // the first attempt and two retries
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'"), 10);
}

TEST_P(BatchTest, ARetryStopsWhenTheHolderBatchedTheFilesMeanwhile) {
  land_days(1, 10);
  auto store = db();
  auto holder = std::make_shared<TableLock>(store, batch_lease_name("2024-01-01"));
  std::optional<LockToken> token = holder->try_acquire();
  ASSERT_TRUE(token);
  // The "holder" batches the files while our batcher sleeps between attempts: it marks them
  // manifested (as its commit would) and releases.
  PipelineOptions o = options();
  o.lease_retries = 3;
  o.retry_backoff = std::chrono::milliseconds(300);
  Pipeline pipeline(o);
  Pipeline(options(1000)).ingest({dir_ / "landing"});  // registered only (threshold 1000)
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    store->query("UPDATE pipeline_files SET status = 'manifested', manifest_id = 'x'");
    holder->release(*token);
  });
  BatchResult r = pipeline.batch();
  other.join();
  EXPECT_TRUE(r.dates_lock_held.empty());
  EXPECT_TRUE(r.manifests.empty());
}

// Runs the batcher in a child killed at `failpoint` (SIGKILL: nothing cleaned up).
ChildResult batch_killed_at(const PipelineOptions& o, const std::string& failpoint) {
  Child child = Child::fork_function([o, failpoint] {
    failpoint_arm(failpoint, "crash");
    Pipeline(o).batch();
    return 0;
  });
  return child.wait();
}

class BatchCrashTest : public PipelineTest {
 protected:
  // Frees the dead batcher's lease the way an operator would once it expired.
  void clear_dead_lease() {
    auto store = db();
    ASSERT_TRUE(testing::wait_until(
        [&] {
          for (const LockStatus& s : lease_status(*store)) {
            if (s.verdict != LockVerdict::kStaleExpired) return false;
          }
          return true;
        },
        std::chrono::seconds(30)));
    clear_expired_leases(*store);
  }
};

TEST_P(BatchCrashTest, KilledAfterTheManifestWriteTheRerunRebuildsTheSameManifest) {
  land_days(1, 20);
  Pipeline(options(1000)).ingest({dir_ / "landing"});
  PipelineOptions o = options();
  o.lease = std::chrono::milliseconds(500);
  ChildResult killed = batch_killed_at(o, "pipeline.batch.after_manifest_write");
  ASSERT_FALSE(killed.exited);
  EXPECT_EQ(killed.signal, SIGKILL);
  // The first manifest file is there, without a record; every file is still pending.
  ASSERT_EQ(manifest_files().size(), 1u);
  const std::string orphan = manifest_files()[0];
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'"), 20);
  clear_dead_lease();
  BatchResult rerun = Pipeline(options()).batch();
  ASSERT_EQ(rerun.manifests.size(), 2u);
  EXPECT_EQ(rerun.manifests[0].path, orphan);  // same id, rebuilt
  EXPECT_TRUE(rerun.orphan_files_removed.empty());
  EXPECT_EQ(manifest_files().size(), 2u);
  expect_consistent();
}

TEST_P(BatchCrashTest, KilledAfterTheCommitTheRerunAddsNoDuplicate) {
  land_days(1, 20);
  Pipeline(options(1000)).ingest({dir_ / "landing"});
  PipelineOptions o = options();
  o.lease = std::chrono::milliseconds(500);
  ChildResult killed = batch_killed_at(o, "pipeline.batch.after_commit");
  ASSERT_FALSE(killed.exited);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'"), 10);
  expect_consistent();
  clear_dead_lease();
  BatchResult rerun = Pipeline(options()).batch();
  ASSERT_EQ(rerun.manifests.size(), 1u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'"), 0);
  expect_consistent();
}

TEST_P(BatchCrashTest, AnOrphanManifestWhoseBatchChangedShapeIsRemoved) {
  land_days(1, 10);
  Pipeline(options(1000)).ingest({dir_ / "landing"});
  // The dead batcher's lease (300 s) outlives the ingest below, whose batcher must not
  // clean up before the rerun this test watches.
  ASSERT_FALSE(batch_killed_at(options(), "pipeline.batch.after_manifest_write").exited);
  ASSERT_EQ(manifest_files().size(), 1u);
  const std::string orphan = manifest_files()[0];
  // A file that sorts first lands meanwhile: the first ten are another set, another id.
  land("2024-01-01", "a-first.ndjson");
  EXPECT_EQ(Pipeline(options(1000)).ingest({dir_ / "landing"}).batch.dates_lock_held,
            std::vector<std::string>{"2024-01-01"});
  ASSERT_TRUE(force_unlock_lease(*db(), batch_lease_name("2024-01-01"), false).removed);
  BatchResult rerun = Pipeline(options()).batch();
  ASSERT_EQ(rerun.manifests.size(), 1u);
  EXPECT_NE(rerun.manifests[0].path, orphan);
  EXPECT_EQ(rerun.orphan_files_removed, std::vector<std::string>{orphan});
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'"), 1);
  expect_consistent();
}

TEST_P(BatchCrashTest, ACommitAfterTheLeaseExpiredIsRefusedAndLosesNothing) {
  land_days(1, 10);
  Pipeline(options(1000)).ingest({dir_ / "landing"});
  PipelineOptions o = options();
  o.lease = std::chrono::milliseconds(300);
  // The batcher stalls after writing its manifest for longer than its lease.
  failpoint_arm("pipeline.batch.after_manifest_write", "sleep:1000");
  BatchResult stalled = Pipeline(o).batch();
  failpoints_clear();
  EXPECT_TRUE(stalled.manifests.empty());
  EXPECT_EQ(stalled.dates_lock_held, std::vector<std::string>{"2024-01-01"});
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_manifests"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'"), 10);
  BatchResult rerun = Pipeline(options()).batch();
  EXPECT_EQ(rerun.manifests.size(), 1u);
  expect_consistent();
}

TEST_P(BatchCrashTest, AMissingManifestFileOfARecordIsRebuiltFromTheStore) {
  land_days(1, 10);
  Pipeline pipeline(options());
  IngestResult r = pipeline.ingest({dir_ / "landing"});
  ASSERT_EQ(r.batch.manifests.size(), 1u);
  const std::string path = r.batch.manifests[0].path;
  const std::string before = read_file(path);
  ASSERT_TRUE(remove_file(path));
  pipeline.batch();
  EXPECT_EQ(read_file(path), before);
  expect_consistent();
}

WARDEN_PIPELINE_BACKENDS(BatchTest);
WARDEN_PIPELINE_BACKENDS(BatchCrashTest);

}  // namespace
}  // namespace warden::pipeline
