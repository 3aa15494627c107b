// Seed 001 cases 20-42, each under its own name (SyncManagerTest.CaseNN_...).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sync_fixture.h"
#include "warden/checksum.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/posix.h"

namespace warden::testing {
namespace {

class SyncManagerTest : public SyncFixture {
 protected:
  void TearDown() override { failpoints_clear(); }
};

bool has_event(const std::vector<nlohmann::json>& events, const std::string& name) {
  for (const auto& e : events) {
    if (e.value("event", "") == name) return true;
  }
  return false;
}

bool any_temp_file(const std::string& dir) {
  for (const std::string& name : list_names(dir)) {
    if (name.find(".tmp.") != std::string::npos) return true;
  }
  return false;
}

TEST_F(SyncManagerTest, Case20_AtomicWriteTempRenamedOnSuccess) {
  SyncResult r = manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  EXPECT_EQ(r.years_written, (std::vector<int>{2020, 2021}));
  EXPECT_EQ(list_names(crsp_dir()), (std::vector<std::string>{"2020.parquet", "2021.parquet"}));
  EXPECT_EQ(r.manifest.files.size(), 2u);
}

TEST_F(SyncManagerTest, Case21_AtomicWriteTempCleanedUpOnFailure) {
  failpoint_arm("sync.partition.after_temp_write", "error");
  EXPECT_THROW(manager()->full_sync("crsp", 2020, 2020, token_for("crsp")), Error);
  EXPECT_TRUE(list_names(crsp_dir()).empty()) << "no temp and no final file may remain";
  EXPECT_FALSE(load_manifest(DataLayout(data_.path()), "crsp").has_value());
  EXPECT_EQ(load_progress(DataLayout(data_.path()), "crsp")->status, "failed");
}

TEST_F(SyncManagerTest, Case22_ReadersNeverSeeTmpFilesDuringConcurrentRewrite) {
  manager()->full_sync("crsp", 2018, 2022, token_for("crsp"));
  const int64_t expected = source_count(2018, 2022);
  std::atomic<bool> stop{false}, failed{false};
  std::atomic<int> reads{0};
  std::string failure;
  std::thread reader([&] {
    duckdb::Database db = duckdb::Database::in_memory({{"threads", "1"}});
    duckdb::Connection con = db.connect();
    const std::string sql = "SELECT count(*) FROM read_parquet('" + crsp_dir() + "/*.parquet')";
    while (!stop && failure.empty()) {
      try {
        int64_t rows = con.query(sql).get_int64(0, 0);
        if (rows != expected) failure = "read " + std::to_string(rows) + " rows";
        for (const std::string& name : list_names(crsp_dir())) {
          if (name.size() > 8 && name.substr(name.size() - 8) == ".parquet" && name[0] == '.') {
            failure = "a hidden file matched *.parquet: " + name;
          }
        }
        ++reads;
      } catch (const std::exception& e) {
        failure = e.what();
      }
    }
    failed = !failure.empty();
  });
  // At least three rewrites, and on until a whole read began and ended while they ran (a
  // fixed count raced the reader's start on a loaded machine: it could read nothing).
  const int before = reads.load();
  for (int i = 0; i < 3 || (reads.load() < before + 2 && !failed && i < 200); ++i) {
    manager()->full_sync("crsp", 2018, 2022, token_for("crsp"));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(failure, "");
  EXPECT_GE(reads.load(), before + 2);
}

TEST_F(SyncManagerTest, Case23_ChecksumComputedAndStoredInManifest) {
  manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  auto manifest = load_manifest(DataLayout(data_.path()), "crsp");
  ASSERT_TRUE(manifest);
  for (const ManifestFile& f : manifest->files) {
    const std::string path = data_.path() + "/" + f.path;
    EXPECT_EQ(f.sha256, sha256_file(path));
    EXPECT_EQ(f.bytes, stat_path(path)->size);
    EXPECT_EQ(static_cast<int64_t>(f.rows), source_count(f.year, f.year));
  }
}

TEST_F(SyncManagerTest, Case24_ProgressCheckpointedAfterEachPartition) {
  SyncOptions o = options();
  std::vector<std::vector<int>> seen;
  o.on_progress = [&](const PartitionProgress& p) {
    auto progress = load_progress(DataLayout(data_.path()), "crsp");
    ASSERT_TRUE(progress);
    EXPECT_EQ(progress->status, "running");
    EXPECT_EQ(progress->years_completed.size(), p.index);
    seen.push_back(progress->years_completed);
  };
  manager(o)->full_sync("crsp", 2020, 2022, token_for("crsp"));
  EXPECT_EQ(seen, (std::vector<std::vector<int>>{{2020}, {2020, 2021}, {2020, 2021, 2022}}));
  auto done = load_progress(DataLayout(data_.path()), "crsp");
  EXPECT_EQ(done->status, "completed");
  EXPECT_TRUE(done->years_remaining.empty());
  EXPECT_EQ(static_cast<int64_t>(done->total_rows_synced), source_count(2020, 2022));
}

TEST_F(SyncManagerTest, Case25_ResumeFromCheckpointAfterCrash) {
  const std::string dir = data_.path();
  Child child = Child::fork_function([dir] {
    SyncOptions o;
    o.data_dir = dir;
    o.on_progress = [](const PartitionProgress& p) {
      if (p.index == 2) WARDEN_FAILPOINT("test.crash_after_second_partition");
    };
    failpoint_arm("test.crash_after_second_partition", "crash");
    DuckDbSource source(sample_path());
    SyncManager m(o, DatasetCatalog::builtin(), &source);
    m.full_sync("crsp", 2019, 2022, token_for("crsp"));
    return 0;
  });
  ChildResult crashed = child.wait();
  ASSERT_FALSE(crashed.exited);
  EXPECT_EQ(crashed.signal, 9);
  EXPECT_EQ(load_progress(DataLayout(dir), "crsp")->status, "running");

  SyncResult r = manager()->full_sync("crsp", 2019, 2022, token_for("crsp"));
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.years_skipped, (std::vector<int>{2019, 2020}));
  EXPECT_EQ(r.years_written, (std::vector<int>{2021, 2022}));
  EXPECT_EQ(rows_differing("SELECT * FROM crsp.dsf WHERE year(date) BETWEEN 2019 AND 2022",
                           crsp_dir() + "/*.parquet"),
            0);
}

TEST_F(SyncManagerTest, Case26_DiskSpaceCheckBlocksAt95Percent) {
  SyncOptions o = options();
  o.disk = DiskMonitor([](const std::string&) { return DiskUsage{1000, 40}; });  // 96% used
  start_event_capture();
  try {
    manager(o)->full_sync("crsp", 2020, 2021, token_for("crsp"));
    FAIL() << "expected a disk-full error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDiskFull);
    EXPECT_NE(std::string(e.what()).find("96.0% full"), std::string::npos) << e.what();
  }
  auto events = stop_event_capture();
  EXPECT_TRUE(has_event(events, "sync.disk.blocked"));
  EXPECT_TRUE(list_names(crsp_dir()).empty());
  EXPECT_FALSE(load_manifest(DataLayout(data_.path()), "crsp"));
}

TEST_F(SyncManagerTest, Case27_QuarantineOnChecksumMismatch) {
  manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  std::string bytes = slurp(crsp_file(2021));
  bytes[bytes.size() / 2] ^= 0x5a;
  spit(crsp_file(2021), bytes);
  start_event_capture();
  VerifyReport report = manager()->verify_integrity("crsp", token_for("crsp"));
  auto events = stop_event_capture();
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, VerifyFinding::Kind::kMismatch);
  EXPECT_EQ(report.findings[0].path, "wrds/crsp/daily/2021.parquet");
  EXPECT_FALSE(stat_path(crsp_file(2021))) << "a mismatched file must leave the dataset";
  const std::string quarantined = report.findings[0].quarantine_dir;
  EXPECT_EQ(slurp(quarantined + "/2021.parquet"), bytes);
  auto reason = nlohmann::json::parse(slurp(quarantined + "/reason.json"));
  EXPECT_EQ(reason["operation"], "crsp_verify");
  EXPECT_TRUE(has_event(events, "sync.checksum.mismatch"));
}

TEST_F(SyncManagerTest, Case28_ManifestUpdatedOnlyAfterFsync) {
  SyncOptions o = options();
  int checked = 0;
  // The gate runs after the temp file is fsynced and checksummed, before it is published:
  // at that moment neither the final file nor its manifest entry exists yet.
  o.validator = [&](const ManifestFile& file) -> std::optional<std::string> {
    auto manifest = load_manifest(DataLayout(data_.path()), "crsp");
    EXPECT_TRUE(!manifest || !manifest->find_year(file.year));
    EXPECT_FALSE(stat_path(data_.path() + "/" + file.path));
    ++checked;
    return std::nullopt;
  };
  manager(o)->full_sync("crsp", 2020, 2021, token_for("crsp"));
  EXPECT_EQ(checked, 2);
  // And a crash between publishing the file and committing leaves the manifest without it.
  const std::string dir = data_.path();
  Child child = Child::fork_function([dir] {
    failpoint_arm("sync.partition.after_rename", "crash");
    SyncOptions o2;
    o2.data_dir = dir;
    DuckDbSource source(sample_path());
    SyncManager(o2, DatasetCatalog::builtin(), &source)
        .full_sync("crsp", 2022, 2022, token_for("crsp"));
    return 0;
  });
  EXPECT_FALSE(child.wait().exited);
  auto manifest = load_manifest(DataLayout(dir), "crsp");
  EXPECT_FALSE(manifest->find_year(2022));
  EXPECT_EQ(manifest->files.size(), 2u);
}

TEST_F(SyncManagerTest, Case29_ManifestValidationGateBlocksUpdate) {
  SyncOptions o = options();
  o.validator = [](const ManifestFile& file) -> std::optional<std::string> {
    if (file.year == 2021) return "too few permnos";
    return std::nullopt;
  };
  try {
    manager(o)->full_sync("crsp", 2020, 2022, token_for("crsp"));
    FAIL() << "expected VerificationError";
  } catch (const VerificationError& e) {
    EXPECT_NE(std::string(e.what()).find("too few permnos"), std::string::npos);
  }
  auto manifest = load_manifest(DataLayout(data_.path()), "crsp");
  ASSERT_TRUE(manifest);
  EXPECT_EQ(manifest->files.size(), 1u);
  EXPECT_TRUE(manifest->find_year(2020));
  EXPECT_EQ(list_names(crsp_dir()), (std::vector<std::string>{"2020.parquet"}));
  auto quarantine = list_quarantine(DataLayout(data_.path()));
  ASSERT_EQ(quarantine.size(), 1u);
  EXPECT_NE(quarantine[0].reason.find("too few permnos"), std::string::npos);
}

TEST_F(SyncManagerTest, Case30_IncrementalSyncAppendsCorrectly) {
  manager()->full_sync("crsp", 2020, 2022, token_for("crsp"));
  SyncResult r = manager()->incremental_sync("crsp", token_for("crsp"));
  // 2020-2022 are unchanged at the source: skipped; 2023 is new; 2024 is the current year.
  EXPECT_EQ(r.years_written, (std::vector<int>{2023, 2024}));
  EXPECT_EQ(rows_differing("SELECT * FROM crsp.dsf WHERE year(date) BETWEEN 2020 AND 2024",
                           crsp_dir() + "/*.parquet"),
            0);
  EXPECT_EQ(r.manifest.files.size(), 5u);
}

TEST_F(SyncManagerTest, Case31_VerifyOnlyModeValidatesChecksumsWithoutSource) {
  manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  SyncManager offline(options(), DatasetCatalog::builtin(), nullptr);
  VerifyReport report = offline.verify_integrity("crsp", token_for("crsp"));
  EXPECT_TRUE(report.clean());
  EXPECT_EQ(report.files_checked, 2u);
  EXPECT_EQ(report.bytes_checked,
            stat_path(crsp_file(2020))->size + stat_path(crsp_file(2021))->size);
  EXPECT_THROW(offline.full_sync("crsp", 2020, 2020, token_for("crsp")), InvalidArgumentError);
}

TEST_F(SyncManagerTest, Case32_VerifyIntegrityDetectsMissingFiles) {
  manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  ASSERT_TRUE(remove_file(crsp_file(2020)));
  start_event_capture();
  VerifyReport report = manager()->verify_integrity("crsp", token_for("crsp"));
  auto events = stop_event_capture();
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, VerifyFinding::Kind::kMissing);
  EXPECT_EQ(report.findings[0].path, "wrds/crsp/daily/2020.parquet");
  EXPECT_TRUE(has_event(events, "sync.manifest.mismatch"));
}

