// PostgresSource against the real PostgreSQL: every supported type through COPY BINARY into
// Parquet, exact numerics, NULLs, infinities, a dropped connection mid-COPY, fingerprints.
#include "warden/postgres_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../../src/source/pg_copy_decoder.h"
#include "helpers/test_support.h"
#include "warden/duckdb.h"
#include "warden/events.h"
#include "warden/posix.h"

namespace warden {
namespace {

using testing::PostgresDatabase;
using testing::TempDir;

pg::Settings settings_for(const PostgresDatabase& db) {
  pg::Settings settings;
  settings.conninfo = db.conninfo();
  settings.retry_base_delay = std::chrono::milliseconds(20);
  return settings;
}

// Reads one value of a Parquet file as DuckDB's text.
std::string parquet_value(duckdb::Connection& duck, const std::string& path,
                          const std::string& expression, const std::string& where = "true") {
  auto result = duck.query("SELECT CAST(" + expression + " AS VARCHAR) FROM read_parquet(" +
                           duckdb::quote_literal(path) + ") WHERE " + where);
  if (result.row_count() != 1) return "<" + std::to_string(result.row_count()) + " rows>";
  if (result.is_null(0, 0)) return "NULL";
  return result.get_string(0, 0);
}

class PostgresSourceTest : public ::testing::Test {
 protected:
  PostgresDatabase db;
  TempDir dir;
  duckdb::Database duck_db = duckdb::Database::in_memory({});
  duckdb::Connection duck = duck_db.connect();
};

TEST_F(PostgresSourceTest, EveryTypeSurvivesExactly) {
  db.exec(R"sql(
    CREATE TABLE t (
      id int4, b bool, i2 int2, i8 int8, f4 float4, f8 float8,
      n numeric(12,4), n38 numeric(38,10), nfree numeric, txt text, vc varchar(10), ch char(3),
      d date, ts timestamp, tstz timestamptz, bin bytea, iv interval);
    INSERT INTO t VALUES
      (1, true, -32768, 9223372036854775807, 1.5, -2.25,
       -12345678.1234, 1234567890123456789012345678.0123456789, 3.14159265358979323846264338327950288,
       'héllo, "world"', 'abc', 'x', '1999-12-31', '2000-01-01 00:00:00.000001',
       '2024-06-30 12:34:56.789+00', '\x00ff10', '1 day 02:03:04'),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (3, false, 0, -1, 0, 0, 0, -0.0000000001, -100000000000000000000000000000000000000000.5,
       '', '', '', 'infinity', '-infinity', 'infinity', '', '-1 mons'),
      (4, true, 7, 8, 9, 10, 0.0001, 1, 'NaN', 'x', 'y', 'z', '2024-02-29', '1970-01-01', '1969-12-31 23:59:59+00', '\x', '0');
  )sql");
  PostgresSource source(settings_for(db));
  TableSchema schema = source.schema("SELECT * FROM t");
  ASSERT_EQ(schema.columns.size(), 17u);
  EXPECT_EQ(schema.columns[6].type, "DECIMAL(12,4)");
  EXPECT_EQ(schema.columns[7].type, "DECIMAL(38,10)");
  EXPECT_EQ(schema.columns[8].type, "VARCHAR") << "an unconstrained numeric stays exact text";
  EXPECT_EQ(schema.columns[16].type, "VARCHAR") << "interval has no decoder: cast to text";

  std::string path = dir / "t.parquet";
  auto exported = source.write_parquet("SELECT * FROM t ORDER BY id", path, dir / "spill");
  EXPECT_EQ(exported.rows, 4u);

  EXPECT_EQ(parquet_value(duck, path, "b", "id=1"), "true");
  EXPECT_EQ(parquet_value(duck, path, "i2", "id=1"), "-32768");
  EXPECT_EQ(parquet_value(duck, path, "i8", "id=1"), "9223372036854775807");
  EXPECT_EQ(parquet_value(duck, path, "f4", "id=1"), "1.5");
  EXPECT_EQ(parquet_value(duck, path, "f8", "id=1"), "-2.25");
  EXPECT_EQ(parquet_value(duck, path, "n", "id=1"), "-12345678.1234");
  EXPECT_EQ(parquet_value(duck, path, "n38", "id=1"), "1234567890123456789012345678.0123456789");
  EXPECT_EQ(parquet_value(duck, path, "nfree", "id=1"), "3.14159265358979323846264338327950288");
  EXPECT_EQ(parquet_value(duck, path, "txt", "id=1"), "héllo, \"world\"");
  EXPECT_EQ(parquet_value(duck, path, "ch", "id=1"), "x  ") << "char(n) keeps its padding";
  EXPECT_EQ(parquet_value(duck, path, "d", "id=1"), "1999-12-31");
  EXPECT_EQ(parquet_value(duck, path, "ts", "id=1"), "2000-01-01 00:00:00.000001");
  EXPECT_EQ(parquet_value(duck, path, "epoch_ms(tstz)", "id=1"), "1719750896789");
  EXPECT_EQ(parquet_value(duck, path, "hex(bin)", "id=1"), "00FF10");
  EXPECT_EQ(parquet_value(duck, path, "iv", "id=1"), "1 day 02:03:04");

  for (const char* column : {"b", "i2", "i8", "f4", "f8", "n", "n38", "nfree", "txt", "vc", "ch",
                             "d", "ts", "tstz", "bin", "iv"}) {
    EXPECT_EQ(parquet_value(duck, path, column, "id=2"), "NULL") << column;
  }

  EXPECT_EQ(parquet_value(duck, path, "n38", "id=3"), "-0.0000000001");
  EXPECT_EQ(parquet_value(duck, path, "nfree", "id=3"),
            "-100000000000000000000000000000000000000000.5");
  EXPECT_EQ(parquet_value(duck, path, "txt", "id=3"), "") << "empty is not NULL";
  EXPECT_EQ(parquet_value(duck, path, "d", "id=3"), "infinity");
  EXPECT_EQ(parquet_value(duck, path, "ts", "id=3"), "-infinity");
  EXPECT_EQ(parquet_value(duck, path, "nfree", "id=4"), "NaN");
  EXPECT_EQ(parquet_value(duck, path, "n", "id=4"), "0.0001");
  EXPECT_EQ(parquet_value(duck, path, "d", "id=4"), "2024-02-29");
  EXPECT_EQ(parquet_value(duck, path, "epoch_ms(tstz)", "id=4"), "-1000");
}

TEST_F(PostgresSourceTest, NumericTextIsExact) {
  db.exec("CREATE TABLE n (v numeric)");
  db.exec(
      "INSERT INTO n VALUES (0), (0.5), (-0.05), (10000), (123456789.000100), (1e-20), "
      "(99999999999999999999.99999999999999999999)");
  pg::Connection connection(settings_for(db));
  std::vector<std::string> expected;
  for (const auto& row : connection.query_text("SELECT v::text FROM n")) {
    expected.push_back(*row[0]);
  }
  PostgresSource source(settings_for(db));
  auto stream = source.stream("SELECT v FROM n");
  std::vector<std::string> got;
  while (auto chunk = stream->next()) {
    for (size_t r = 0; r < chunk->size(); ++r) got.emplace_back(chunk->string_value(0, r));
  }
  EXPECT_EQ(got, expected);
}

TEST_F(PostgresSourceTest, LargeStreamIsCompleteAndExact) {
  PostgresSource source(settings_for(db));
  std::string path = dir / "big.parquet";
  auto exported = source.write_parquet(
      "SELECT g AS id, (g % 1000)::numeric(10,2) / 7 AS v, 'row ' || g AS label "
      "FROM generate_series(1, 300000) g",
      path, dir / "spill");
  EXPECT_EQ(exported.rows, 300000u);
  EXPECT_EQ(parquet_value(duck, path, "count(*)"), "300000");
  EXPECT_EQ(parquet_value(duck, path, "sum(id)"), "45000150000");
  // numeric(10,2) / 7 has no declared scale, so it arrives as exact text: compare with the
  // server's own text for a few rows.
  pg::Connection connection(settings_for(db));
  for (int id : {1, 1234, 299999}) {
    auto expected = connection.query_text("SELECT ((" + std::to_string(id) +
                                          " % 1000)::numeric(10,2) / 7)::text");
    EXPECT_EQ(parquet_value(duck, path, "v", "id=" + std::to_string(id)), *expected[0][0]);
    EXPECT_EQ(parquet_value(duck, path, "label", "id=" + std::to_string(id)),
              "row " + std::to_string(id));
  }
}

TEST_F(PostgresSourceTest, DroppedConnectionMidCopyRetriesAndIsExact) {
  // The server holds the first COPY at row 500 (tens of KB already sent) for as long as
  // `hold_copy` has a row, and the killer cuts only a COPY of it held there, so the kill always
  // lands mid-stream however slow the machine (polling for an active COPY raced the COPY
  // finishing). Only row 500 pays for the check; later COPYs (the retry) pass it.
  db.exec(R"sql(
    CREATE TABLE big_rows AS
      SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 2000000) g;
    CREATE TABLE hold_copy (held boolean);
    INSERT INTO hold_copy VALUES (true);
    CREATE SEQUENCE copy_holds;
    CREATE FUNCTION hold_first_copy() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
      give_up timestamptz := clock_timestamp() + interval '5 minutes';
    BEGIN
      IF current_query() LIKE 'COPY (%' AND nextval('copy_holds') = 1 THEN
        WHILE EXISTS (SELECT 1 FROM hold_copy) AND clock_timestamp() < give_up LOOP
          PERFORM pg_sleep(0.01);
        END LOOP;
      END IF;
      RETURN true;
    END $$;
    CREATE VIEW big AS SELECT * FROM big_rows WHERE id <> 500 OR hold_first_copy();)sql");
  PostgresSource source(settings_for(db));
  std::atomic<bool> stop{false};
  std::atomic<int> terminated{0};
  std::thread killer([&] {
    pg::Connection watcher(settings_for(db));
    while (!stop && terminated == 0) {
      auto rows = watcher.query_text(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'active' "
          "AND wait_event = 'PgSleep' AND query LIKE 'COPY (%(SELECT * FROM big)%'");
      for (const auto& row : rows) terminated += row[0].value_or("") == "t";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    watcher.execute("DELETE FROM hold_copy");  // nothing stays held, whatever happened
  });
  start_event_capture();
  std::string path = dir / "big.parquet";
  ParquetExport exported;
  try {
    exported = source.write_parquet("SELECT * FROM big", path, dir / "spill");
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
  EXPECT_EQ(exported.rows, 2000000u);
  EXPECT_EQ(parquet_value(duck, path, "count(*)"), "2000000");
  EXPECT_EQ(parquet_value(duck, path, "count(DISTINCT id)"), "2000000");
  EXPECT_EQ(parquet_value(duck, path, "sum(id)"), "2000001000000");
}

TEST_F(PostgresSourceTest, FingerprintChangesWhenHistoryIsRevised) {
  db.exec("CREATE TABLE r AS SELECT g AS id, g * 1.5 AS ret FROM generate_series(1, 1000) g");
  PostgresSource source(settings_for(db));
  auto before = source.fingerprint("SELECT * FROM r");
  EXPECT_EQ(before.rows, 1000u);
  EXPECT_EQ(source.fingerprint("SELECT * FROM r"), before) << "deterministic";
  db.exec("UPDATE r SET ret = ret + 0.01 WHERE id = 500");
  auto after = source.fingerprint("SELECT * FROM r");
  EXPECT_EQ(after.rows, 1000u);
  EXPECT_NE(after.aggregate, before.aggregate);
}

TEST_F(PostgresSourceTest, FingerprintOfRowsTheServerCannotHashFallsBackToText) {
  // json has no hash function: the binary row hash fails (42883) and the text form is used.
  db.exec(
      "CREATE TABLE j AS SELECT g AS id, json_build_object('v', g) AS doc "
      "FROM generate_series(1, 100) g");
  PostgresSource source(settings_for(db));
  auto before = source.fingerprint("SELECT * FROM j");
  EXPECT_EQ(before.rows, 100u);
  EXPECT_EQ(before.aggregate.substr(0, 1), "t") << before.aggregate;
  db.exec("UPDATE j SET doc = json_build_object('v', -1) WHERE id = 50");
  auto after = source.fingerprint("SELECT * FROM j");
  EXPECT_NE(after.aggregate, before.aggregate);
  // A hashable table on the same server still gets the binary form... once the source has
  // fallen back it stays on text, so every fingerprint it reports is comparable.
  db.exec("CREATE TABLE n AS SELECT g AS id FROM generate_series(1, 10) g");
  EXPECT_EQ(source.fingerprint("SELECT * FROM n").aggregate.substr(0, 1), "t");
  PostgresSource fresh(settings_for(db));
  EXPECT_EQ(fresh.fingerprint("SELECT * FROM n").aggregate.substr(0, 1), "r");
}

TEST_F(PostgresSourceTest, RejectedQueryIsAClearErrorAndWritesNothing) {
  PostgresSource source(settings_for(db));
  std::string path = dir / "never.parquet";
  try {
    source.write_parquet("SELECT * FROM no_such_table", path, dir / "spill");
    FAIL() << "expected an error";
  } catch (const pg::PostgresError& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(stat_path(path).has_value());
}

TEST(CopyDecoderTest, TruncatedStreamIsNeverComplete) {
  pg_internal::PlannedColumn column;
  column.name = "x";
  column.kind = pg_internal::Kind::kInt32;
  column.duckdb_type = "INTEGER";
  pg_internal::CopyDecoder decoder({column});
  std::string data("PGCOPY\n\377\r\n\0", 11);
  data += std::string("\0\0\0\0\0\0\0\0", 8);
  data += std::string("\0\1\0\0\0\4\0\0\0\7", 10);  // one tuple: x = 7
  decoder.feed(data);
  try {
    decoder.finish();
    FAIL() << "a stream without its end marker must not look complete";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMalformed);
    EXPECT_NE(std::string(e.what()).find("end-of-data"), std::string::npos);
  }
}

TEST(CopyDecoderTest, AnyChunkingDecodesTheSame) {
  pg_internal::PlannedColumn column;
  column.name = "x";
  column.kind = pg_internal::Kind::kText;
  column.duckdb_type = "VARCHAR";
  std::string data("PGCOPY\n\377\r\n\0", 11);
  data += std::string("\0\0\0\0\0\0\0\0", 8);
  for (int i = 0; i < 5000; ++i) {
    std::string value = "v" + std::to_string(i);
    data += std::string("\0\1", 2);
    uint32_t length = static_cast<uint32_t>(value.size());
    data += static_cast<char>(length >> 24);
    data += static_cast<char>(length >> 16);
    data += static_cast<char>(length >> 8);
    data += static_cast<char>(length);
    data += value;
  }
  data += std::string("\xff\xff", 2);
  for (size_t step : {1ul, 3ul, 7ul, 4096ul, data.size()}) {
    pg_internal::CopyDecoder decoder({column});
    for (size_t pos = 0; pos < data.size(); pos += step) {
      decoder.feed(std::string_view(data).substr(pos, step));
    }
    std::vector<std::string> values;
    while (auto chunk = decoder.take()) {
      for (size_t r = 0; r < chunk->size(); ++r) values.emplace_back(chunk->string_value(0, r));
    }
    auto last = decoder.finish();
    if (last) {
      for (size_t r = 0; r < last->size(); ++r) values.emplace_back(last->string_value(0, r));
    }
    ASSERT_EQ(values.size(), 5000u) << "step " << step;
    EXPECT_EQ(values[0], "v0");
    EXPECT_EQ(values[4999], "v4999");
  }
}

}  // namespace
}  // namespace warden
