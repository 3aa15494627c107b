// The file-batching pipeline (seed 002; issue 7): NDJSON files land, each is tracked as
// pending; when `threshold` files of one date are pending, a batcher takes that date's lease,
// writes a manifest naming them, and in one transaction records the manifest and marks its
// files manifested; workers (pipeline_worker.h) turn each manifest into one Parquet output.
//
// State lives in one store (sql.h): SQLite at <data_dir>/pipeline/state.sqlite by default,
// or a shared PostgreSQL for several hosts. The store holds the lease table (lease_lock.h)
// and two tables, created by open_pipeline_store():
//   pipeline_files      one row per landed file: key (canonical absolute path), size,
//                       checksum (sha256 hex), date_prefix, status 'pending'|'manifested',
//                       manifest_id, registered_ms, manifested_ms
//   pipeline_manifests  one row per manifest (the seed's MANIFEST record): id, date_prefix,
//                       path (the manifest file), file_count, batch_token (the batcher's
//                       lease token), status 'pending'|'processing'|'completed'|'failed',
//                       attempts, error, claim_token, claim_writer, claim_expires_ms, output
//                       (the Parquet file's absolute path), output_checksum (sha256 hex),
//                       output_rows, created_ms, updated_ms
// Times are integer milliseconds since the epoch on the DATABASE's clock (sql::Database::now_ms).
//
// Files on disk (PipelineLayout): manifests/<date>/<id>.json and parquet/<date>/<id>.parquet
// under <data_dir>/pipeline, each published with the audited atomic write. A manifest id is
// "<date>-<first 16 hex of sha256(sorted keys joined by '\n')>", so a batch redone after a
// crash rebuilds the same id, the same file and (in the worker) the same output.
//
// Crash safety of a batch: the manifest file is written first, then ONE transaction checks
// that the batcher still holds the date's lease (fencing), inserts the manifest record and
// marks exactly its files manifested (or rolls back). A crash leaves no record (the files
// stay pending; the manifest file, if written, is rebuilt with the same id or removed by the
// next batcher holding that date's lease) or a complete one. Failpoints:
// "pipeline.batch.after_manifest_write", "pipeline.batch.after_commit".
//
// Thread-safety: a Pipeline is used by one thread at a time; several processes (or hosts
// sharing PostgreSQL) may run ingest/flush at once: the per-date lease serialises batches.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "warden/lock.h"
#include "warden/sql.h"

namespace warden::pipeline {

// Status values as stored.
inline constexpr const char* kFilePending = "pending";
inline constexpr const char* kFileManifested = "manifested";
inline constexpr const char* kManifestPending = "pending";
inline constexpr const char* kManifestProcessing = "processing";
inline constexpr const char* kManifestCompleted = "completed";
inline constexpr const char* kManifestFailed = "failed";

// Where the pipeline keeps its files under a data directory. Pure path arithmetic.
class PipelineLayout {
 public:
  // data_dir is made absolute (against the current directory) so recorded paths are absolute.
  explicit PipelineLayout(const std::string& data_dir);
  const std::string& data_dir() const { return data_dir_; }
  std::string root() const { return data_dir_ + "/pipeline"; }  // <data_dir>/pipeline
  std::string state_path() const { return root() + "/state.sqlite"; }
  std::string manifests_dir() const { return root() + "/manifests"; }
  std::string manifest_path(const std::string& date, const std::string& id) const {
    return manifests_dir() + "/" + date + "/" + id + ".json";
  }
  std::string parquet_dir() const { return root() + "/parquet"; }
  std::string parquet_path(const std::string& date, const std::string& id) const {
    return parquet_dir() + "/" + date + "/" + id + ".parquet";
  }

