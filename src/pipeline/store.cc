// The pipeline's store: its tables, the layout of its files, and the names derived from both.
#include <filesystem>
#include <regex>

#include "warden/checksum.h"
#include "warden/error.h"
#include "warden/pipeline.h"
#include "warden/posix.h"

namespace warden::pipeline {

// Both dialects read this DDL unchanged (BIGINT and TEXT only). The (status, date_prefix)
// index serves the batcher's "pending files of a date" and trace's counts.
const char* const kPipelineSchema =
    "CREATE TABLE IF NOT EXISTS pipeline_files ("
    " key TEXT PRIMARY KEY, size BIGINT NOT NULL, checksum TEXT NOT NULL,"
    " date_prefix TEXT NOT NULL, status TEXT NOT NULL, manifest_id TEXT,"
    " registered_ms BIGINT NOT NULL, manifested_ms BIGINT);"
    "CREATE INDEX IF NOT EXISTS pipeline_files_status_date"
    " ON pipeline_files (status, date_prefix);"
    "CREATE INDEX IF NOT EXISTS pipeline_files_manifest ON pipeline_files (manifest_id);"
    "CREATE TABLE IF NOT EXISTS pipeline_manifests ("
    " id TEXT PRIMARY KEY, date_prefix TEXT NOT NULL, path TEXT NOT NULL,"
    " file_count BIGINT NOT NULL, batch_token BIGINT NOT NULL, status TEXT NOT NULL,"
    " attempts BIGINT NOT NULL DEFAULT 0, error TEXT,"
    " claim_token BIGINT, claim_writer TEXT, claim_expires_ms BIGINT,"
    " output TEXT, output_checksum TEXT, output_rows BIGINT,"
    " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS pipeline_manifests_status ON pipeline_manifests (status)";

PipelineLayout::PipelineLayout(const std::string& data_dir)
    : data_dir_(std::filesystem::absolute(data_dir).lexically_normal().string()) {
  while (data_dir_.size() > 1 && data_dir_.back() == '/') data_dir_.pop_back();
}

std::shared_ptr<sql::Database> open_pipeline_store(const PipelineOptions& options) {
  PipelineLayout layout(options.data_dir);
  std::shared_ptr<sql::Database> db = sql::open_store(options.store, layout.state_path());
  db->ensure_schema(kPipelineSchema);
  return db;
}

std::string batch_lease_name(const std::string& date) { return "pipeline.batch." + date; }

std::string manifest_id_for(const std::string& date, std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  Sha256 hash;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i) hash.update("\n");
    hash.update(keys[i]);
  }
  return date + "-" + hash.hex_digest().substr(0, 16);
}

bool is_date(const std::string& text) {
  static const std::regex kDate(R"(\d{4}-\d{2}-\d{2})");
  if (!std::regex_match(text, kDate)) return false;
  // parse_utc accepts real calendar days only (no 2024-02-30).
  return parse_utc(text + "T00:00:00.000Z").has_value();
}

Pipeline::Pipeline(PipelineOptions options)
    : options_(std::move(options)), layout_(options_.data_dir), db_(open_pipeline_store(options_)) {
  if (options_.threshold < 1) {
    throw InvalidArgumentError("pipeline: --threshold must be at least 1, not " +
                               std::to_string(options_.threshold));
  }
}

Pipeline::Pipeline(PipelineOptions options, std::shared_ptr<sql::Database> db)
    : options_(std::move(options)), layout_(options_.data_dir), db_(std::move(db)) {
  if (options_.threshold < 1) {
    throw InvalidArgumentError("pipeline: --threshold must be at least 1, not " +
                               std::to_string(options_.threshold));
  }
  db_->ensure_schema(kPipelineSchema);
}

std::string Pipeline::today() {
  if (!options_.today.empty()) {
    if (!is_date(options_.today)) {
      throw InvalidArgumentError("pipeline: today must be a YYYY-MM-DD date, not '" +
                                 options_.today + "'");
    }
    return options_.today;
  }
  const auto now =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(db_->clock_ms()));
  return format_utc(now).substr(0, 10);
}

}  // namespace warden::pipeline