TEST_F(SyncManagerTest, Case33_VerifyIntegrityDetectsChecksumMismatch) {
  manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  std::string bytes = slurp(crsp_file(2020));
  bytes[100] ^= 1;  // same size: only the checksum can tell
  spit(crsp_file(2020), bytes);
  VerifyReport report = manager()->verify_integrity("crsp", token_for("crsp"));
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, VerifyFinding::Kind::kMismatch);
  EXPECT_EQ(report.findings[0].detail.rfind("sha256 ", 0), 0u) << report.findings[0].detail;
}

TEST_F(SyncManagerTest, Case34_FullSyncCreatesExpectedPartitions) {
  SyncResult r = manager()->full_sync("crsp", 2020, 2022, token_for("crsp"));
  for (int year = 2020; year <= 2022; ++year) {
    EXPECT_EQ(query_int("SELECT count(*) FROM '" + crsp_file(year) + "'"),
              source_count(year, year));
    EXPECT_EQ(query_int("SELECT count(*) FROM '" + crsp_file(year) + "' WHERE year(date) <> " +
                        std::to_string(year)),
              0);
  }
  const ManifestFile* f = r.manifest.find_year(2021);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->path, "wrds/crsp/daily/2021.parquet");
  EXPECT_EQ(f->min_date.substr(0, 4), "2021");
  EXPECT_EQ(f->max_date.substr(0, 4), "2021");
  EXPECT_EQ(r.manifest.generation, 3u);  // one commit per partition
}

