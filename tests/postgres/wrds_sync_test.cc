// The sync engine against PostgreSQL shaped like WRDS: crsp.dsf and comp.funda are views
// (no ctid, no xmin), NUMERIC columns, NULLs, a table comment. The data is the embedded
// sample loaded into PostgreSQL, so every Parquet file can be compared row by row with the
// original through DuckDB.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "helpers/test_support.h"
#include "warden/duckdb.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/postgres_source.h"
#include "warden/sync.h"

namespace warden {
namespace {

using testing::PostgresDatabase;
using testing::TempDir;

// The sample at scale 0.01 (~25k crsp.dsf rows over 2000-2024), made once per program.
const std::string& sample_path() {
  static TempDir* dir = new TempDir();
  static std::string path = [] {
    std::string p = *dir / "sample.duckdb";
    create_sample_database(p, {.scale = 0.01, .seed = 7});
    return p;
  }();
  return path;
}

std::string postgres_type(const std::string& duckdb_type) {
  if (duckdb_type.rfind("DECIMAL", 0) == 0) return "numeric" + duckdb_type.substr(7);
  if (duckdb_type == "INTEGER") return "integer";
  if (duckdb_type == "BIGINT") return "bigint";
  if (duckdb_type == "SMALLINT") return "smallint";
  if (duckdb_type == "DOUBLE") return "double precision";
  if (duckdb_type == "DATE") return "date";
  if (duckdb_type == "VARCHAR") return "text";
  ADD_FAILURE() << "no PostgreSQL type for " << duckdb_type;
  return "text";
}

// Copies one sample table into PostgreSQL as `target` (DDL from DuckDB's DESCRIBE, rows
// through CSV and psql's \copy).
void load_table(const PostgresDatabase& db, const std::string& table, const std::string& target,
                const std::string& csv_dir) {
  duckdb::Database sample = duckdb::Database::open(sample_path(), {{"access_mode", "READ_ONLY"}});
  duckdb::Connection con = sample.connect();
  auto columns = con.query("DESCRIBE " + table);
  std::string ddl = "CREATE TABLE " + target + " (";
  for (size_t row = 0; row < columns.row_count(); ++row) {
    ddl += (row ? ", " : "") + duckdb::quote_identifier(columns.get_string(0, row)) + " " +
           postgres_type(columns.get_string(1, row));
  }
  db.exec(ddl + ")");
  std::string csv = csv_dir + "/" + table + ".csv";
  con.execute("COPY " + table + " TO " + duckdb::quote_literal(csv) + " (HEADER)");
  std::string command = "psql -q -v ON_ERROR_STOP=1 '" + db.conninfo() + "' -c \"\\copy " + target +
                        " FROM '" + csv + "' CSV HEADER\"";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

class WrdsSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db.exec("CREATE SCHEMA crsp; CREATE SCHEMA comp; CREATE SCHEMA ff;");
    load_table(db, "crsp.dsf", "crsp.dsf_v2", csv_dir.path());
    load_table(db, "comp.funda", "comp.funda_data", csv_dir.path());
    load_table(db, "ff.factors_daily", "ff.factors_daily", csv_dir.path());
    db.exec(R"sql(
      CREATE VIEW crsp.dsf AS SELECT * FROM crsp.dsf_v2;
      CREATE VIEW comp.funda AS SELECT * FROM comp.funda_data;
      COMMENT ON TABLE ff.factors_daily IS 'Fama-French daily factors with momentum';
      ANALYZE;)sql");
  }

  pg::Settings settings() const {
    pg::Settings s;
    s.conninfo = db.conninfo();
    s.retry_base_delay = std::chrono::milliseconds(20);
    return s;
  }
  SyncOptions options() const {
    SyncOptions o;
    o.data_dir = data.path();
    o.verify_threads = 2;
    return o;
  }
  static LockToken token(const std::string& dataset, uint64_t value = 1) {
    LockToken t;
    t.name = dataset;
    t.writer_id = "wrds-test";
    t.token = value;
    return t;
  }
  std::string files(const std::string& dataset, const std::string& table) const {
    return data.path() + "/wrds/" + dataset + "/" + table + "/*.parquet";
  }

