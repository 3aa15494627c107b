// warden sample create: WRDS-shaped, deterministic, and readable through DuckDbSource.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "helpers/test_support.h"
#include "warden/source.h"

namespace warden {
namespace {

TEST(SampleDatabase, HasWrdsColumnsDecimalsAndNulls) {
  testing::TempDir dir;
  const std::string path = dir / "sample.duckdb";
  SampleSummary summary = create_sample_database(path, {.scale = 0.02, .seed = 7});
  EXPECT_GT(summary.dsf_rows, 10000u);
  EXPECT_GT(summary.funda_rows, 100u);
  EXPECT_GT(summary.factors_rows, 6000u);
  DuckDbSource source(path);
  TableSchema dsf = source.schema("SELECT * FROM crsp.dsf");
  std::vector<std::string> names;
  for (const auto& c : dsf.columns) names.push_back(c.name + " " + c.type);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "permno INTEGER", "permco INTEGER", "date DATE", "prc DECIMAL(12,4)",
                       "ret DECIMAL(10,6)", "retx DECIMAL(10,6)", "vol DECIMAL(14,0)",
                       "shrout DECIMAL(12,0)", "cfacpr DECIMAL(12,6)", "cfacshr DECIMAL(12,6)"}));
  duckdb::Result r = source.query(
      "SELECT count(*) FILTER (ret IS NULL), count(*) FILTER (prc IS NULL), "
      "count(*) FILTER (prc < 0), min(year(date)), max(year(date)) FROM crsp.dsf");
  EXPECT_GT(r.get_int64(0, 0), 0);  // first-day returns are missing, as in CRSP
  EXPECT_GT(r.get_int64(1, 0), 0);  // and some prices
  EXPECT_GT(r.get_int64(2, 0), 0);  // negative prc: a bid/ask average
  EXPECT_EQ(r.get_int64(3, 0), 2000);
  EXPECT_EQ(r.get_int64(4, 0), 2024);
  TableSchema funda = source.schema("SELECT gvkey, datadate, fyear, \"at\", sale FROM comp.funda");
  EXPECT_EQ(funda.columns[0].type, "VARCHAR");
  EXPECT_EQ(funda.columns[3].type, "DECIMAL(18,3)");
  TableSchema ff = source.schema("SELECT * FROM ff.factors_daily");
  EXPECT_EQ(ff.columns.size(), 6u);
}

TEST(SampleDatabase, SameSeedGivesSameRowsAndAnotherSeedDiffers) {
  testing::TempDir dir;
  create_sample_database(dir / "a.duckdb", {.scale = 0.01, .seed = 1});
  create_sample_database(dir / "b.duckdb", {.scale = 0.01, .seed = 1});
  create_sample_database(dir / "c.duckdb", {.scale = 0.01, .seed = 2});
  const std::string q = "SELECT * FROM crsp.dsf";
  SourceFingerprint a = DuckDbSource(dir / "a.duckdb").fingerprint(q);
  SourceFingerprint b = DuckDbSource(dir / "b.duckdb").fingerprint(q);
  SourceFingerprint c = DuckDbSource(dir / "c.duckdb").fingerprint(q);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.aggregate, c.aggregate);
}

TEST(SampleDatabase, RefusesToOverwriteAnExistingFile) {
  testing::TempDir dir;
  testing::spit(dir / "x.duckdb", "keep me");
  EXPECT_THROW(create_sample_database(dir / "x.duckdb", {.scale = 0.01}), InvalidArgumentError);
  EXPECT_EQ(testing::slurp(dir / "x.duckdb"), "keep me");
}

TEST(DuckDbSourceTest, StreamsBatchesWithSchemaFirst) {
  testing::TempDir dir;
  create_sample_database(dir / "s.duckdb", {.scale = 0.01});
  DuckDbSource source(dir / "s.duckdb");
  auto stream = source.stream("SELECT date, mktrf FROM ff.factors_daily WHERE year(date) = 2001");
  ASSERT_EQ(stream->schema().columns.size(), 2u);
  EXPECT_EQ(stream->schema().columns[1].type, "DECIMAL(8,4)");
  uint64_t rows = 0;
  while (auto batch = stream->next()) rows += batch->size();
  EXPECT_EQ(rows,
            source.fingerprint("SELECT * FROM ff.factors_daily WHERE year(date) = 2001").rows);
  EXPECT_GT(rows, 250u);
}

