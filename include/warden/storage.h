// Crash-safe storage of synced datasets (DESIGN.md "Data directory", seed 001 component 3).
//
// The data directory holds:
//   wrds/<dataset>/<table>/<year>.parquet     the data (published by rename, never in place)
//   manifests/<dataset>.json                  the only truth about what a dataset holds
//   sync_progress/<dataset>.json              checkpoints for resume (the seed's SyncProgress)
//   schemas/<dataset>.json                    the schema registry
//   quarantine/<UTC stamp>_<operation>/       failed or suspect files, with reason.json
//
// Every state file here is written with the audited atomic write (temp, fsync, rename,
// directory fsync), so a reader sees the old or the new version, never a mix. A manifest
// names only files that are already durable: the sync publishes a partition first and
// commits the manifest after. Writers hold the dataset lock (include/warden/lock.h); the
// manifest carries the writer's fencing token and refuses a commit from an older one.
//
// Strict parsing: a state file with a missing or mistyped field is malformed; it is never
// silently rewritten. Errors are MalformedLockFileError (code kMalformed) naming the file and
// the command that repairs it.
//
// Thread-safety: the free functions are thread-safe (they share nothing); the value types are
// plain data. Everything that writes blocks on fsync.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "warden/posix_storage.h"

namespace warden {

// ---- Names and paths ------------------------------------------------------------------

// Validates a dataset (or table) name: [A-Za-z0-9_-], 1-64 characters, not starting with
// '-'. So "/", "..", "." and anything that could leave the data directory are refused.
// Throws InvalidArgumentError naming the name and the rule.
void validate_dataset_name(const std::string& name);

// Where each thing lives under one data directory. Pure path arithmetic: creates nothing.
class DataLayout {
 public:
  explicit DataLayout(std::string data_dir) : root_(std::move(data_dir)) {}
  const std::string& root() const { return root_; }
  std::string dataset_dir(const std::string& dataset) const { return root_ + "/wrds/" + dataset; }
  std::string table_dir(const std::string& dataset, const std::string& table) const {
    return dataset_dir(dataset) + "/" + table;
  }
  // Relative to root(), as the manifest records it: "wrds/crsp/daily/2020.parquet".
  static std::string partition_relative_path(const std::string& dataset, const std::string& table,
                                             int year);
  std::string absolute(const std::string& relative) const { return root_ + "/" + relative; }
  std::string manifest_path(const std::string& dataset) const {
    return root_ + "/manifests/" + dataset + ".json";
  }
  std::string progress_path(const std::string& dataset) const {
    return root_ + "/sync_progress/" + dataset + ".json";
  }
  std::string schema_path(const std::string& dataset) const {
    return root_ + "/schemas/" + dataset + ".json";
  }
  std::string quarantine_dir() const { return root_ + "/quarantine"; }
  std::string lock_dir() const { return root_ + "/locks"; }

 private:
  std::string root_;
};

// ---- Schemas --------------------------------------------------------------------------

// A column as the source and Parquet name it: "prc" "DECIMAL(12,4)".
struct ColumnSchema {
  std::string name;
  std::string type;
  bool operator==(const ColumnSchema&) const = default;
};

struct TableSchema {
  std::vector<ColumnSchema> columns;
  // SHA-256 (hex, first 16 chars) of "name type\n" for each column in order: equal schemas
  // have equal hashes, and a reordering is a different schema.
  std::string hash() const;
  nlohmann::json to_json() const;
  // Throws MalformedLockFileError naming `where` on a bad shape.
  static TableSchema from_json(const nlohmann::json& json, const std::string& where);
  bool operator==(const TableSchema&) const = default;
};

// How the source's schema differs from the registered one.
struct SchemaDrift {
  std::vector<ColumnSchema> added;
  std::vector<ColumnSchema> removed;
  // (registered, now) pairs with the same name and a different type.
  std::vector<std::pair<ColumnSchema, ColumnSchema>> type_changed;
  bool breaking() const { return !removed.empty() || !type_changed.empty(); }
  bool any() const { return breaking() || !added.empty(); }
  // One line for messages: "removed: ret DECIMAL(10,6); type changed: prc DECIMAL -> DOUBLE".
  std::string describe() const;
};
SchemaDrift detect_drift(const TableSchema& registered, const TableSchema& now);

// The schema registry: schemas/<dataset>.json, {"version":1,"dataset":..,"schema_version":N,
// "registered_at":..,"columns":[...]} .
class SchemaRegistry {
 public:
  explicit SchemaRegistry(DataLayout layout) : layout_(std::move(layout)) {}
  // The registered schema; nullopt when none yet. Throws MalformedLockFileError.
  std::optional<TableSchema> get_schema(const std::string& dataset) const;
  // Registers (atomically replaces) the dataset's schema, bumping schema_version.
  void register_schema(const std::string& dataset, const TableSchema& schema);
  // The drift policy (seed 001): no schema yet -> register it; new columns -> accept, emit
  // "sync.schema.columns_added" (warning) and register; a removed column or a type change ->
  // throw SchemaError naming every difference and the fix, registering nothing.
  // Returns the drift found (empty on first registration).
  SchemaDrift validate_schema(const std::string& dataset, const TableSchema& now);

