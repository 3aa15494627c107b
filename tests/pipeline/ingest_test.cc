// ingest: a landed file becomes one pending record, however often and however it is named;
// a changed file is refused whole; files are dated by path, pattern or field.
#include "pipeline_fixture.h"

namespace warden::pipeline {
namespace {

using IngestTest = PipelineTest;

TEST_P(IngestTest, TheSameFileTwiceIsOneRecord) {
  std::vector<std::string> keys = land_days(1, 3);
  Pipeline pipeline(options());
  IngestResult first = pipeline.ingest({dir_ / "landing"});
  EXPECT_EQ(first.registered, 3u);
  EXPECT_EQ(first.already_known, 0u);
  EXPECT_EQ(first.keys, keys);
  // Again, by directory and by a relative-looking path through "..".
  IngestResult second =
      pipeline.ingest({dir_ / "landing", dir_ / "landing/2024-01-01/../2024-01-01/f000.ndjson"});
  EXPECT_EQ(second.registered, 0u);
  EXPECT_EQ(second.already_known, 3u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files"), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending' AND "
                  "date_prefix = '2024-01-01'"),
            3);
  sql::Rows row =
      db()->query("SELECT size, checksum FROM pipeline_files WHERE key = $1", {keys[0]});
  EXPECT_EQ(row.at(0)[0], std::to_string(read_file(keys[0]).size()));
  EXPECT_EQ(row.at(0)[1], sha256_hex(read_file(keys[0])));
}

TEST_P(IngestTest, AChangedFileIsRefusedNamingTheRecordedChecksumAndNothingIsRegistered) {
  const std::string a = land("2024-01-01", "a.ndjson");
  Pipeline pipeline(options());
  pipeline.ingest({a});
  const std::string recorded = sha256_hex(read_file(a));
  testing::spit(a, "{\"changed\":true}\n");
  const std::string b = land("2024-01-01", "b.ndjson");
  try {
    pipeline.ingest({b, a});
    FAIL() << "a changed file was accepted";
  } catch (const VerificationError& e) {
    EXPECT_NE(std::string(e.what()).find(a), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(recorded), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Nothing was registered"), std::string::npos);
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE key = $1", {b}), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE checksum = $1", {recorded}), 1);
}

TEST_P(IngestTest, ADirectoryIsWalkedForNdjsonFilesOnlySkippingHiddenOnes) {
  const std::string keep1 = land("2024-01-02", "x.ndjson");
  const std::string keep2 = land("2024-01-02", "y.jsonl");
  const std::string keep3 = land("2024-01-02", "z.json");
  land("2024-01-02", "notes.txt");
  land("2024-01-02", ".x.ndjson.tmp.1.2");
  Pipeline pipeline(options());
  IngestResult r = pipeline.ingest({dir_ / "landing"});
  EXPECT_EQ(r.keys, (std::vector<std::string>{keep1, keep2, keep3}));
}

TEST_P(IngestTest, TheDataDirectoryIsNeverIngestedAsLandedFiles) {
  land_days(1, 10);
  PipelineOptions o = options();
  o.data_dir = dir_ / "landing/data";  // manifests (*.json) land inside the walked tree
  Pipeline pipeline(o);
  EXPECT_EQ(pipeline.ingest({dir_ / "landing"}).batch.manifests.size(), 1u);
  IngestResult again = pipeline.ingest({dir_ / "landing"});
  EXPECT_EQ(again.keys.size(), 10u);
  EXPECT_EQ(again.registered, 0u);
}

TEST_P(IngestTest, DatesComeFromTheFirstDateInThePathByDefault) {
  make_directories(dir_ / "in/2023-12-31");
  testing::spit(dir_ / "in/2023-12-31/events-2024-05-06.ndjson", "{}\n");
  Pipeline pipeline(options());
  pipeline.ingest({dir_ / "in"});
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE date_prefix = '2023-12-31'"), 1);
}

TEST_P(IngestTest, ADatePatternPicksItsCaptureGroup) {
  make_directories(dir_ / "in/2023-12-31");
  testing::spit(dir_ / "in/2023-12-31/events-2024-05-06.ndjson", "{}\n");
  PipelineOptions o = options();
  o.date_pattern = R"(events-(\d{4}-\d{2}-\d{2}))";
  Pipeline pipeline(o);
  pipeline.ingest({dir_ / "in"});
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE date_prefix = '2024-05-06'"), 1);
}

TEST_P(IngestTest, ADateFieldReadsTheFirstRecord) {
  make_directories(dir_ / "in");
  testing::spit(dir_ / "in/batch.ndjson",
                "\n{\"event_time\":\"2024-03-04T05:06:07Z\",\"v\":1}\n{\"event_time\":\"x\"}\n");
  PipelineOptions o = options();
  o.date_field = "event_time";
  Pipeline pipeline(o);
  pipeline.ingest({dir_ / "in"});
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE date_prefix = '2024-03-04'"), 1);
}

TEST_P(IngestTest, AnUndatableFileIsAUsageErrorNamingTheFileAndTheOptions) {
  make_directories(dir_ / "in");
  testing::spit(dir_ / "in/nodate.ndjson", "{}\n");
  Pipeline pipeline(options());
  try {
    pipeline.ingest({dir_ / "in"});
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("nodate.ndjson"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--date-pattern"), std::string::npos);
  }
  PipelineOptions o = options();
  o.date_pattern = "no-group";
  EXPECT_THROW(Pipeline(o).ingest({dir_ / "in"}), InvalidArgumentError);
  EXPECT_THROW(pipeline.ingest({dir_ / "missing"}), InvalidArgumentError);
  EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files"), 0);
}

TEST_P(IngestTest, ImpossibleCalendarDatesAreNotDates) {
  EXPECT_TRUE(is_date("2024-02-29"));
  EXPECT_FALSE(is_date("2023-02-29"));
  EXPECT_FALSE(is_date("2024-13-01"));
  EXPECT_FALSE(is_date("2024-1-01"));
}

WARDEN_PIPELINE_BACKENDS(IngestTest);

}  // namespace
}  // namespace warden::pipeline