  // Rows of `sample_sql` (over the original DuckDB sample) that the Parquet files lack, plus
  // the reverse; EXCEPT ALL counts a duplicated row too.
  static int64_t rows_differing(const std::string& sample_sql, const std::string& glob) {
    duckdb::Database duck = duckdb::Database::in_memory({{"threads", "2"}});
    duckdb::Connection con = duck.connect();
    con.execute("ATTACH " + duckdb::quote_literal(sample_path()) + " AS s (READ_ONLY)");
    con.execute("USE s");
    const std::string parquet = "read_parquet(" + duckdb::quote_literal(glob) + ")";
    return con.query("SELECT count(*) FROM (" + sample_sql + " EXCEPT ALL SELECT * FROM " +
                     parquet + ")")
               .get_int64(0, 0) +
           con.query("SELECT count(*) FROM (SELECT * FROM " + parquet + " EXCEPT ALL " +
                     sample_sql + ")")
               .get_int64(0, 0);
  }
  static int64_t count(const std::string& sql) {
    duckdb::Database duck = duckdb::Database::in_memory({});
    duckdb::Connection con = duck.connect();
    con.execute("ATTACH " + duckdb::quote_literal(sample_path()) + " AS s (READ_ONLY)");
    con.execute("USE s");
    return con.query(sql).get_int64(0, 0);
  }

