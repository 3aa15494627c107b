// convert_ndjson_to_parquet: every record lands exactly once, the publication is atomic, and a
// bad input is named with DuckDB's reason.
#include <gtest/gtest.h>

#include <filesystem>

#include "helpers/test_support.h"
#include "warden/checksum.h"
#include "warden/failpoint.h"
#include "warden/pipeline_worker.h"
#include "warden/posix.h"

namespace warden::pipeline {
namespace {

using testing::spit;
using testing::TempDir;

class ConvertTest : public ::testing::Test {
 protected:
  ConvertTest() : database_(duckdb::Database::in_memory({{"threads", "2"}})) {}

  int64_t count(const std::string& sql) { return connect().query(sql).get_int64(0, 0); }
  duckdb::Connection connect() { return database_.connect(); }
  std::vector<std::string> hidden_files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      const std::string name = entry.path().filename().string();
      if (name[0] == '.') names.push_back(name);
    }
    return names;
  }

  TempDir dir_;
  duckdb::Database database_;
};

TEST_F(ConvertTest, EveryRecordOfEveryFileLandsExactlyOnceWithTheUnionOfTheirKeys) {
  spit(dir_ / "a.ndjson",
       "{\"id\":1,\"name\":\"x\",\"ts\":\"2026-01-02T03:04:05Z\"}\n"
       "{\"id\":2,\"name\":\"y\",\"ts\":\"2026-01-02T03:04:06Z\"}\n");
  // Only the second file carries `extra` and a nested object: neither may be dropped.
  spit(dir_ / "b.ndjson", "{\"id\":3,\"extra\":{\"k\":[1,2]},\"name\":\"z\"}\n");
  const std::string target = dir_ / "out.parquet";
  duckdb::Connection connection = connect();
  ConvertResult result =
      convert_ndjson_to_parquet(connection, {dir_ / "a.ndjson", dir_ / "b.ndjson"}, target);

  EXPECT_EQ(result.rows, 3u);
  EXPECT_EQ(result.bytes, stat_path(target)->size);
  EXPECT_EQ(result.sha256, sha256_file(target));
  const std::string parquet = "read_parquet('" + target + "')";
  const std::string ndjson = "read_json(['" + (dir_ / "a.ndjson") + "', '" + (dir_ / "b.ndjson") +
                             "'], format='newline_delimited', union_by_name=true)";
  EXPECT_EQ(count("SELECT count(*) FROM (SELECT * FROM " + parquet + " EXCEPT ALL SELECT * FROM " +
                  ndjson + ")"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM (SELECT * FROM " + ndjson + " EXCEPT ALL SELECT * FROM " +
                  parquet + ")"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM " + parquet + " WHERE extra.k[2] = 2 AND id = 3"), 1);
  EXPECT_TRUE(hidden_files().empty());
}

TEST_F(ConvertTest, MalformedFileIsNamedWithDuckDbsReasonAndNothingIsPublished) {
  spit(dir_ / "good.ndjson", "{\"id\":1}\n");
  spit(dir_ / "bad.ndjson", "{\"id\":2}\n{\"id\":\n{\"id\":3}\n");
  const std::string target = dir_ / "out.parquet";
  duckdb::Connection connection = connect();
  try {
    convert_ndjson_to_parquet(connection, {dir_ / "good.ndjson", dir_ / "bad.ndjson"}, target);
    FAIL() << "a malformed file converted";
  } catch (const MalformedInputError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMalformed);
    EXPECT_EQ(e.file(), dir_ / "bad.ndjson");
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("convert " + target + ": malformed NDJSON in " + (dir_ / "bad.ndjson") +
                                ": Invalid Input Error: Malformed JSON in file",
                            0),
              0u)
        << message;
    EXPECT_NE(message.find("line 3"), std::string::npos) << message;
    EXPECT_EQ(message.find("LINE 1"), std::string::npos) << "SQL context leaked: " << message;
  }
  EXPECT_FALSE(stat_path(target));
  EXPECT_TRUE(hidden_files().empty());
}

TEST_F(ConvertTest, MissingInputIsNamed) {
  spit(dir_ / "good.ndjson", "{\"id\":1}\n");
  duckdb::Connection connection = connect();
  try {
    convert_ndjson_to_parquet(connection, {dir_ / "good.ndjson", dir_ / "gone.ndjson"},
                              dir_ / "out.parquet");
    FAIL() << "a missing file converted";
  } catch (const MalformedInputError& e) {
    EXPECT_EQ(e.file(), dir_ / "gone.ndjson") << e.what();
  }
}

TEST_F(ConvertTest, RefusalBeforePublishKeepsTheOldOutputAndRemovesTheTemp) {
  spit(dir_ / "a.ndjson", "{\"id\":1}\n");
  const std::string target = dir_ / "out.parquet";
  spit(target, "old");
  duckdb::Connection connection = connect();
  bool asked = false;
  EXPECT_THROW(convert_ndjson_to_parquet(connection, {dir_ / "a.ndjson"}, target, {},
                                         [&] {
                                           asked = true;
                                           EXPECT_EQ(hidden_files().size(), 1u);
                                           throw LockRecoveryError("claim lost");
                                         }),
               LockRecoveryError);
  EXPECT_TRUE(asked);
  EXPECT_EQ(testing::slurp(target), "old");
  EXPECT_TRUE(hidden_files().empty());
}

TEST_F(ConvertTest, RetryRewritesTheSameOutputName) {
  spit(dir_ / "a.ndjson", "{\"id\":1}\n{\"id\":2}\n");
  const std::string target = dir_ / "out.parquet";
  duckdb::Connection connection = connect();
  ConvertResult first = convert_ndjson_to_parquet(connection, {dir_ / "a.ndjson"}, target);
  ConvertResult second = convert_ndjson_to_parquet(connection, {dir_ / "a.ndjson"}, target);
  EXPECT_EQ(first.rows, 2u);
  EXPECT_EQ(second.rows, 2u);
  EXPECT_EQ(count("SELECT count(*) FROM read_parquet('" + target + "')"), 2);
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    entries += entry.path().extension() == ".parquet";
  }
  EXPECT_EQ(entries, 1u);
}

TEST_F(ConvertTest, EmptyInputListIsAUsageError) {
  duckdb::Connection connection = connect();
  EXPECT_THROW(convert_ndjson_to_parquet(connection, {}, dir_ / "out.parquet"),
               InvalidArgumentError);
}

}  // namespace
}  // namespace warden::pipeline