 private:
  std::string data_dir_;
};

struct PipelineOptions {
  std::string data_dir = "data";
  // The store: "" = SQLite at PipelineLayout::state_path(); else as sql::open_store reads it.
  std::string store;
  // Pending files of one date that make a batch, and the size of each manifest.
  int threshold = 10;
  // The batch lease (the seed's LOCK TTL) and how a held lease is retried: up to
  // lease_retries more attempts, sleeping retry_backoff, 2x, 4x ... between them.
  std::chrono::milliseconds lease{std::chrono::seconds(300)};
  int lease_retries = 3;
  std::chrono::milliseconds retry_backoff{std::chrono::milliseconds(500)};
  // How a file is dated (first match wins in this order): date_field, the JSON field of the
  // file's first record ("2024-01-15" or a timestamp starting so); date_pattern, a regex
  // searched in the path whose one capture group is YYYY-MM-DD; default: the first
  // YYYY-MM-DD in the path.
  std::string date_field;
  std::string date_pattern;
  // "YYYY-MM-DD" to use as today (tests, backfills); "" = today in UTC on the database clock.
  // Dates before today are flushed below the threshold (the seed's orphan flush).
  std::string today;
  // Written into lease rows; "" = a random UUID per lease.
  std::string writer_id;
};

// The pipeline tables' DDL (statements separated by ';', idempotent).
extern const char* const kPipelineSchema;

// Opens the store the options name and creates the pipeline tables (ensure_schema) if
// missing. Throws as sql::open_store does (InvalidArgumentError, SqlError, PostgresError).
std::shared_ptr<sql::Database> open_pipeline_store(const PipelineOptions& options);

// "pipeline.batch.<date>": the lease a batcher holds for one date.
std::string batch_lease_name(const std::string& date);
// "<date>-<first 16 hex of sha256(keys sorted, joined by '\n')>". keys need not be sorted.
std::string manifest_id_for(const std::string& date, std::vector<std::string> keys);
// Whether text is a YYYY-MM-DD calendar date.
bool is_date(const std::string& text);

// The manifest file: {"version":1,"id","date","batch_token","created_at","files":[{"key",
// "size","sha256"}]} with files sorted by key.
struct ManifestEntry {
  std::string key;
  uint64_t size = 0;
  std::string sha256;
  bool operator==(const ManifestEntry&) const = default;
};
struct ManifestDocument {
  int version = 1;
  std::string id;
  std::string date;
  uint64_t batch_token = 0;
  std::string created_at;  // RFC 3339 UTC
  std::vector<ManifestEntry> files;
  std::string to_json() const;
  // Strict parse. Throws MalformedLockFileError naming `path` and what is wrong.
  static ManifestDocument parse(const std::string& text, const std::string& path);
};
// Reads and parses a manifest file. Throws IoError (kNotFound when missing) or
// MalformedLockFileError.
ManifestDocument load_manifest_document(const std::string& path);

// ---- Ingest and batch ------------------------------------------------------------------

struct ManifestCreated {
  std::string id;
  std::string date;
  std::string path;
  size_t file_count = 0;
  uint64_t batch_token = 0;
};

struct BatchResult {
  std::vector<ManifestCreated> manifests;
  // Dates whose lease stayed held by another batcher through every retry (files left
  // pending; event pipeline.batch.lock_held). Not an error: the holder batches them.
  std::vector<std::string> dates_lock_held;
  // Manifest files found without a record (a batcher crashed between write and commit)
  // and removed under the date's lease. Rebuilt ones (same id) are not listed here.
  std::vector<std::string> orphan_files_removed;
  size_t pending_left = 0;  // pending files after the run, all dates
};

struct IngestResult {
  size_t registered = 0;          // new records
  size_t already_known = 0;       // same key, same checksum: nothing changed
  std::vector<std::string> keys;  // every file named, canonical, in order
  BatchResult batch;
};

enum class FlushMode {
  // The seed's Lambda and force-manifest-creation: dates with >= threshold pending files get
  // full manifests; dates before today are flushed whole (the orphan flush).
  kThreshold,
  // `flush --all`: every date is flushed whole, today's below-threshold files included.
  kAllDates,
};

// The seed's correlation analysis: what the counts should be, and whether they are.
struct Correlation {
  std::string name;  // "manifest records = manifest files", ...
  int64_t expected = 0;
  int64_t actual = 0;
  bool ok() const { return expected == actual; }
};

// One thing trace found wrong. kind is stable (JSON, tests): file_without_manifest,
// record_without_manifest_file, manifest_file_without_record, output_without_completed_record,
// completed_output_missing, completed_output_checksum_mismatch, pending_over_threshold,
// pending_older_date, manifest_failed, claim_expired, lease_expired.
struct TraceFinding {
  std::string kind;
  std::string subject;  // the file key, manifest id, path or lease name
  std::string detail;   // why it looks wrong
  std::string fix;      // the command (or step) that resolves it
};

struct DateSummary {
  std::string date;
  int64_t pending = 0;
  int64_t manifested = 0;
  int64_t manifests = 0;
};

struct TraceReport {
  std::string store;                                   // the store's location
  std::map<std::string, int64_t> files_by_status;      // pending, manifested
  std::map<std::string, int64_t> manifests_by_status;  // pending ... failed
  int64_t manifest_files = 0;                          // *.json under manifests/
  int64_t parquet_files = 0;                           // *.parquet under parquet/
  std::vector<DateSummary> dates;
  std::vector<LockStatus> leases;
  std::vector<Correlation> correlations;
  std::vector<TraceFinding> findings;
  bool clean() const { return findings.empty(); }
  nlohmann::json to_json() const;
};

// One file end to end (trace --file).
struct FileTrace {
  std::string key;
  bool registered = false;
  std::string status, date, checksum, manifest_id;
  int64_t size = 0;
  // The manifest record, if the file has one.
  bool manifest_record = false;
  std::string manifest_status, manifest_path, manifest_error, output, output_checksum;
  int64_t attempts = 0;
  bool manifest_file_exists = false;
  bool listed_in_manifest_file = false;
  bool output_exists = false;
  std::vector<std::string> problems;  // what breaks the chain, in order
  nlohmann::json to_json() const;
};

class Pipeline {
 public:
  // Opens the store (open_pipeline_store). Throws as it does.
  explicit Pipeline(PipelineOptions options);
  // Uses an already open store (the schema is ensured).
  Pipeline(PipelineOptions options, std::shared_ptr<sql::Database> db);