 private:
  DataLayout layout_;
};

// ---- Manifest -------------------------------------------------------------------------

// One published partition file.
struct ManifestFile {
  std::string path;  // relative to the data directory
  int year = 0;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  std::string sha256;
  std::string min_date;  // "YYYY-MM-DD", "" for a partition without rows
  std::string max_date;
  std::string schema_hash;
  // The source's fingerprint of the partition when it was pulled (count and a cheap
  // aggregate), compared by incremental sync to find revised history.
  uint64_t source_rows = 0;
  std::string source_fingerprint;
  std::string synced_at;  // RFC 3339 UTC
  bool operator==(const ManifestFile&) const = default;
};

// manifests/<dataset>.json, version 1.
struct Manifest {
  int version = 1;
  std::string dataset;
  std::string table;
  uint64_t generation = 0;     // +1 on each commit
  uint64_t fencing_token = 0;  // the token of the writer that committed it
  std::string committed_at;
  TableSchema schema;
  std::vector<ManifestFile> files;  // sorted by year, one per year
  bool operator==(const Manifest&) const = default;

  // Inserts or replaces the entry for file.year.
  void upsert(const ManifestFile& file);
  const ManifestFile* find_year(int year) const;
  uint64_t total_rows() const;
  uint64_t total_bytes() const;

  std::string to_json() const;
  // Strict parse. Throws MalformedLockFileError naming `path`, the problem, and the command
  // that restores a good copy.
  static Manifest parse(const std::string& text, const std::string& path);
};

// Loads manifests/<dataset>.json; nullopt when it does not exist. Throws
// MalformedLockFileError for a corrupt one (never treated as absent: that would lose data).
std::optional<Manifest> load_manifest(const DataLayout& layout, const std::string& dataset);

// Commits `manifest` atomically under fencing token `token`: refuses with StaleTokenError
// (nothing written) when the committed manifest carries a newer token; otherwise sets
// generation = committed generation + 1, fencing_token = token, committed_at = now, and
// publishes it (failpoints "storage.manifest.after_temp_write" and
// "storage.manifest.after_rename"). The caller guarantees every file it names is durable.
// Returns the committed manifest. Blocks on fsync.
Manifest commit_manifest(const DataLayout& layout, Manifest manifest, uint64_t token);

// ---- Progress checkpoints -------------------------------------------------------------

// sync_progress/<dataset>.json: the seed's SyncProgress, plus what a resume must match.
struct SyncProgress {
  std::string dataset;
  std::string operation;  // "full" or "incremental"
  std::string started_at;
  std::string last_checkpoint;
  std::vector<int> years_completed;
  std::vector<int> years_remaining;
  uint64_t total_rows_synced = 0;
  std::string status;  // "running", "paused", "completed", "failed"
  std::string error;   // why it failed ("" otherwise)
  uint64_t fencing_token = 0;

  std::string to_json() const;
  static SyncProgress parse(const std::string& text, const std::string& path);
};
std::optional<SyncProgress> load_progress(const DataLayout& layout, const std::string& dataset);
// Atomically saves (failpoints "sync.checkpoint.after_temp_write"/"...after_rename").
void save_progress(const DataLayout& layout, const SyncProgress& progress);

// ---- Quarantine -----------------------------------------------------------------------

// Moves `files` (absolute paths; those that no longer exist are skipped) into a new
// quarantine/<UTC stamp>_<operation>/ directory and writes reason.json there:
// {"version":1,"operation","reason","created_at","files":[{"original","name","bytes"}],
//  "details":{...}}. Nothing is deleted. Returns the directory. Throws IoError.
std::string quarantine_files(const DataLayout& layout, const std::string& operation,
                             const std::string& reason, const std::vector<std::string>& files,
                             const nlohmann::json& details = nlohmann::json::object());

struct QuarantineEntry {
  std::string dir;
  std::string operation;
  std::string reason;
  std::chrono::system_clock::time_point created_at;
};
// Every quarantine directory, oldest first (a directory without a readable reason.json is
// listed with reason "unreadable reason.json" and its modification time).
std::vector<QuarantineEntry> list_quarantine(const DataLayout& layout);
// Removes quarantine directories created more than max_age before `now` (default: 7 days).
// Returns the directories removed.
std::vector<std::string> cleanup_quarantine(const DataLayout& layout,
                                            std::chrono::system_clock::time_point now,
                                            std::chrono::hours max_age = std::chrono::hours(24 *
                                                                                            7));

// ---- Disk watermarks ------------------------------------------------------------------

enum class DiskLevel { kOk, kWarning, kCritical, kBlocked };
const char* disk_level_name(DiskLevel level);

struct DiskCheck {
  DiskLevel level = DiskLevel::kOk;
  DiskUsage usage;
  uint64_t required_bytes = 0;  // 2x the expected write
  bool enough_space = true;     // available >= required
};

// Watches the file system under the data directory. The probe is the seam tests use to
// pretend a disk is full (STYLE.md: fakes only at seams a test needs); by default statvfs.
class DiskMonitor {
 public:
  using Probe = std::function<DiskUsage(const std::string& path)>;
  struct Watermarks {
    double warning = 0.80;
    double critical = 0.90;
    double blocked = 0.95;
  };
  explicit DiskMonitor(Probe probe = disk_usage) : DiskMonitor(std::move(probe), Watermarks{}) {}
  DiskMonitor(Probe probe, Watermarks marks) : probe_(std::move(probe)), marks_(marks) {}

  // Measures `path` and classifies it; emits sync.disk.warning / .critical / .blocked when
  // at or past a watermark. Does not throw for a full disk (returns the verdict).
  DiskCheck check(const std::string& path, uint64_t expected_write_bytes) const;
  // check(), then throws Error(kDiskFull) naming the path, the usage and what to do when
  // the disk is at the blocked watermark or has less than 2x expected_write_bytes free.
  DiskCheck require(const std::string& path, uint64_t expected_write_bytes) const;

 private:
  Probe probe_;
  Watermarks marks_;
};

}  // namespace warden