TEST(DuckDbSourceTest, GenericStreamingExportEqualsDirectCopy) {
  testing::TempDir dir;
  create_sample_database(dir / "s.duckdb", {.scale = 0.01});
  const std::string q = "SELECT * FROM crsp.dsf WHERE year(date) = 2003";
  DuckDbSource direct(dir / "s.duckdb");
  DuckDbSource::Options options;
  options.direct_copy = false;
  DuckDbSource streamed(dir / "s.duckdb", options);
  ParquetExport a = direct.write_parquet(q, dir / "a.parquet", dir / "spill");
  ParquetExport b = streamed.write_parquet(q, dir / "b.parquet", dir / "spill");
  EXPECT_EQ(a.rows, b.rows);
  duckdb::Database db = duckdb::Database::in_memory();
  duckdb::Connection con = db.connect();
  duckdb::Result diff = con.query("SELECT count(*) FROM (SELECT * FROM '" + (dir / "a.parquet") +
                                  "' EXCEPT ALL SELECT * FROM '" + (dir / "b.parquet") + "')");
  EXPECT_EQ(diff.get_int64(0, 0), 0);
  EXPECT_EQ(con.query("SELECT count(*) FROM '" + (dir / "b.parquet") + "'").get_int64(0, 0),
            static_cast<int64_t>(a.rows));
}

TEST(DuckDbSourceTest, MissingFileAndUnknownSchemeNameTheFix) {
  try {
    DuckDbSource source("/nonexistent/x.duckdb");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("warden sample create"), std::string::npos);
  }
  EXPECT_THROW(open_source("ftp://x"), InvalidArgumentError);
}

// DuckDB's memory_limit as the given source sees it, in DuckDB's own text ("244.1 MiB").
std::string memory_limit_of(Source& source) {
  std::unique_ptr<BatchStream> rows = source.stream("SELECT current_setting('memory_limit')");
  std::optional<duckdb::DataChunk> chunk = rows->next();
  if (!chunk || chunk->size() != 1) return "";
  return std::string(chunk->string_value(0, 0));
}

// What DuckDB prints for a memory_limit of `size`.
std::string duckdb_text_for(const std::string& size) {
  duckdb::Database db = duckdb::Database::in_memory({{"memory_limit", size}});
  duckdb::Connection con = db.connect();
  return con.query("SELECT current_setting('memory_limit')").get_string(0, 0);
}

// A sync's memory must not grow with the source: DuckDB's default limit (80% of RAM) lets its
// cache of the source file's blocks grow with the file. open_source() sets a fixed limit, and
// WARDEN_DUCKDB_MEMORY_LIMIT overrides it.
TEST(DuckDbSourceTest, OpenSourceBoundsDuckDbMemoryAndTheEnvironmentOverridesIt) {
  testing::TempDir dir;
  create_sample_database(dir / "s.duckdb", {.scale = 0.01, .seed = 1});
  const std::string spec = "duckdb:" + (dir / "s.duckdb");
  ::unsetenv("WARDEN_DUCKDB_MEMORY_LIMIT");
  std::string fixed = memory_limit_of(*open_source(spec));
  EXPECT_EQ(fixed, duckdb_text_for(kDuckDbSourceMemoryLimit));
  DuckDbSource with_duckdb_defaults(dir / "s.duckdb");
  EXPECT_NE(fixed, memory_limit_of(with_duckdb_defaults));
  ::setenv("WARDEN_DUCKDB_MEMORY_LIMIT", "1GB", 1);
  std::string overridden = memory_limit_of(*open_source(dir / "s.duckdb"));
  ::unsetenv("WARDEN_DUCKDB_MEMORY_LIMIT");
  EXPECT_EQ(overridden, duckdb_text_for("1GB"));
  EXPECT_NE(overridden, fixed);
}

}  // namespace
}  // namespace warden
