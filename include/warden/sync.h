// The sync engine (seed 001, components 3 and 4): datasets from a Source into year-partitioned,
// checksummed Parquet that is complete, resumable after any crash, and never half-visible.
//
// One partition, one year. For each year the engine:
//   1. checks the disk (watermarks, and 2x the partition's expected size free);
//   2. has the source write the year's rows to a hidden temp file beside the target
//      (".<year>.parquet.tmp.<pid>.<random>": readers globbing *.parquet never see it);
//   3. fsyncs it, computes its SHA-256, reads back its row count, date range and schema, and
//      runs the validation gate (rows and schema as the source said, dates in the year, and
//      the caller's validator): a temp file that fails is quarantined, nothing else changes;
//   4. renames it over "<year>.parquet" and fsyncs the directory;
//   5. commits the manifest (fenced by the lock's token), then the checkpoint.
// A crash anywhere leaves the previous file or the new complete one; the next run cleans up
// leftover temp files and resumes after the last checkpointed year. Rerunning a year replaces
// it whole: no duplicates, no gaps.
//
// Every method that writes requires the dataset lock (include/warden/lock.h): the caller
// passes the LockToken it holds, and the manifest refuses a token older than its own.
//
// Thread-safety: a SyncManager is used by one thread at a time (verify uses its own worker
// threads inside). Every method blocks until done.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "warden/lock.h"
#include "warden/source.h"
#include "warden/storage.h"

namespace warden {

// ---- Datasets -------------------------------------------------------------------------

// A dataset: a query over the source, partitioned by the year of its date column.
struct DatasetSpec {
  std::string name;         // "crsp": the dataset (and lock) name
  std::string table;        // "daily": the folder under wrds/<name>/
  std::string query;        // "SELECT permno, ... FROM crsp.dsf"
  std::string date_column;  // "date"
  int start_year = 2000;    // default first year of a full sync
  std::string description;

  // The rows of one year: the query filtered on the date column (half-open range, so an
  // index or zone map on the date column is used by the source).
  std::string partition_query(int year) const;
};

// The built-in datasets (crsp, compustat, fama_french) plus user ones from TOML.
class DatasetCatalog {
 public:
  // crsp (crsp.dsf -> daily), compustat (comp.funda -> funda, the standard INDL/STD/D/C
  // screen), fama_french (ff.factors_daily -> factors_daily).
  static DatasetCatalog builtin();
  // Adds (or replaces) datasets from a TOML file:
  //   [datasets.my_msf]
  //   query = "SELECT * FROM crsp.msf"
  //   date_column = "date"
  //   table = "monthly"        # optional, default "data"
  //   start_year = 2000        # optional
  // Throws InvalidArgumentError naming the file, the dataset and the problem.
  void load_toml(const std::string& path);
  // Throws InvalidArgumentError listing the known datasets when `name` is not one.
  const DatasetSpec& get(const std::string& name) const;
  std::vector<std::string> names() const;
  void add(DatasetSpec spec);