// Every export route writes zstd: several years in one partitioned COPY, one year alone, and
// the generic streaming export that sources without a COPY of their own inherit.
TEST_F(SyncManagerTest, EveryPartitionIsZstdParquet) {
  manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  manager()->full_sync("crsp", 2022, 2022, token_for("crsp"));
  DuckDbSource::Options streaming;
  streaming.direct_copy = false;
  DuckDbSource streaming_source(sample_path(), streaming);
  SyncManager(options(), DatasetCatalog::builtin(), &streaming_source)
      .full_sync("crsp", 2023, 2023, token_for("crsp"));
  for (int year = 2020; year <= 2023; ++year) {
    const std::string metadata = "parquet_metadata('" + crsp_file(year) + "')";
    EXPECT_GT(query_int("SELECT count(*) FROM " + metadata), 0) << year;
    EXPECT_EQ(query_int("SELECT count(*) FROM " + metadata + " WHERE compression <> 'ZSTD'"), 0)
        << year;
  }
}

TEST_F(SyncManagerTest, Case35_InterruptedSyncRollbackNoPartialDataVisible) {
  manager()->full_sync("crsp", 2020, 2020, token_for("crsp"));
  const std::string before = sha256_file(crsp_file(2020));
  const std::string dir = data_.path();
  Child child = Child::fork_function([dir] {
    failpoint_arm("sync.partition.after_temp_write", "crash");
    SyncOptions o;
    o.data_dir = dir;
    DuckDbSource source(sample_path());
    SyncManager(o, DatasetCatalog::builtin(), &source)
        .full_sync("crsp", 2020, 2021, token_for("crsp"));
    return 0;
  });
  EXPECT_FALSE(child.wait().exited);
  // The killed writer left only a hidden temp file; the old 2020 is intact, 2021 invisible.
  EXPECT_EQ(sha256_file(crsp_file(2020)), before);
  EXPECT_FALSE(stat_path(crsp_file(2021)));
  EXPECT_TRUE(any_temp_file(crsp_dir()));
  EXPECT_EQ(query_int("SELECT count(*) FROM '" + crsp_dir() + "/*.parquet'"),
            source_count(2020, 2020));
  // The next run removes the leftover and completes.
  manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  EXPECT_FALSE(any_temp_file(crsp_dir()));
  EXPECT_TRUE(manager()->verify_integrity("crsp", token_for("crsp")).clean());
}

