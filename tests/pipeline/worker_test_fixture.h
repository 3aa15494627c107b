// The worker's tests run once per backend (SQLite embedded, PostgreSQL from
// testing::PostgresDatabase): land NDJSON files, batch them with the pipeline core, work them,
// and check that every input row is in exactly one output.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "helpers/test_support.h"
#include "pipeline_fixture.h"
#include "warden/checksum.h"
#include "warden/duckdb.h"
#include "warden/pipeline.h"
#include "warden/pipeline_worker.h"
#include "warden/posix.h"

namespace warden::pipeline {

class WorkerTest : public StoreBackendTest {
 protected:
  PipelineOptions options() const {
    PipelineOptions o;
    o.data_dir = data_dir();
    o.store = store_;
    o.threshold = 10;
    o.today = "2024-01-01";  // the landed dates are not older: only the threshold batches
    return o;
  }
  WorkerOptions worker_options(int max_attempts = 3) const {
    WorkerOptions o;
    o.max_attempts = max_attempts;
    o.threads = 1;
    return o;
  }

  // One NDJSON file of `rows` event records (ids, a timestamp, numbers, a nested object, an
  // array, a key only some rows carry) under landing/<date>/.
  std::string land(const std::string& date, int index, int rows = 25) const {
    const std::string dir = dir_ / ("landing/" + date);
    make_directories(dir);
    char name[32];
    std::snprintf(name, sizeof name, "events-%03d.ndjson", index);
    std::string text;
    for (int r = 0; r < rows; ++r) {
      const std::string id = date + "/" + std::to_string(index) + "/" + std::to_string(r);
      text += "{\"event_id\":\"" + id + "\",\"ts\":\"" + date + "T10:00:" + (r < 10 ? "0" : "") +
              std::to_string(r % 60) + "Z\",\"user\":" + std::to_string(index * 1000 + r) +
              ",\"amount\":" + std::to_string(r * 1.25) + ",\"device\":{\"os\":\"" +
              (r % 2 ? "ios" : "linux") + "\",\"screen\":{\"w\":" + std::to_string(320 + r) +
              "}},\"tags\":[\"t" + std::to_string(r % 3) + "\"]" +
              (r % 4 == 0 ? ",\"coupon\":\"C" + std::to_string(index) + "\"" : "") + "}\n";
    }
    const std::string path = dir + "/" + name;
    testing::spit(path, text);
    return std::filesystem::canonical(path).string();
  }
  // Lands counts[i] files for day i+1 (2024-01-01, ...); returns their keys, sorted.
  std::vector<std::string> land_days(const std::vector<int>& counts) const {
    std::vector<std::string> keys;
    for (size_t d = 0; d < counts.size(); ++d) {
      const std::string date = (d < 9 ? "2024-01-0" : "2024-01-") + std::to_string(d + 1);
      for (int i = 0; i < counts[d]; ++i) keys.push_back(land(date, i));
    }
    return keys;
  }
  // Registers everything landed and batches it (threshold 10).
  void ingest() const {
    Pipeline pipeline(options());
    pipeline.ingest({dir_ / "landing"});
  }
  std::vector<std::string> land_and_ingest(const std::vector<int>& counts) const {
    std::vector<std::string> keys = land_days(counts);
    ingest();
    return keys;
  }

  std::string status_of(const std::string& id) const {
    return db()
        ->query("SELECT status FROM pipeline_manifests WHERE id = $1", {id})
        .at(0)
        .at(0)
        .value_or("");
  }
  std::vector<std::string> manifest_ids() const {
    std::vector<std::string> ids;
    for (const sql::Row& r : db()->query("SELECT id FROM pipeline_manifests ORDER BY id")) {
      ids.push_back(*r[0]);
    }
    return ids;
  }

  // Every regular file under parquet/ (hidden temp files included).
  std::vector<std::string> parquet_dir_files() const {
    std::vector<std::string> files;
    std::error_code error;
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(layout().parquet_dir(), error)) {
      if (e.is_regular_file()) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  static std::string file_list(const std::vector<std::string>& paths) {
    std::string list = "[";
    for (const std::string& p : paths)
      list += (list.size() > 1 ? ", " : "") + duckdb::quote_literal(p);
    return list + "]";
  }

  // The end state of a finished pipeline: every manifest completed with exactly its output
  // file (no other file under parquet/), the recorded checksum and rows are the file's, every
  // registered file in exactly one completed manifest, and the outputs hold exactly the
  // input rows (EXCEPT ALL both ways against DuckDB reading the NDJSON directly).
  void expect_every_row_exactly_once(const std::vector<std::string>& inputs) const {
    auto store = db();
    std::vector<std::string> outputs;
    std::map<std::string, int> files_seen;
    for (const sql::Row& r : store->query("SELECT id, date_prefix, status, output,"
                                          " output_checksum, output_rows, path"
                                          " FROM pipeline_manifests ORDER BY id")) {
      EXPECT_EQ(r[2].value_or(""), "completed") << *r[0];
      const std::string expected = layout().parquet_path(*r[1], *r[0]);
      EXPECT_EQ(r[3].value_or(""), expected) << *r[0];
      outputs.push_back(expected);
      EXPECT_EQ(r[4].value_or(""), sha256_file(expected)) << *r[0];
      ManifestDocument manifest = load_manifest_document(*r[6]);
      for (const ManifestEntry& e : manifest.files) ++files_seen[e.key];
      duckdb::Database check = duckdb::Database::in_memory();
      EXPECT_EQ(std::to_string(check.connect()
                                   .query("SELECT count(*) FROM read_parquet(" +
                                          duckdb::quote_literal(expected) + ")")
                                   .get_int64(0, 0)),
                r[5].value_or(""))
          << *r[0];
    }
    EXPECT_EQ(parquet_dir_files(), outputs) << "extra or missing files under parquet/";
    EXPECT_EQ(files_seen.size(), inputs.size());
    for (const std::string& key : inputs) EXPECT_EQ(files_seen[key], 1) << key;
    EXPECT_EQ(count("SELECT COUNT(*) FROM pipeline_files WHERE status <> 'manifested'"), 0);

    duckdb::Database database = duckdb::Database::in_memory();
    duckdb::Connection c = database.connect();
    const std::string parquet = "read_parquet(" + file_list(outputs) + ", union_by_name = true)";
    const std::string ndjson =
        "read_json(" + file_list(inputs) + ", format = 'newline_delimited', union_by_name = true)";
    auto rows = [&](const std::string& sql) { return c.query(sql).get_int64(0, 0); };
    // Same columns in the same order for EXCEPT ALL: select the NDJSON side's by name.
    std::string columns;
    for (const duckdb::Column& col : c.query("SELECT * FROM " + ndjson + " LIMIT 0").columns()) {
      columns += (columns.empty() ? "" : ", ") + duckdb::quote_identifier(col.name);
    }
    const std::string p = "SELECT " + columns + " FROM " + parquet;
    const std::string n = "SELECT " + columns + " FROM " + ndjson;
    EXPECT_EQ(rows("SELECT count(*) FROM " + parquet), rows("SELECT count(*) FROM " + ndjson));
    EXPECT_EQ(rows("SELECT count(*) FROM (" + p + " EXCEPT ALL " + n + ")"), 0);
    EXPECT_EQ(rows("SELECT count(*) FROM (" + n + " EXCEPT ALL " + p + ")"), 0);
    EXPECT_EQ(rows("SELECT count(*) - count(DISTINCT event_id) FROM " + parquet), 0);
  }
};

}  // namespace warden::pipeline
