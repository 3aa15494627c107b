// Private to src/sync/: publishing year partitions (steps 1-4 in include/warden/sync.h).
#pragma once

#include <string>
#include <vector>

#include "warden/duckdb.h"
#include "warden/source.h"
#include "warden/storage.h"
#include "warden/sync.h"

namespace warden::sync_internal {

struct PartitionRequest {
  const DatasetSpec* spec = nullptr;
  int year = 0;
  TableSchema expected_schema;
};

// The years first..last of a dataset exported by the source into a hidden staging directory
// beside the partitions (".years.tmp.<pid>.<random>": a reader's glob of *.parquet never
// looks inside it, and the next run under the lock removes it if this one dies). The
// destructor removes the directory and whatever is still in it.
class StagedYears {
 public:
  // Checks the disk (2x `expected_bytes` free), then has the source write the years. Throws
  // as SyncManager::full_sync documents; on a full disk the staging directory is quarantined
  // and Error(kDiskFull) names the first year, otherwise it is removed.
  StagedYears(Source& source, const DataLayout& layout, const SyncOptions& options,
              const DatasetSpec& spec, int first, int last, uint64_t expected_bytes);
  ~StagedYears();
  StagedYears(const StagedYears&) = delete;
  StagedYears& operator=(const StagedYears&) = delete;

  const std::vector<YearExport>& files() const { return files_; }

 private:
  std::string dir_;
  std::vector<YearExport> files_;
};

// Fsyncs, checksums, reads back and gates one staged file, then renames it over the year's
// partition and fsyncs the directory; returns its manifest entry (without the source
// fingerprint, which the caller adds). The manifest is not touched. A rejected or failed file
// is quarantined (or removed when it holds nothing worth keeping).
ManifestFile publish_partition(const DataLayout& layout, const SyncOptions& options,
                               duckdb::Connection& inspector, const PartitionRequest& request,
                               const YearExport& staged);

// Row count, date range and schema of a Parquet file, read by DuckDB.
struct ParquetFacts {
  uint64_t rows = 0;
  std::string min_date, max_date;
  TableSchema schema;
};
ParquetFacts inspect_parquet(duckdb::Connection& inspector, const std::string& path,
                             const std::string& date_column);

}  // namespace warden::sync_internal