// A network-like source (one year per export, as PostgresSource) whose connection drops
// once, while exporting one partition.
class FlakySource : public DuckDbSource {
 public:
  using DuckDbSource::DuckDbSource;
  bool exports_years_in_one_pass() const override { return false; }
  ParquetExport write_parquet(const std::string& query, const std::string& path,
                              const std::string& spill_dir) override {
    // The 2021 partition's lower bound (the 2020 query names 2021-01-01 as its upper bound).
    if (!failed_ && query.find(">= DATE '2021-01-01'") != std::string::npos) {
      failed_ = true;
      throw Error(ErrorCode::kUnavailable, "query: network timeout (simulated)");
    }
    return DuckDbSource::write_parquet(query, path, spill_dir);
  }

 private:
  bool failed_ = false;
};

TEST_F(SyncManagerTest, Case36_NetworkTimeoutResumeContinuesFromCheckpoint) {
  FlakySource flaky(sample_path());
  SyncManager m(options(), DatasetCatalog::builtin(), &flaky);
  try {
    m.full_sync("crsp", 2020, 2022, token_for("crsp"));
    FAIL() << "expected the simulated timeout";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
  auto progress = load_progress(DataLayout(data_.path()), "crsp");
  EXPECT_EQ(progress->status, "failed");
  EXPECT_EQ(progress->years_completed, (std::vector<int>{2020}));
  EXPECT_NE(progress->error.find("network timeout"), std::string::npos);
  SyncResult r = m.full_sync("crsp", 2020, 2022, token_for("crsp"));
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.years_written, (std::vector<int>{2021, 2022}));
}

