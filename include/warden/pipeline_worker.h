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

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "warden/duckdb.h"
#include "warden/error.h"
#include "warden/pipeline.h"
#include "warden/sql.h"

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

// ---- The worker -------------------------------------------------------------------------
//
// The life of a MANIFEST record under workers (pipeline.h's pipeline_manifests):
//   pending --claim--> processing --convert, publish, token-checked mark--> completed
//                          |  conversion error: attempts < max_attempts --> pending (error kept)
//                          |                    attempts >= max_attempts --> failed
//                          '--claim_expires_ms passed (a dead or stalled worker)--> claimed again
// A claim is one statement under the store's writer serialisation (PostgreSQL: the candidate
// row is taken with FOR UPDATE SKIP LOCKED, so concurrent claimers never wait on each other
// nor pick the same row; SQLite: BEGIN IMMEDIATE). It takes a fresh fencing token
// (db.next_token()), sets claim_writer and claim_expires_ms = now + claim_lease on the
// DATABASE clock, and counts an attempt. While converting, a heartbeat thread extends
// claim_expires_ms, token-checked. Right before the output's rename the claim is checked (and
// renewed) again; the completed mark is a token-checked UPDATE: a worker whose claim was
// taken over marks nothing (event pipeline.claim.lost) and leaves the output to the newer
// claimant, which rewrites the same name. So every manifest has at most one output file and
// its completed record names the fencing token that produced it.
//
// The one window the file system cannot fence: a worker that stalls longer than the whole
// claim lease between its pre-rename check and the rename itself (microseconds apart) could
// rename an equivalent output (same rows) over the newer claimant's; the recorded checksum
// would then not match the file and `warden pipeline trace` reports it. Keep the lease far
// above any plausible stall (default 60 s, renewed every lease/3).
//
// An expired claim of a record that already used max_attempts (its claimants keep dying:
// a file that crashes the converter) is marked failed instead of being claimed again.

struct WorkerOptions {
  // Claims a manifest may take (including those whose worker died) before it is failed.
  int max_attempts = 3;
  // How long a claim lasts without a heartbeat (the database clock judges it).
  std::chrono::milliseconds claim_lease{std::chrono::seconds(60)};
  // How often the heartbeat renews the claim; 0 = claim_lease / 3.
  std::chrono::milliseconds heartbeat_interval{0};
  // Recorded in claim_writer; "" = "<hostname>:<pid>:<8 random hex>".
  std::string writer_id;
  // DuckDB threads for the conversion; 0 = one per core.
  int threads = 0;
  ConvertOptions convert;
};

// A claim this worker holds (returned by claim()).
struct ManifestClaim {
  std::string id;
  std::string date;
  std::string manifest_path;  // the manifest file
  uint64_t token = 0;         // the claim's fencing token
  int64_t attempts = 0;       // including this claim
  // Set when this claim took over an expired one: who held it.
  std::string took_over_from;
};

// What happened to one claimed manifest.
struct WorkResult {
  std::string id;
  // "completed"; "pending" (failed, will be retried); "failed" (gave up after max_attempts);
  // "claim_lost" (taken over by another worker: nothing recorded by this one).
  std::string status;
  int64_t attempts = 0;
  std::string output;  // the Parquet file (completed)
  uint64_t rows = 0, bytes = 0;
  std::string checksum;
  std::string error;  // why it is not completed
  double seconds = 0;
};

// One record reprocess-failed put back to pending.
struct Reprocessed {
  std::string id;
  std::string manifest_path;
  // Inputs whose size or checksum changed since registration (fixed files): the manifest
  // file and their pipeline_files rows now carry the new values.
  std::vector<std::string> changed_files;
};

class PipelineWorker {
 public:
  // Uses the pipeline's store and layout (the pipeline must outlive the worker). Opens an
  // in-memory DuckDB for conversions. Throws InvalidArgumentError for options out of range
  // (max_attempts < 1, a claim lease under 100 ms, a heartbeat not shorter than the lease),
  // DuckDbError if DuckDB cannot start.
  PipelineWorker(Pipeline& pipeline, WorkerOptions options = {});
  ~PipelineWorker();
  PipelineWorker(const PipelineWorker&) = delete;
  PipelineWorker& operator=(const PipelineWorker&) = delete;

  const std::string& writer_id() const { return options_.writer_id; }

  // Claims the oldest claimable manifest: pending, or processing with an expired claim (the
  // latter emits pipeline.claim.expired; if it already used max_attempts it is marked failed
  // instead and the next candidate is tried). nullopt when none is claimable. Emits
  // pipeline.manifest.claimed. Failpoint "pipeline.work.after_claim" (claimed, nothing
  // converted). Throws SqlError. Blocks on the store only.
  std::optional<ManifestClaim> claim();

  // Converts a claimed manifest and records the outcome: reads the manifest file, verifies
  // every input's size and SHA-256 against it (a mismatch fails the attempt with a
  // VerificationError naming the file and the command that accepts a fixed file), converts
  // into layout().parquet_path(date, id) with a heartbeat running, checks the claim before
  // the rename, and marks completed if the claim is still ours (events
  // pipeline.manifest.completed, .retry, .failed, pipeline.claim.lost). Failpoints
  // "pipeline.work.after_output_write" (durable temp output, before the claim check and
  // rename), "pipeline.work.after_rename" (output published, record not yet completed).
  // Conversion and verification errors are outcomes (WorkResult), not exceptions; throws
  // SqlError when the store fails (the claim then simply expires). Blocks.
  WorkResult process(const ManifestClaim& claim);

  // claim() then process(); nullopt when nothing was claimable.
  std::optional<WorkResult> work_one();
  // `work --once`: work_one() until nothing is claimable (a manifest sent back to pending is
  // claimed again, so each ends completed or failed unless another worker holds it).
  // on_result is called after each manifest. Returns every result.
  std::vector<WorkResult> work_until_idle(
      const std::function<void(const WorkResult&)>& on_result = {});
  // `work --loop`: work_one() forever, sleeping `idle_poll` when nothing is claimable, until
  // should_stop() returns true (checked between manifests and every poll). A store error is
  // reported (event pipeline.worker.store_error) and retried after idle_poll.
  void work_loop(const std::function<bool()>& should_stop, std::chrono::milliseconds idle_poll,
                 const std::function<void(const WorkResult&)>& on_result = {});

  // `reprocess-failed`: puts failed manifests (all, or the one `id`) back to pending with
  // attempts 0 and no error, after re-reading each manifest's input files: a file whose size
  // or checksum changed (it was fixed) gets its new values in the manifest file (rewritten
  // atomically, first) and in its pipeline_files row (in the same transaction as the status).
  // Throws Error(kNotFound) for an `id` that has no record, InvalidArgumentError for one that
  // is not failed (the message gives its status), IoError (naming the file and the manifest)
  // when an input is missing or unreadable (that manifest stays failed), SqlError.
  std::vector<Reprocessed> reprocess_failed(const std::optional<std::string>& id = std::nullopt);

 private:
  struct Engine;
  void fail_or_retry(const ManifestClaim& claim, const std::string& error, WorkResult& result);

  Pipeline& pipeline_;
  WorkerOptions options_;
  std::unique_ptr<Engine> engine_;  // the DuckDB database and connection
};

}  // namespace warden::pipeline
