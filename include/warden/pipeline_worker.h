// The pipeline's worker half (seed 002's Step Functions + Glue job, on one machine or many):
// claim a pending MANIFEST record, convert the manifest's NDJSON files into one Parquet file
// with DuckDB, and mark the record completed, fenced by the claim's token.
//
// Conversion (convert_ndjson_to_parquet) is usable on its own: DuckDB reads the exact list of
// files (read_json, newline-delimited, union_by_name) and writes one Parquet file through the
// audited publication steps: a hidden temp name in the target's directory, fsync, a caller
// hook (the worker checks its claim there), rename over the target, fsync of the directory.
// So a reader never sees a half-written output, and a retry rewrites the same name.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "warden/duckdb.h"
#include "warden/error.h"

namespace warden::pipeline {

// An input file DuckDB could not read as NDJSON (bad JSON, a missing file, an unreadable
// one). code(): kMalformed. file() is the input named by DuckDB ("" when it named none); the
// message reads "convert <target>: malformed NDJSON in <file>: <DuckDB's reason>".
class MalformedInputError : public Error {
 public:
  MalformedInputError(const std::string& message, std::string file)
      : Error(ErrorCode::kMalformed, message), file_(std::move(file)) {}
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

struct ConvertOptions {
  // Parquet compression codec as DuckDB names it: "zstd" (default: small files, and on
  // NDJSON the writer is not the bottleneck), "snappy", "uncompressed", ...
  std::string compression = "zstd";
  // Rows per Parquet row group; 0 keeps DuckDB's default (122,880).
  uint64_t row_group_size = 0;
};

struct ConvertResult {
  uint64_t rows = 0;   // rows written (= NDJSON records read)
  uint64_t bytes = 0;  // size of the published Parquet file
  std::string sha256;  // lowercase hex SHA-256 of the published file
};

// Converts `inputs` (NDJSON paths, read in that order; at least one) into one Parquet file
// published at `target`, whose directory must exist. Columns are the union of every file's
// keys (union_by_name), so a field that appears in only some files is kept, never dropped.
// `connection` is the caller's (its database's `threads` setting sets the parallelism); no
// table is created in it. `before_publish`, when set, runs after the complete temp file is
// durable and right before the rename: throwing from it publishes nothing.
// Failpoint "pipeline.convert.after_temp_write" (the durable temp file, not yet renamed).
// On success the file at `target` is durable (its directory fsynced) and the result
// describes it. On failure nothing is published, the temp file is removed and any older
// file at `target` is untouched; throws MalformedInputError for an input DuckDB cannot read,
// duckdb::DuckDbError for other DuckDB failures (kDiskFull for ENOSPC), IoError for the
// file system, or whatever before_publish throws. Blocks for the whole conversion.
ConvertResult convert_ndjson_to_parquet(duckdb::Connection& connection,
                                        const std::vector<std::string>& inputs,
                                        const std::string& target,
                                        const ConvertOptions& options = {},
                                        const std::function<void()>& before_publish = {});

}  // namespace warden::pipeline
