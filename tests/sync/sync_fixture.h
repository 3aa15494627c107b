// Shared by the sync tests: one small sample source per test program, a fresh data directory
// per test, and helpers that look at what a sync wrote through DuckDB.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "helpers/test_support.h"
#include "warden/duckdb.h"
#include "warden/source.h"
#include "warden/sync.h"

namespace warden::testing {

// The sample at scale 0.01 (~25k crsp.dsf rows), created once per test program.
inline const std::string& sample_path() {
  static TempDir* dir = new TempDir();  // lives until the program exits
  static std::string path = [] {
    std::string p = *dir / "sample.duckdb";
    create_sample_database(p, {.scale = 0.01, .seed = 42});
    return p;
  }();
  return path;
}

inline LockToken token_for(const std::string& dataset, uint64_t token = 1) {
  LockToken t;
  t.name = dataset;
  t.writer_id = "test-writer";
  t.token = token;
  return t;
}

// Visible and hidden files in a directory (names only), sorted.
inline std::vector<std::string> list_names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// One integer from a query over Parquet files or the sample, through a private DuckDB.
inline int64_t query_int(const std::string& sql) {
  duckdb::Database db = duckdb::Database::in_memory({{"threads", "2"}});
  duckdb::Connection con = db.connect();
  return con.query(sql).get_int64(0, 0);
}

// Rows in the sample's query that the Parquet files do not hold, and the reverse (EXCEPT ALL
// counts duplicates, so a duplicated row shows up too).
inline int64_t rows_differing(const std::string& source_sql, const std::string& parquet_glob) {
  duckdb::Database db = duckdb::Database::in_memory({{"threads", "2"}});
  duckdb::Connection con = db.connect();
  con.execute("ATTACH " + duckdb::quote_literal(sample_path()) + " AS s (READ_ONLY)");
  con.execute("USE s");
  const std::string files = "read_parquet(" + duckdb::quote_literal(parquet_glob) + ")";
  int64_t a =
      con.query("SELECT count(*) FROM (" + source_sql + " EXCEPT ALL SELECT * FROM " + files + ")")
          .get_int64(0, 0);
  int64_t b =
      con.query("SELECT count(*) FROM (SELECT * FROM " + files + " EXCEPT ALL " + source_sql + ")")
          .get_int64(0, 0);
  return a + b;
}

class SyncFixture : public ::testing::Test {
 protected:
  SyncOptions options() const {
    SyncOptions o;
    o.data_dir = data_.path();
    o.verify_threads = 2;
    return o;
  }
  std::unique_ptr<SyncManager> manager(SyncOptions o) {
    if (!source_) source_ = std::make_unique<DuckDbSource>(sample_path());
    return std::make_unique<SyncManager>(std::move(o), DatasetCatalog::builtin(), source_.get());
  }
  std::unique_ptr<SyncManager> manager() { return manager(options()); }
  std::string crsp_dir() const { return data_.path() + "/wrds/crsp/daily"; }
  std::string crsp_file(int year) const {
    return crsp_dir() + "/" + std::to_string(year) + ".parquet";
  }
  static int64_t source_count(int first, int last) {
    duckdb::Database db = duckdb::Database::open(sample_path(), {{"access_mode", "READ_ONLY"}});
    return db.connect()
        .query("SELECT count(*) FROM crsp.dsf WHERE year(date) BETWEEN " + std::to_string(first) +
               " AND " + std::to_string(last))
        .get_int64(0, 0);
  }

  TempDir data_;
  std::unique_ptr<DuckDbSource> source_;
};

}  // namespace warden::testing