// A source that allows two exports at once (as PostgresSource, one server backend each):
// the first export waits until a second one has started beside it, so the sync is seen to
// run them side by side. The exports themselves take turns on the one DuckDB connection.
class TwoAtOnceSource : public DuckDbSource {
 public:
  using DuckDbSource::DuckDbSource;
  bool exports_years_in_one_pass() const override { return false; }
  int concurrent_exports() const override { return 2; }
  ParquetExport write_parquet(const std::string& query, const std::string& path,
                              const std::string& spill_dir) override {
    {
      std::unique_lock<std::mutex> held(mutex_);
      most_at_once_ = std::max(most_at_once_, ++inside_);
      changed_.notify_all();
      changed_.wait_for(held, std::chrono::seconds(30), [&] { return most_at_once_ >= 2; });
    }
    struct Leave {
      TwoAtOnceSource& source;
      ~Leave() {
        std::lock_guard<std::mutex> held(source.mutex_);
        --source.inside_;
      }
    } leave{*this};
    std::lock_guard<std::mutex> one_at_a_time(export_mutex_);
    return DuckDbSource::write_parquet(query, path, spill_dir);
  }
  int most_at_once() {
    std::lock_guard<std::mutex> held(mutex_);
    return most_at_once_;
  }

 private:
  std::mutex mutex_, export_mutex_;
  std::condition_variable changed_;
  int inside_ = 0;
  int most_at_once_ = 0;
};

TEST_F(SyncManagerTest, ExportsAsManyPassesAtOnceAsTheSourceAllowsAndPublishesInOrder) {
  TwoAtOnceSource source(sample_path());
  std::vector<int> published;
  SyncOptions o = options();
  o.on_progress = [&](const PartitionProgress& p) { published.push_back(p.year); };
  SyncManager m(o, DatasetCatalog::builtin(), &source);
  SyncResult r = m.full_sync("crsp", 2019, 2023, token_for("crsp"));
  EXPECT_EQ(source.most_at_once(), 2);
  EXPECT_EQ(r.years_written, (std::vector<int>{2019, 2020, 2021, 2022, 2023}));
  EXPECT_EQ(published, r.years_written);
  EXPECT_TRUE(m.verify_integrity("crsp", token_for("crsp")).clean());
  EXPECT_EQ(rows_differing("SELECT * FROM crsp.dsf WHERE year(date) BETWEEN 2019 AND 2023",
                           crsp_dir() + "/*.parquet"),
            0);
}