  PostgresDatabase db;
  TempDir csv_dir;
  TempDir data;
};

TEST_F(WrdsSyncTest, EveryDatasetSyncsFromViewsAndMatchesTheSourceRowByRow) {
  PostgresSource source(settings());
  DatasetCatalog catalog = DatasetCatalog::builtin();
  SyncManager manager(options(), catalog, &source);
  for (const char* dataset : {"crsp", "compustat", "fama_french"}) {
    SyncResult result = manager.full_sync(dataset, 2000, 2024, token(dataset));
    EXPECT_EQ(result.years_written.size(), 25u) << dataset;
    EXPECT_TRUE(manager.verify_integrity(dataset, token(dataset)).clean()) << dataset;
  }
  const DatasetSpec& crsp = catalog.get("crsp");
  EXPECT_GT(count("SELECT count(*) FROM crsp.dsf"), 10000);
  EXPECT_EQ(rows_differing(crsp.query, files("crsp", crsp.table)), 0);
  const DatasetSpec& funda = catalog.get("compustat");
  EXPECT_EQ(rows_differing(funda.query, files("compustat", funda.table)), 0);
  const DatasetSpec& ff = catalog.get("fama_french");
  EXPECT_EQ(rows_differing(ff.query, files("fama_french", ff.table)), 0);
  // NUMERIC stayed exact: DECIMAL in Parquet, not DOUBLE.
  Manifest manifest = *load_manifest(DataLayout(data.path()), "crsp");
  bool saw_prc = false;
  for (const auto& column : manifest.schema.columns) {
    if (column.name == "prc") {
      saw_prc = true;
      EXPECT_EQ(column.type, "DECIMAL(12,4)");
    }
  }
  EXPECT_TRUE(saw_prc);
}

// Two COPYs at once (the default) write the same rows and fingerprints as one at a time.
TEST_F(WrdsSyncTest, TwoExportsAtOnceGiveWhatOneAtATimeGives) {
  std::map<int, std::pair<uint64_t, std::string>> by_year[2];
  for (int parallel : {1, 2}) {
    TempDir dir;
    pg::Settings s = settings();
    s.parallel_exports = parallel;
    PostgresSource source(s);
    EXPECT_EQ(source.concurrent_exports(), parallel);
    SyncOptions o = options();
    o.data_dir = dir.path();
    const DatasetCatalog catalog = DatasetCatalog::builtin();
    SyncManager manager(o, catalog, &source);
    SyncResult result = manager.full_sync("crsp", 2000, 2024, token("crsp"));
    EXPECT_EQ(result.years_written.size(), 25u);
    EXPECT_TRUE(manager.verify_integrity("crsp", token("crsp")).clean());
    const DatasetSpec& crsp = catalog.get("crsp");
    EXPECT_EQ(rows_differing(crsp.query, dir.path() + "/wrds/crsp/" + crsp.table + "/*.parquet"), 0)
        << parallel;
    const Manifest manifest = *load_manifest(DataLayout(dir.path()), "crsp");
    for (const auto& file : manifest.files) {
      by_year[parallel - 1][file.year] = {file.source_rows, file.source_fingerprint};
    }
  }
  EXPECT_EQ(by_year[0].size(), 25u);
  EXPECT_EQ(by_year[0], by_year[1]);
}

TEST_F(WrdsSyncTest, RevisedPastYearIsRepulledExactlyByIncrementalSync) {
  PostgresSource source(settings());
  DatasetCatalog catalog = DatasetCatalog::builtin();
  SyncOptions o = options();
  o.current_year = 2024;
  SyncManager manager(o, catalog, &source);
  manager.full_sync("crsp", 2000, 2024, token("crsp"));
  // WRDS revises history: a few 2005 returns change, nothing else does.
  db.exec(
      "UPDATE crsp.dsf_v2 SET ret = ret + 0.000001 WHERE date >= '2005-03-01' AND date < "
      "'2005-03-08' AND ret IS NOT NULL");
  SyncResult result = manager.incremental_sync("crsp", token("crsp"));
  EXPECT_EQ(result.years_written, (std::vector<int>{2005, 2024}))
      << "the revised year and the current year, and no other";
  // The Parquet now holds the revision: compare 2005 with PostgreSQL's values.
  pg::Connection pg_connection(settings());
  auto revised = pg_connection.query_text(
      "SELECT count(*), sum(ret)::text FROM crsp.dsf WHERE date >= '2005-01-01' AND date < "
      "'2006-01-01'");
  duckdb::Database duck = duckdb::Database::in_memory({});
  auto local =
      duck.connect().query("SELECT count(*), sum(ret)::VARCHAR FROM read_parquet(" +
                           duckdb::quote_literal(data / "wrds/crsp/daily/2005.parquet") + ")");
  EXPECT_EQ(std::to_string(local.get_int64(0, 0)), revised[0][0].value_or(""));
  EXPECT_EQ(local.get_string(1, 0), revised[0][1].value_or(""));
  EXPECT_TRUE(manager.verify_integrity("crsp", token("crsp")).clean());
}

TEST_F(WrdsSyncTest, ConnectionDroppedMidCopyIsRetriedAndTheResultIsExact) {
  // The server holds the first COPY of crsp.dsf at its 500th row (tens of KB already sent)
  // for as long as `hold_copy` has a row, and the killer waits for that hold, so the kill
  // always lands mid-stream however slow the machine: no race with the COPY finishing.
  db.exec(R"sql(
    CREATE TABLE hold_copy (held boolean);
    INSERT INTO hold_copy VALUES (true);
    CREATE SEQUENCE copy_rows;
    CREATE FUNCTION hold_mid_copy() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
      IF current_query() LIKE 'COPY (%' AND nextval('copy_rows') = 500 THEN
        WHILE EXISTS (SELECT 1 FROM hold_copy) LOOP PERFORM pg_sleep(0.01); END LOOP;
      END IF;
      RETURN true;
    END $$;
    CREATE OR REPLACE VIEW crsp.dsf AS SELECT * FROM crsp.dsf_v2 WHERE hold_mid_copy();)sql");
  ASSERT_GT(count("SELECT count(*) FROM crsp.dsf WHERE year(date) = 2010"), 500)
      << "the first year must reach the held row";
  PostgresSource source(settings());
  DatasetCatalog catalog = DatasetCatalog::builtin();
  SyncManager manager(options(), catalog, &source);
  std::atomic<bool> stop{false};
  std::atomic<int> terminated{0};
  std::thread killer([&] {
    pg::Connection watcher(settings());
    while (!stop && terminated == 0) {
      auto rows = watcher.query_text(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'active' AND "
          "wait_event = 'PgSleep' AND query LIKE 'COPY (%crsp.dsf%'");
      for (const auto& row : rows) terminated += row[0].value_or("") == "t";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    watcher.execute("DELETE FROM hold_copy");  // the retry runs through
  });
  start_event_capture();
  SyncResult result;
  try {
    result = manager.full_sync("crsp", 2010, 2012, token("crsp"));
  } catch (...) {
    stop = true;
    killer.join();
    throw;
  }
  auto events = stop_event_capture();
  stop = true;
  killer.join();
  ASSERT_EQ(terminated.load(), 1) << "the test must really have cut a COPY";
  int retries = 0;
  for (const auto& e : events) retries += e["event"] == "source.retry";
  EXPECT_GE(retries, 1);
  EXPECT_EQ(result.years_written, (std::vector<int>{2010, 2011, 2012}));
  EXPECT_EQ(rows_differing("SELECT * FROM (" + catalog.get("crsp").query +
                               ") WHERE year(date) BETWEEN 2010 AND 2012",
                           files("crsp", "daily")),
            0);
}

TEST_F(WrdsSyncTest, SigkillMidSyncThenResumeIsExact) {
  // A child syncs; after three committed years it arms a crash right after the next
  // partition's temp file is written: SIGKILL mid-partition, as an OOM kill would.
  testing::Child child = testing::Child::fork_function([&] {
    PostgresSource source(settings());
    SyncOptions o = options();
    o.on_progress = [](const PartitionProgress& progress) {
      if (progress.index == 3) failpoint_arm("sync.partition.after_temp_write", "crash");
    };
    SyncManager manager(o, DatasetCatalog::builtin(), &source);
    manager.full_sync("crsp", 2000, 2024, token("crsp"));
    return 0;
  });
  testing::ChildResult died = child.wait(std::chrono::seconds(120));
  ASSERT_EQ(died.signal, SIGKILL) << "the child must have died at the failpoint";
  Manifest before = *load_manifest(DataLayout(data.path()), "crsp");
  EXPECT_EQ(before.files.size(), 3u) << "three years were committed before the crash";

  PostgresSource source(settings());
  DatasetCatalog catalog = DatasetCatalog::builtin();
  SyncManager manager(options(), catalog, &source);
  SyncResult resumed = manager.full_sync("crsp", 2000, 2024, token("crsp", 2));
  EXPECT_TRUE(resumed.resumed);
  EXPECT_EQ(resumed.years_written.size(), 22u) << "only the years not yet committed";
  EXPECT_TRUE(manager.verify_integrity("crsp", token("crsp", 2)).clean());
  EXPECT_EQ(rows_differing(catalog.get("crsp").query, files("crsp", "daily")), 0);
}

TEST_F(WrdsSyncTest, QueryTheServerRejectsIsAClearErrorAndWritesNothing) {
  PostgresSource source(settings());
  DatasetCatalog catalog = DatasetCatalog::builtin();
  catalog.add({"broken", "data", "SELECT permno, no_such_column AS date FROM crsp.dsf", "date",
               2000, "a dataset whose query the server rejects"});
  SyncManager manager(options(), catalog, &source);
  try {
    manager.full_sync("broken", 2000, 2001, token("broken"));
    FAIL() << "expected the server's error";
  } catch (const pg::PostgresError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_column"), std::string::npos) << e.what();
    EXPECT_EQ(e.sqlstate(), "42703");
  }
  EXPECT_FALSE(load_manifest(DataLayout(data.path()), "broken").has_value());
  EXPECT_FALSE(stat_path(data / "wrds/broken/data").has_value() &&
               !testing::slurp(data / "wrds/broken/data/2000.parquet").empty());
}

}  // namespace
}  // namespace warden
