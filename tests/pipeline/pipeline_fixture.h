// The pipeline's tests run once per backend: SQLite (embedded) and PostgreSQL (the
// throw-away server scripts/test starts; a fresh database per test). StoreBackendTest is
// what the core's fixture (PipelineTest, here) and the worker's (worker_test_fixture.h) share.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "helpers/test_support.h"
#include "warden/checksum.h"
#include "warden/lease_lock.h"
#include "warden/pipeline.h"
#include "warden/posix.h"

namespace warden::pipeline {

class StoreBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      pg_.emplace();
      store_ = "postgresql:" + pg_->conninfo();
    }
  }

  std::string data_dir() const { return dir_ / "data"; }
  PipelineLayout layout() const { return PipelineLayout(data_dir()); }

  std::shared_ptr<sql::Database> db() const {
    PipelineOptions o;
    o.data_dir = data_dir();
    o.store = store_;
    return open_pipeline_store(o);
  }
  int64_t count(const std::string& sql, const sql::Params& params = {}) const {
    return std::stoll(db()->query(sql, params).at(0).at(0).value_or("0"));
  }

  // Arguments that point the CLI at this test's data directory and store.
  std::vector<std::string> cli(std::vector<std::string> args) const {
    std::vector<std::string> argv = {"--data-dir", data_dir(), "pipeline"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!store_.empty()) {
      argv.push_back("--store");
      argv.push_back(store_);
    }
    return argv;
  }

  testing::TempDir dir_;
  std::optional<testing::PostgresDatabase> pg_;
  std::string store_;
};

class PipelineTest : public StoreBackendTest {
 protected:
  // Today is 2024-01-01 unless a test says otherwise: the landed dates below are not older,
  // so only the threshold batches them.
  PipelineOptions options(int threshold = 10) const {
    PipelineOptions o;
    o.data_dir = data_dir();
    o.store = store_;
    o.threshold = threshold;
    o.today = "2024-01-01";
    o.retry_backoff = std::chrono::milliseconds(10);
    return o;
  }

  // Lands one NDJSON file under landing/<date>/ with `rows` records.
  std::string land(const std::string& date, const std::string& name, int rows = 2) const {
    const std::string dir = dir_ / ("landing/" + date);
    make_directories(dir);
    std::string text;
    for (int i = 0; i < rows; ++i) {
      text += "{\"file\":\"" + name + "\",\"row\":" + std::to_string(i) + ",\"date\":\"" + date +
              "\"}\n";
    }
    testing::spit(dir + "/" + name, text);
    return std::filesystem::canonical(dir + "/" + name).string();
  }
  // `per_date` files for each of `dates` consecutive days from 2024-01-01.
  std::vector<std::string> land_days(int dates, int per_date, int first_day = 1) const {
    std::vector<std::string> keys;
    for (int d = first_day; d < first_day + dates; ++d) {
      char date[32];
      std::snprintf(date, sizeof date, "2024-01-%02d", d);
      for (int i = 0; i < per_date; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "f%03d.ndjson", i);
        keys.push_back(land(date, name));
      }
    }
    return keys;
  }

  // The manifest JSON files on disk.
  std::vector<std::string> manifest_files() const {
    std::vector<std::string> files;
    std::error_code error;
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(layout().manifests_dir(), error)) {
      if (e.is_regular_file() && e.path().extension() == ".json") {
        files.push_back(e.path().string());
      }
    }
    std::sort(files.begin(), files.end());
    return files;
  }
  // Every invariant "nothing lost, nothing duplicated": each manifested file is named by
  // exactly one manifest file and that file's record; every record has its file.
  void expect_consistent() const {
    std::map<std::string, int> named;
    auto store = db();
    for (const sql::Row& r : store->query("SELECT id, path, file_count FROM pipeline_manifests")) {
      ManifestDocument doc = load_manifest_document(*r[1]);
      EXPECT_EQ(doc.id, *r[0]);
      EXPECT_EQ(static_cast<int64_t>(doc.files.size()), std::stoll(*r[2]));
      for (const ManifestEntry& e : doc.files) {
        ++named[e.key];
        sql::Rows f =
            store->query("SELECT status, manifest_id FROM pipeline_files WHERE key = $1", {e.key});
        ASSERT_EQ(f.size(), 1u) << e.key;
        EXPECT_EQ(f[0][0], std::optional<std::string>("manifested")) << e.key;
        EXPECT_EQ(f[0][1], r[0]) << e.key;
      }
    }
    for (const auto& [key, times] : named) EXPECT_EQ(times, 1) << key;
    EXPECT_EQ(static_cast<int64_t>(named.size()),
              count("SELECT COUNT(*) FROM pipeline_files WHERE status = 'manifested'"));
    EXPECT_EQ(manifest_files().size(),
              static_cast<size_t>(count("SELECT COUNT(*) FROM pipeline_manifests")));
  }
};

inline std::string backend_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace warden::pipeline

#define WARDEN_PIPELINE_BACKENDS(suite)                                                \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values("sqlite", "postgresql"), \
                           ::warden::pipeline::backend_name)