TEST_F(SyncManagerTest, Case37_PartialYearRerunIdempotentNoDuplicates) {
  manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  const std::string sha = sha256_file(crsp_file(2021));
  SyncResult again = manager()->full_sync("crsp", 2021, 2021, token_for("crsp"));
  EXPECT_EQ(again.years_written, (std::vector<int>{2021}));
  EXPECT_EQ(sha256_file(crsp_file(2021)), sha) << "same source, same bytes";
  EXPECT_EQ(rows_differing("SELECT * FROM crsp.dsf WHERE year(date) BETWEEN 2020 AND 2021",
                           crsp_dir() + "/*.parquet"),
            0);
  EXPECT_EQ(query_int("SELECT count(*) - count(DISTINCT (permno, date)) FROM '" + crsp_dir() +
                      "/*.parquet'"),
            0);
  EXPECT_EQ(again.manifest.files.size(), 2u);
}

// Drift tests use their own small source database that they change between syncs.
class SchemaDriftTest : public SyncFixture {
 protected:
  void make_source(const std::string& create_sql) {
    source_.reset();
    remove_file(path_);
    duckdb::Database db = duckdb::Database::open(path_);
    db.connect().execute(create_sql);
  }
  void alter_source(const std::string& sql) {
    duckdb::Database db = duckdb::Database::open(path_);
    db.connect().execute(sql);
  }
  SyncResult sync() {
    DuckDbSource source(path_);
    DatasetCatalog catalog;
    catalog.add({"prices", "daily", "SELECT * FROM p", "date", 2020, ""});
    SyncManager m(options(), catalog, &source);
    return m.full_sync("prices", 2020, 2021, token_for("prices"));
  }
  std::string path_ = data_ / "drift.duckdb";
};

TEST_F(SchemaDriftTest, Case38_SchemaDriftNewColumnsAcceptedWithWarning) {
  make_source(
      "CREATE TABLE p AS SELECT DATE '2020-01-01' + i::INTEGER AS date, i::INTEGER AS a "
      "FROM range(700) t(i)");
  sync();
  alter_source("ALTER TABLE p ADD COLUMN b DOUBLE DEFAULT 1.5");
  start_event_capture();
  SyncResult r = sync();
  auto events = stop_event_capture();
  EXPECT_TRUE(has_event(events, "sync.schema.columns_added"));
  auto registered = SchemaRegistry(DataLayout(data_.path())).get_schema("prices");
  ASSERT_EQ(registered->columns.size(), 3u);
  EXPECT_EQ(registered->columns[2], (ColumnSchema{"b", "DOUBLE"}));
  EXPECT_EQ(r.manifest.schema, *registered);
}

TEST_F(SchemaDriftTest, Case39_SchemaDriftRemovedColumnsRejected) {
  make_source(
      "CREATE TABLE p AS SELECT DATE '2020-01-01' + i::INTEGER AS date, i::INTEGER AS a, "
      "i::INTEGER AS b FROM range(700) t(i)");
  SyncResult first = sync();
  alter_source("ALTER TABLE p DROP COLUMN b");
  try {
    sync();
    FAIL() << "expected SchemaError";
  } catch (const SchemaError& e) {
    EXPECT_NE(std::string(e.what()).find("removed: b INTEGER"), std::string::npos) << e.what();
  }
  auto manifest = load_manifest(DataLayout(data_.path()), "prices");
  EXPECT_EQ(manifest->generation, first.manifest.generation) << "nothing may be written";
  EXPECT_EQ(SchemaRegistry(DataLayout(data_.path())).get_schema("prices")->columns.size(), 3u);
}