 private:
  std::map<std::string, DatasetSpec> specs_;
};

// ---- The config file ------------------------------------------------------------------

// Settings that belong to a site, not to code (seed 001: connection settings come from a
// config file and the environment). A TOML file:
//   source = "duckdb:/srv/wrds-sample.duckdb"   # else --source or WARDEN_SOURCE
//   datasets = "datasets.toml"                  # user datasets, relative to this file
//   full_slo_seconds = 14400                    # sync.duration.slo_breach thresholds
//   incremental_slo_seconds = 3600
// Unknown keys are refused (a typo must not silently change nothing).
struct SyncConfig {
  std::string path;  // the file read, "" when none
  std::string source;
  std::string datasets_file;  // absolute or relative to the working directory
  std::optional<std::chrono::seconds> full_slo;
  std::optional<std::chrono::seconds> incremental_slo;
};
// Reads `explicit_path` (--config) if given, else WARDEN_CONFIG if set, else
// $HOME/.config/warden/config.toml if it exists, else returns an empty config. Throws
// InvalidArgumentError naming the file and the key when a named file is missing, does not
// parse, or holds an unknown key or a value of the wrong type.
SyncConfig load_sync_config(const std::string& explicit_path);

// ---- Options, progress, results -------------------------------------------------------

// After each partition (for the progress bar, or JSON events when not on a terminal).
struct PartitionProgress {
  std::string dataset;
  int year = 0;
  size_t index = 0;  // 1-based among this run's partitions
  size_t count = 0;
  uint64_t rows = 0;        // this partition
  uint64_t rows_total = 0;  // this run so far
  double elapsed_seconds = 0;
  double rows_per_second = 0;
  double eta_seconds = 0;
};

struct SyncOptions {
  std::string data_dir = "./data";
  DiskMonitor disk;  // statvfs by default; tests inject a probe
  // The validation gate (seed: DataValidator): returns a reason to reject a partition before
  // it is published, or nullopt to accept it.
  std::function<std::optional<std::string>(const ManifestFile&)> validator;
  // Called before each commit; throws (e.g. LockRecoveryError) when the lock was lost, so
  // nothing more is committed.
  std::function<void()> check_lock;
  std::function<void(const PartitionProgress&)> on_progress;
  // sync.duration.slo_breach above these.
  std::chrono::seconds full_slo{std::chrono::hours(4)};
  std::chrono::seconds incremental_slo{std::chrono::hours(1)};
  // The "current" year an incremental sync always re-pulls; default: the source's latest.
  std::optional<int> current_year;
  int verify_threads = 0;  // 0: hardware concurrency
};

struct SyncResult {
  std::string dataset;
  std::string operation;           // "full" or "incremental"
  std::vector<int> years_written;  // pulled and published by this run
  std::vector<int> years_skipped;  // already done (resume) or unchanged (incremental)
  uint64_t rows_written = 0;
  uint64_t bytes_written = 0;
  bool resumed = false;
  double seconds = 0;
  Manifest manifest;  // as committed at the end
};

struct VerifyFinding {
  enum class Kind { kMissing, kExtra, kMismatch };
  Kind kind;
  std::string path;  // relative to the data directory
  std::string detail;
  std::string quarantine_dir;  // where a mismatched file went
};
const char* verify_finding_name(VerifyFinding::Kind kind);  // "missing", "extra", "mismatch"

struct VerifyReport {
  std::string dataset;
  uint64_t generation = 0;
  size_t files_checked = 0;
  uint64_t bytes_checked = 0;
  double seconds = 0;
  std::vector<VerifyFinding> findings;
  bool clean() const { return findings.empty(); }
  nlohmann::json to_json() const;
};

struct DatasetStatus {
  std::string dataset;
  std::optional<Manifest> manifest;
  std::optional<SyncProgress> progress;
  std::string problem;  // e.g. a malformed manifest, "" when readable
  nlohmann::json to_json() const;
};

// ---- Reading a dataset safely ------------------------------------------------------------

// A DuckDB relation over exactly the files `manifest` names:
// "read_parquet(['/data/wrds/crsp/daily/2000.parquet', ...])". A reader that names the files
// of one committed generation, instead of globbing the directory, reads what that manifest
// promises: never a temp file (hidden names), never a year that is not committed yet. Each
// file is complete (published by rename); a file replaced while a query runs is read either
// whole-old or whole-new, because the reader keeps the inode it opened. nullopt for a
// manifest without files.
std::optional<std::string> manifest_relation(const DataLayout& layout, const Manifest& manifest);

// ---- The manager ----------------------------------------------------------------------

class SyncManager {
 public:
  // `source` may be null for verify_integrity and status (they never read the source).
  SyncManager(SyncOptions options, DatasetCatalog catalog, Source* source);

  // Pulls every year in [start_year, end_year] (defaults: the dataset's start year and the
  // source's last year) and publishes each as described at the top. Resumes an interrupted
  // full sync of the same dataset after its last checkpointed year. Throws: SchemaError on a
  // breaking schema change (nothing written), Error(kDiskFull) when the disk is at the blocked
  // watermark or fills (the temp file is quarantined, the checkpoint says "failed"),
  // VerificationError when the validation gate rejects a partition, StaleTokenError when a
  // newer writer has committed; Source errors as they come. Partitions committed before a
  // failure stay committed.
  SyncResult full_sync(const std::string& dataset, std::optional<int> start_year,
                       std::optional<int> end_year, const LockToken& token);
  // Re-pulls the current year, any year missing from the manifest up to it, and any past
  // year whose source fingerprint (rows and aggregate) differs from the one recorded when it
  // was pulled: WRDS revises history. Without a manifest it is a full sync.
  SyncResult incremental_sync(const std::string& dataset, const LockToken& token);
  // Recomputes every file's SHA-256 in parallel and compares with the manifest: missing files,
  // extra *.parquet files, and mismatches (size or checksum), each quarantined. Emits
  // sync.checksum.mismatch and sync.manifest.mismatch. Never reads the source. Throws
  // Error(kNotFound) when the dataset has no manifest, MalformedLockFileError for a corrupt one.
  VerifyReport verify_integrity(const std::string& dataset, const LockToken& token);
  // What the data directory says about a dataset. Never throws for a bad manifest (reported
  // in `problem`).
  DatasetStatus status(const std::string& dataset) const;

  const DataLayout& layout() const { return layout_; }

 private:
  SyncResult sync_years(const DatasetSpec& spec, const std::string& operation,
                        std::vector<int> years, bool allow_resume, const LockToken& token);
  void remove_leftovers(const DatasetSpec& spec) const;
  Source& source() const;

  SyncOptions options_;
  DatasetCatalog catalog_;
  Source* source_;
  DataLayout layout_;
};

}  // namespace warden
