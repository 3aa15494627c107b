// The RAII DuckDB layer: queries, typed access, errors naming the SQL, streaming, appender,
// prepared statements, and the single-writer rule surfacing as a clear error.
#include <gtest/gtest.h>

#include "helpers/test_support.h"
#include "warden/duckdb.h"

namespace warden::duckdb {
namespace {

TEST(DuckDbWrapper, QueryReturnsTypedValuesAndColumns) {
  Database db = Database::in_memory();
  Connection con = db.connect();
  Result r = con.query(
      "SELECT 42::BIGINT AS a, 1.25::DECIMAL(12,4) AS b, 'x' AS c, NULL::DOUBLE AS d, "
      "DATE '2024-02-29' AS e");
  ASSERT_EQ(r.row_count(), 1u);
  auto columns = r.columns();
  ASSERT_EQ(columns.size(), 5u);
  EXPECT_EQ(columns[0].name, "a");
  EXPECT_EQ(columns[0].type_name, "BIGINT");
  EXPECT_EQ(columns[1].type_name, "DECIMAL(12,4)");
  EXPECT_EQ(columns[2].type_name, "VARCHAR");
  EXPECT_EQ(columns[4].type, DUCKDB_TYPE_DATE);
  EXPECT_EQ(r.get_int64(0, 0), 42);
  EXPECT_EQ(r.get_string(1, 0), "1.2500");
  EXPECT_EQ(r.get_string(2, 0), "x");
  EXPECT_TRUE(r.is_null(3, 0));
  EXPECT_FALSE(r.is_null(0, 0));
  EXPECT_EQ(r.get_string(4, 0), "2024-02-29");
}

TEST(DuckDbWrapper, FailedQueryThrowsErrorNamingTheSql) {
  Database db = Database::in_memory();
  Connection con = db.connect();
  try {
    con.query("SELECT * FROM no_such_table");
    FAIL() << "expected DuckDbError";
  } catch (const DuckDbError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("SELECT * FROM no_such_table"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos);
    EXPECT_EQ(e.sql(), "SELECT * FROM no_such_table");
  }
  // The connection is still usable after a failed query.
  EXPECT_EQ(con.query("SELECT 1").get_int64(0, 0), 1);
}

TEST(DuckDbWrapper, StreamingResultYieldsEveryRowInChunks) {
  Database db = Database::in_memory();
  Connection con = db.connect();
  Result r = con.query_streaming("SELECT range AS x FROM range(10000)");
  ASSERT_EQ(r.columns().at(0).type, DUCKDB_TYPE_BIGINT);
  int64_t rows = 0, sum = 0;
  size_t chunks = 0;
  while (auto chunk = r.next_chunk()) {
    ++chunks;
    for (size_t i = 0; i < chunk->size(); ++i) {
      sum += chunk->value<int64_t>(0, i);
      ++rows;
    }
  }
  EXPECT_EQ(rows, 10000);
  EXPECT_EQ(sum, 49995000);
  EXPECT_GT(chunks, 1u);
}

TEST(DuckDbWrapper, AppenderAndPreparedStatementRoundTrip) {
  Database db = Database::in_memory();
  Connection con = db.connect();
  con.execute("CREATE TABLE t (id BIGINT, name VARCHAR, score DOUBLE)");
  {
    Appender a = con.appender("", "t");
    a.append(int64_t{1}).append(std::string_view("one")).append(1.5);
    a.end_row();
    a.append(int64_t{2}).append_null().append(2.5);
    a.end_row();
    a.close();
  }
  PreparedStatement p = con.prepare("SELECT count(*), sum(score) FROM t WHERE id >= $1");
  p.bind(1, int64_t{2});
  Result r = p.execute();
  EXPECT_EQ(r.get_int64(0, 0), 1);
  EXPECT_DOUBLE_EQ(r.get_double(1, 0), 2.5);
  Result nulls = con.query("SELECT count(*) FROM t WHERE name IS NULL");
  EXPECT_EQ(nulls.get_int64(0, 0), 1);
}

TEST(DuckDbWrapper, ReadOnlyOpenOfAFileWorksAndWritesAreRefused) {
  testing::TempDir dir;
  const std::string path = dir / "db.duckdb";
  {
    Database db = Database::open(path);
    db.connect().execute("CREATE TABLE t AS SELECT 7 AS x");
  }
  Database ro = Database::open(path, {{"access_mode", "READ_ONLY"}});
  Connection con = ro.connect();
  EXPECT_EQ(con.query("SELECT x FROM t").get_int64(0, 0), 7);
  EXPECT_THROW(con.execute("INSERT INTO t VALUES (8)"), DuckDbError);
}

TEST(DuckDbWrapper, OpenWithUnknownSettingNamesIt) {
  try {
    Database::in_memory({{"no_such_setting", "1"}});
    FAIL() << "expected DuckDbError";
  } catch (const DuckDbError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("no_such_setting"), std::string::npos);
  }
}

TEST(DuckDbWrapper, OpenOfAnUnreadableFileThrowsNamingTheFile) {
  testing::TempDir dir;
  const std::string path = dir / "garbage.duckdb";
  testing::spit(path, std::string(8192, 'x'));
  try {
    Database::open(path, {{"access_mode", "READ_ONLY"}});
    FAIL() << "expected DuckDbError";
  } catch (const DuckDbError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(DuckDbWrapper, QuotingEscapesEmbeddedQuotes) {
  EXPECT_EQ(quote_identifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(quote_literal("it's"), "'it''s'");
  Database db = Database::in_memory();
  Connection con = db.connect();
  EXPECT_EQ(con.query("SELECT " + quote_literal("it's")).get_string(0, 0), "it's");
  EXPECT_EQ(date_to_string(0), "1970-01-01");
  EXPECT_EQ(date_to_string(19782), "2024-02-29");
}

}  // namespace
}  // namespace warden::duckdb