TEST_F(SchemaDriftTest, Case40_SchemaDriftTypeChangesRejected) {
  make_source(
      "CREATE TABLE p AS SELECT DATE '2020-01-01' + i::INTEGER AS date, "
      "(i / 10)::DECIMAL(12,4) AS prc FROM range(700) t(i)");
  SyncResult first = sync();
  make_source(
      "CREATE TABLE p AS SELECT DATE '2020-01-01' + i::INTEGER AS date, "
      "(i / 10)::DOUBLE AS prc FROM range(700) t(i)");
  try {
    sync();
    FAIL() << "expected SchemaError";
  } catch (const SchemaError& e) {
    EXPECT_NE(std::string(e.what()).find("prc DECIMAL(12,4) -> DOUBLE"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(load_manifest(DataLayout(data_.path()), "prices")->generation,
            first.manifest.generation);
}

// The DuckDB source exports consecutive years in one partitioned COPY; a year without rows
// in the middle of such a pass still gets its (empty) file, and the years around it are
// exact, with fingerprints equal to the per-year ones an incremental sync compares.
TEST_F(SchemaDriftTest, YearWithoutRowsInsideAOnePassExportGetsAnEmptyFile) {
  make_source(
      "CREATE TABLE p AS SELECT DATE '2019-01-01' + i::INTEGER AS date, i::INTEGER AS a "
      "FROM range(1096) t(i) WHERE year(DATE '2019-01-01' + i::INTEGER) <> 2020");
  DuckDbSource source(path_);
  ASSERT_TRUE(source.exports_years_in_one_pass());
  DatasetCatalog catalog;
  catalog.add({"prices", "daily", "SELECT * FROM p", "date", 2019, ""});
  SyncManager m(options(), catalog, &source);
  SyncResult r = m.full_sync("prices", 2019, 2021, token_for("prices"));
  EXPECT_EQ(r.years_written, (std::vector<int>{2019, 2020, 2021}));
  ASSERT_EQ(r.manifest.files.size(), 3u);
  EXPECT_EQ(r.manifest.find_year(2019)->rows, 365u);
  EXPECT_EQ(r.manifest.find_year(2020)->rows, 0u);
  EXPECT_EQ(r.manifest.find_year(2021)->rows, 365u);
  const std::string dir = data_ / "wrds/prices/daily";
  EXPECT_EQ(list_names(dir),
            (std::vector<std::string>{"2019.parquet", "2020.parquet", "2021.parquet"}));
  for (int year : {2019, 2020, 2021}) {
    const ManifestFile* f = r.manifest.find_year(year);
    SourceFingerprint per_year = source.fingerprint(catalog.get("prices").partition_query(year));
    EXPECT_EQ(f->source_rows, per_year.rows) << year;
    EXPECT_EQ(f->source_fingerprint, per_year.aggregate) << year;
  }
  EXPECT_TRUE(m.verify_integrity("prices", token_for("prices")).clean());
  SyncResult again = m.incremental_sync("prices", token_for("prices"));
  EXPECT_EQ(again.years_written, (std::vector<int>{2021})) << "only the current year";
}

TEST_F(SyncManagerTest, Case41_SyncManifestSerializationRoundtrip) {
  SyncResult r = manager()->full_sync("crsp", 2020, 2021, token_for("crsp", 7));
  const Manifest& m = r.manifest;
  Manifest back = Manifest::parse(m.to_json(), "roundtrip");
  EXPECT_EQ(back.to_json(), m.to_json());
  EXPECT_EQ(back.files, m.files);
  EXPECT_EQ(back.schema, m.schema);
  EXPECT_EQ(back.fencing_token, 7u);
  EXPECT_EQ(back.generation, m.generation);
  EXPECT_EQ(*load_manifest(DataLayout(data_.path()), "crsp"), back);
}

TEST_F(SyncManagerTest, Case42_SyncManifestValidationAgainstSchemaRegistry) {
  SyncResult r = manager()->full_sync("crsp", 2020, 2021, token_for("crsp"));
  auto registered = SchemaRegistry(DataLayout(data_.path())).get_schema("crsp");
  ASSERT_TRUE(registered);
  EXPECT_EQ(r.manifest.schema.hash(), registered->hash());
  for (const ManifestFile& f : r.manifest.files) EXPECT_EQ(f.schema_hash, registered->hash());
  // A manifest whose schema does not match its own hash is refused, not trusted.
  nlohmann::json tampered = nlohmann::json::parse(r.manifest.to_json());
  tampered["schema"]["columns"][0]["type"] = "VARCHAR";
  EXPECT_THROW(Manifest::parse(tampered.dump(), "tampered.json"), MalformedLockFileError);
}

TEST_F(SyncManagerTest, DurationSloBreachIsReported) {
  SyncOptions o = options();
  o.full_slo = std::chrono::seconds(-1);
  start_event_capture();
  manager(o)->full_sync("crsp", 2020, 2020, token_for("crsp"));
  EXPECT_TRUE(has_event(stop_event_capture(), "sync.duration.slo_breach"));
}

}  // namespace
}  // namespace warden::testing
