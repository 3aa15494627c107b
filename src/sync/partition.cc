// Publishing year partitions: staged export, fsync, checksum, gate, rename, directory fsync.
#include "partition.h"

#include <filesystem>

#include "warden/checksum.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/posix.h"

namespace warden::sync_internal {

using duckdb::quote_identifier;
using duckdb::quote_literal;

ParquetFacts inspect_parquet(duckdb::Connection& inspector, const std::string& path,
                             const std::string& date_column) {
  ParquetFacts facts;
  // A staged file's path holds "__warden_year=<y>": not a column of the file.
  const std::string file = "read_parquet(" + quote_literal(path) + ", hive_partitioning = false)";
  facts.schema = schema_of(inspector.query("SELECT * FROM " + file + " LIMIT 0").columns());
  const std::string column = quote_identifier(date_column);
  duckdb::Result r = inspector.query("SELECT count(*), min(" + column + ")::VARCHAR, max(" +
                                     column + ")::VARCHAR FROM " + file);
  facts.rows = static_cast<uint64_t>(r.get_int64(0, 0));
  if (!r.is_null(1, 0)) facts.min_date = r.get_string(1, 0);
  if (!r.is_null(2, 0)) facts.max_date = r.get_string(2, 0);
  return facts;
}

namespace {

// A temp file (or staging directory) that failed: kept for a week in quarantine with the
// reason, never published.
[[noreturn]] void reject(const DataLayout& layout, const DatasetSpec& spec, int year,
                         const std::string& temp, const std::string& reason, const Error& error) {
  std::string dir;
  try {
    dir = quarantine_files(layout, spec.name + "_sync", reason, {temp},
                           {{"dataset", spec.name}, {"year", year}});
  } catch (const Error&) {
    std::error_code ignored;
    std::filesystem::remove_all(temp, ignored);  // could not even quarantine (disk full)
  }
  if (error.code() == ErrorCode::kDiskFull) {
    throw Error(ErrorCode::kDiskFull,
                "sync " + spec.name + " year " + std::to_string(year) + ": the disk under " +
                    layout.root() + " is full; nothing of this year was " +
                    "published and the years already committed are kept" +
                    (dir.empty() ? ", the temp file was removed"
                                 : ", the temp file is quarantined in " + dir) +
                    ". Free space and rerun the same sync: it resumes at this year. Cause: " +
                    error.what());
  }
  throw VerificationError("sync " + spec.name + " year " + std::to_string(year) + ": " + reason +
                          "; nothing was published" +
                          (dir.empty() ? "" : " (temp file quarantined in " + dir + ")"));
}

}  // namespace

StagedYears::StagedYears(Source& source, const DataLayout& layout, const SyncOptions& options,
                         const DatasetSpec& spec, int first, int last, uint64_t expected_bytes) {
  const std::string table_dir = layout.table_dir(spec.name, spec.table);
  make_directories(table_dir);
  options.disk.require(table_dir, expected_bytes);
  // Hidden and not ending in .parquet: a reader's glob of *.parquet never matches it.
  dir_ = temp_name_beside(table_dir + "/years");
  make_directories(dir_);
  try {
    files_ = source.write_parquet_years(spec.query, spec.date_column, first, last, dir_,
                                        layout.root() + "/tmp/" + spec.name);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kDiskFull) {
      emit_event(EventLevel::kCritical, "sync.disk.blocked",
                 "disk full while writing " + dir_ + ": " + e.what(),
                 {{"path", dir_}, {"dataset", spec.name}, {"year", first}});
      const std::string staged = dir_;
      dir_.clear();  // quarantined or removed by reject
      reject(layout, spec, first, staged, "disk full while writing the partition", e);
    }
    throw;  // the destructor removes the directory
  }
}

StagedYears::~StagedYears() {
  if (dir_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

ManifestFile publish_partition(const DataLayout& layout, const SyncOptions& options,
                               duckdb::Connection& inspector, const PartitionRequest& request,
                               const YearExport& staged) {
  const DatasetSpec& spec = *request.spec;
  const std::string dir = layout.table_dir(spec.name, spec.table);
  const std::string relative =
      DataLayout::partition_relative_path(spec.name, spec.table, request.year);
  const std::string target = layout.absolute(relative);
  const std::string& temp = staged.path;
  ManifestFile file;
  try {
    WARDEN_FAILPOINT("sync.partition.after_temp_write");
    {
      UniqueFd fd = open_read(temp);
      fsync_fd(fd.get(), temp);
    }
    file.sha256 = sha256_file(temp);
    file.bytes = stat_path(temp).value_or(FileInfo{}).size;
    ParquetFacts facts = inspect_parquet(inspector, temp, spec.date_column);
    file.path = relative;
    file.year = request.year;
    file.rows = facts.rows;
    file.min_date = facts.min_date;
    file.max_date = facts.max_date;
    file.schema_hash = facts.schema.hash();
    file.synced_at = format_utc(std::chrono::system_clock::now());

    // The validation gate: what landed is what the source sent, for this year only.
    std::optional<std::string> problem;
    const std::string year = std::to_string(request.year);
    if (facts.rows != staged.exported.rows) {
      problem = "the file holds " + std::to_string(facts.rows) + " rows, the source sent " +
                std::to_string(staged.exported.rows);
    } else if (!(facts.schema == request.expected_schema)) {
      problem = "the file's schema (" + facts.schema.hash() + ") is not the registered one (" +
                request.expected_schema.hash() + ")";
    } else if (facts.rows > 0 &&
               (facts.min_date.rfind(year, 0) != 0 || facts.max_date.rfind(year, 0) != 0)) {
      problem = "dates " + facts.min_date + ".." + facts.max_date + " fall outside " + year;
    } else if (options.validator) {
      problem = options.validator(file);
    }
    if (problem) {
      reject(layout, spec, request.year, temp, "validation failed: " + *problem,
             VerificationError(*problem));
    }
  } catch (const VerificationError&) {
    throw;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kDiskFull) reject(layout, spec, request.year, temp, "disk full", e);
    remove_file(temp);
    throw;
  }

  rename_replace(temp, target);
  WARDEN_FAILPOINT("sync.partition.after_rename");
  // Without this the rename may not survive a crash, yet the manifest would name the file.
  fsync_directory(dir);
  return file;
}

}  // namespace warden::sync_internal
