// Proves the prebuilt libduckdb.so from the npm registry links and has Parquet built in.
#include <duckdb.h>
#include <gtest/gtest.h>

#include "helpers/test_support.h"

namespace {

TEST(DuckDbSmoke, WritesAndReadsParquet) {
  warden::testing::TempDir dir;
  duckdb_database db;
  duckdb_connection con;
  ASSERT_EQ(duckdb_open(nullptr, &db), DuckDBSuccess);
  ASSERT_EQ(duckdb_connect(db, &con), DuckDBSuccess);
  std::string path = dir / "t.parquet";
  std::string copy = "COPY (SELECT range AS x FROM range(1000)) TO '" + path +
                     "' (FORMAT parquet, COMPRESSION zstd)";
  duckdb_result result;
  ASSERT_EQ(duckdb_query(con, copy.c_str(), &result), DuckDBSuccess)
      << duckdb_result_error(&result);
  duckdb_destroy_result(&result);
  std::string read = "SELECT count(*), sum(x) FROM read_parquet('" + path + "')";
  ASSERT_EQ(duckdb_query(con, read.c_str(), &result), DuckDBSuccess)
      << duckdb_result_error(&result);
  EXPECT_EQ(duckdb_value_int64(&result, 0, 0), 1000);
  EXPECT_EQ(duckdb_value_int64(&result, 1, 0), 499500);
  duckdb_destroy_result(&result);
  EXPECT_STREQ(duckdb_library_version(), "v1.4.4");
  duckdb_disconnect(&con);
  duckdb_close(&db);
}

}  // namespace