  const PipelineOptions& options() const { return options_; }
  const PipelineLayout& layout() const { return layout_; }
  sql::Database& db() { return *db_; }
  const std::shared_ptr<sql::Database>& shared_db() const { return db_; }

  // Registers landed files (a directory is walked for *.ndjson, *.json, *.jsonl; the
  // pipeline's own directory is skipped), then runs the batcher (kThreshold) as the seed's
  // Lambda does on each landing. All files are registered in one transaction: a file already
  // registered with the same checksum is counted in already_known; one whose content
  // changed throws VerificationError naming the file and the recorded checksum, and nothing
  // is registered. Throws InvalidArgumentError for a path that does not exist, names no
  // NDJSON file, or cannot be dated (the message names the dating rule and its option);
  // IoError for an unreadable file; SqlError. Blocks on the store and on held leases (retries).
  IngestResult ingest(const std::vector<std::string>& paths);

  // Runs the batcher: for each date that has pending files (or manifest files without a
  // record), take its lease (retrying a held one as PipelineOptions says while enough files
  // stay pending), rebuild or remove orphan manifest files, and create manifests of
  // `threshold` files (sorted by key) while at least threshold are pending; a date before
  // today (kThreshold) or any date (kAllDates) also gets its remainder.
  // Emits pipeline.manifest.created per manifest. Throws SqlError, IoError; LockLost
  // (LockRecoveryError) is not thrown: a batch whose lease expired mid-way is rolled back
  // and its date reported in dates_lock_held.
  BatchResult batch(FlushMode mode = FlushMode::kThreshold);

  // The health check (trace-pipeline.sh): counts, correlations and findings. Read-only.
  TraceReport trace();
  // Follows one file (key: a path, canonicalised when it exists). Read-only.
  FileTrace trace_file(const std::string& key);

  // Today's date as the batcher judges it (options.today, else the database clock in UTC).
  std::string today();

 private:
  PipelineOptions options_;
  PipelineLayout layout_;
  std::shared_ptr<sql::Database> db_;
};

}  // namespace warden::pipeline
