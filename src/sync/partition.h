// Private to src/sync/: publishing one year partition (steps 1-4 in include/warden/sync.h).
#pragma once

#include <string>

#include "warden/duckdb.h"
#include "warden/source.h"
#include "warden/storage.h"
#include "warden/sync.h"

namespace warden::sync_internal {

struct PartitionRequest {
  const DatasetSpec* spec = nullptr;
  int year = 0;
  TableSchema expected_schema;
  uint64_t expected_bytes = 0;  // for the 2x free-space rule
};

// Writes, checks and publishes one partition; returns its manifest entry (without the source
// fingerprint, which the caller adds). The manifest is not touched. Throws as
// SyncManager::full_sync documents; a rejected or failed temp file is quarantined (or
// removed when it holds nothing worth keeping).
ManifestFile publish_partition(Source& source, const DataLayout& layout, const SyncOptions& options,
                               duckdb::Connection& inspector, const PartitionRequest& request);

// Row count, date range and schema of a Parquet file, read by DuckDB.
struct ParquetFacts {
  uint64_t rows = 0;
  std::string min_date, max_date;
  TableSchema schema;
};
ParquetFacts inspect_parquet(duckdb::Connection& inspector, const std::string& path,
                             const std::string& date_column);

}  // namespace warden::sync_internal
