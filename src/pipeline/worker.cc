// PipelineWorker: claim a MANIFEST record, convert its files, record the outcome under the
// claim's fencing token (pipeline_worker.h).
#include <filesystem>
#include <future>
#include <thread>

#include "warden/checksum.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/pipeline_worker.h"
#include "warden/posix.h"
#include "worker_claim.h"

namespace warden::pipeline {

using worker_internal::ClaimHeartbeat;
using worker_internal::renew_claim;

struct PipelineWorker::Engine {
  duckdb::Database database;
  duckdb::Connection connection;
};

namespace {

std::string default_writer_id() {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random_u64()));
  return host_name() + ":" + std::to_string(self_identity().pid) + ":" + suffix;
}

// What differs between the inputs on disk and the manifest; nullopt when all match.
std::optional<std::string> verify_inputs(const ManifestDocument& manifest) {
  for (const ManifestEntry& entry : manifest.files) {
    const std::optional<FileInfo> info = stat_path(entry.key);
    std::string problem;
    if (!info) {
      problem = "is missing (restore it)";
    } else if (info->size != entry.size) {
      problem = "has " + std::to_string(info->size) + " bytes, the manifest recorded " +
                std::to_string(entry.size);
    } else if (const std::string sha256 = sha256_file(entry.key); sha256 != entry.sha256) {
      problem = "changed since it was registered (sha256 " + sha256 + ", the manifest recorded " +
                entry.sha256 + ")";
    }
    if (!problem.empty()) {
      return "verify inputs of manifest " + manifest.id + ": " + entry.key + " " + problem +
             "; if the file was fixed on purpose, run 'warden pipeline reprocess-failed --id " +
             manifest.id + "' once the manifest has failed";
    }
  }
  return std::nullopt;
}

// A worker killed before its rename leaves its hidden temp output behind; the claim holder
// owns the output's name, so it clears them (a stalled old claimant's rename then fails).
void remove_stale_temps(const std::string& target) {
  const std::string dir = parent_directory(target);
  const std::string prefix = "." + std::filesystem::path(target).filename().string() + ".tmp.";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) remove_file(entry.path().string());
  }
}

class ClaimLostError : public LockRecoveryError {
 public:
  using LockRecoveryError::LockRecoveryError;
};

}  // namespace

PipelineWorker::PipelineWorker(Pipeline& pipeline, WorkerOptions options)
    : pipeline_(pipeline), options_(std::move(options)) {
  using std::chrono::milliseconds;
  if (options_.max_attempts < 1) {
    throw InvalidArgumentError("pipeline work: --max-attempts must be at least 1, not " +
                               std::to_string(options_.max_attempts));
  }
  if (options_.claim_lease < milliseconds(100)) {
    throw InvalidArgumentError("pipeline work: --claim-lease must be at least 100ms, not " +
                               std::to_string(options_.claim_lease.count()) + "ms");
  }
  if (options_.heartbeat_interval.count() == 0) {
    options_.heartbeat_interval = options_.claim_lease / 3;
  }
  if (options_.heartbeat_interval >= options_.claim_lease) {
    throw InvalidArgumentError(
        "pipeline work: the heartbeat interval must be shorter than the "
        "claim lease");
  }
  if (options_.writer_id.empty()) options_.writer_id = default_writer_id();
  const unsigned threads = options_.threads > 0 ? static_cast<unsigned>(options_.threads)
                                                : std::max(1u, std::thread::hardware_concurrency());
  duckdb::Database database = duckdb::Database::in_memory({{"threads", std::to_string(threads)}});
  duckdb::Connection connection = database.connect();
  engine_.reset(new Engine{std::move(database), std::move(connection)});
}

PipelineWorker::~PipelineWorker() = default;

std::optional<ManifestClaim> PipelineWorker::claim() {
  sql::Database& db = pipeline_.db();
  const std::string now = db.now_ms();
  std::optional<ManifestClaim> claimed;
  std::vector<std::pair<std::string, std::string>> given_up;  // (id, error)
  db.transaction([&] {
    claimed.reset();
    given_up.clear();
    for (;;) {
      // PostgreSQL: SKIP LOCKED hands concurrent claimers different rows without waiting;
      // the WHERE is re-checked on the locked row, so a claim committed meanwhile is skipped.
      // SQLite: BEGIN IMMEDIATE already admits one writer at a time.
      sql::Rows rows = db.query(
          "SELECT id, date_prefix, path, status, attempts, claim_writer FROM pipeline_manifests"
          " WHERE status = 'pending' OR (status = 'processing' AND claim_expires_ms < " +
          now + ") ORDER BY created_ms, id LIMIT 1" +
          (db.dialect() == sql::Dialect::kPostgres ? " FOR UPDATE SKIP LOCKED" : ""));
      if (rows.empty()) return;
      const sql::Row& row = rows[0];
      const std::string id = row[0].value_or("");
      const bool expired = row[3].value_or("") == kManifestProcessing;
      const int64_t attempts = std::stoll(row[4].value_or("0"));
      const std::string previous_writer = row[5].value_or("?");
      if (expired && attempts >= options_.max_attempts) {
        const std::string error =
            "claimed " + std::to_string(attempts) +
            " times and every claimant stopped before finishing (the last, " + previous_writer +
            ", let its claim expire); fix the cause, then run 'warden pipeline reprocess-failed "
            "--id " +
            id + "'";
        db.query(
            "UPDATE pipeline_manifests SET status = 'failed', error = $2,"
            " claim_expires_ms = NULL, updated_ms = " +
                now + " WHERE id = $1 AND status = 'processing'",
            {id, error});
        given_up.emplace_back(id, error);
        continue;
      }
      const uint64_t token = db.next_token();
      sql::Rows updated = db.query(
          "UPDATE pipeline_manifests SET status = 'processing', claim_token = CAST($2 AS BIGINT),"
          " claim_writer = $3, claim_expires_ms = " +
              now + " + CAST($4 AS BIGINT), attempts = attempts + 1, updated_ms = " + now +
              " WHERE id = $1 RETURNING attempts",
          {id, std::to_string(token), options_.writer_id,
           std::to_string(options_.claim_lease.count())});
      claimed = ManifestClaim{id,
                              row[1].value_or(""),
                              row[2].value_or(""),
                              token,
                              std::stoll(updated.at(0).at(0).value_or("0")),
                              expired ? previous_writer : ""};
      return;
    }
  });
  for (const auto& [id, error] : given_up) {
    emit_event(EventLevel::kError, "pipeline.manifest.failed", "manifest " + id + ": " + error,
               {{"manifest_id", id}});
  }
  if (!claimed) return std::nullopt;
  if (!claimed->took_over_from.empty()) {
    emit_event(EventLevel::kWarning, "pipeline.claim.expired",
               "manifest " + claimed->id + ": the claim of " + claimed->took_over_from +
                   " expired; taken over by " + options_.writer_id,
               {{"manifest_id", claimed->id},
                {"previous_writer", claimed->took_over_from},
                {"writer", options_.writer_id},
                {"token", claimed->token}});
  }
  emit_event(EventLevel::kInfo, "pipeline.manifest.claimed",
             "manifest " + claimed->id + " claimed by " + options_.writer_id + " (attempt " +
                 std::to_string(claimed->attempts) + ")",
             {{"manifest_id", claimed->id},
              {"writer", options_.writer_id},
              {"token", claimed->token},
              {"attempts", claimed->attempts}});
  WARDEN_FAILPOINT("pipeline.work.after_claim");
  return claimed;
}

WorkResult PipelineWorker::process(const ManifestClaim& claim) {
  sql::Database& db = pipeline_.db();
  const auto started = SteadyClock::now();
  WorkResult result;
  result.id = claim.id;
  result.attempts = claim.attempts;
  const std::string target = pipeline_.layout().parquet_path(claim.date, claim.id);
  auto finish = [&] {
    result.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
    return result;
  };
  try {
    make_directories(parent_directory(target));
    remove_stale_temps(target);
    const ManifestDocument manifest = load_manifest_document(claim.manifest_path);
    if (manifest.id != claim.id) {
      throw VerificationError("manifest " + claim.id + ": its file " + claim.manifest_path +
                              " holds manifest " + manifest.id);
    }
    std::vector<std::string> inputs;
    for (const ManifestEntry& entry : manifest.files) inputs.push_back(entry.key);

    ClaimHeartbeat heartbeat(db, claim, options_.claim_lease, options_.heartbeat_interval);
    // Hashing the inputs overlaps DuckDB's conversion; the verdict gates the rename.
    std::future<std::optional<std::string>> verified =
        std::async(std::launch::async, [&manifest] { return verify_inputs(manifest); });
    auto before_publish = [&] {
      if (std::optional<std::string> problem = verified.get()) throw VerificationError(*problem);
      WARDEN_FAILPOINT("pipeline.work.after_output_write");
      // The last check before the output becomes visible (and a fresh lease for the mark).
      if (heartbeat.lost() || !renew_claim(db, claim.id, claim.token, options_.claim_lease)) {
        throw ClaimLostError("manifest " + claim.id + ": claim token " +
                             std::to_string(claim.token) + " was taken over before the rename");
      }
    };
    ConvertResult converted;
    try {
      converted = convert_ndjson_to_parquet(engine_->connection, inputs, target, options_.convert,
                                            before_publish);
    } catch (const MalformedInputError&) {
      // An input that no longer matches its manifest explains a parse error better.
      if (verified.valid()) {
        if (std::optional<std::string> problem = verified.get()) throw VerificationError(*problem);
      }
      throw;
    }
    WARDEN_FAILPOINT("pipeline.work.after_rename");
    heartbeat.stop();
    const std::string now = db.now_ms();
    sql::Rows marked = db.query(
        "UPDATE pipeline_manifests SET status = 'completed', output = $3, output_checksum = $4,"
        " output_rows = CAST($5 AS BIGINT), error = NULL, claim_expires_ms = NULL,"
        " updated_ms = " +
            now +
            " WHERE id = $1 AND claim_token = CAST($2 AS BIGINT) AND status = 'processing'"
            " RETURNING id",
        {claim.id, std::to_string(claim.token), target, converted.sha256,
         std::to_string(converted.rows)});
    if (marked.empty()) {
      throw ClaimLostError("manifest " + claim.id + ": claim token " + std::to_string(claim.token) +
                           " was taken over before the mark");
    }
    result.status = kManifestCompleted;
    result.output = target;
    result.rows = converted.rows;
    result.bytes = converted.bytes;
    result.checksum = converted.sha256;
    finish();
    emit_event(
        EventLevel::kInfo, "pipeline.manifest.completed",
        "manifest " + claim.id + ": " + std::to_string(converted.rows) + " rows -> " + target,
        {{"manifest_id", claim.id},
         {"output", target},
         {"rows", converted.rows},
         {"bytes", converted.bytes},
         {"sha256", converted.sha256},
         {"token", claim.token},
         {"seconds", result.seconds}});
  } catch (const ClaimLostError& e) {
    result.status = "claim_lost";
    result.error = e.what();
    emit_event(EventLevel::kWarning, "pipeline.claim.lost",
               std::string(e.what()) + "; its output is the newer claimant's to write",
               {{"manifest_id", claim.id}, {"token", claim.token}});
  } catch (const sql::SqlError&) {
    throw;  // the store itself failed: nothing can be recorded; the claim will expire
  } catch (const Error& e) {
    fail_or_retry(claim, e.what(), result);
  }
  return finish();
}

void PipelineWorker::fail_or_retry(const ManifestClaim& claim, const std::string& error,
                                   WorkResult& result) {
  sql::Database& db = pipeline_.db();
  const std::string now = db.now_ms();
  sql::Rows rows = db.query(
      "UPDATE pipeline_manifests SET status = CASE WHEN attempts < CAST($3 AS BIGINT)"
      " THEN 'pending' ELSE 'failed' END, error = $4, claim_expires_ms = NULL, updated_ms = " +
          now +
          " WHERE id = $1 AND claim_token = CAST($2 AS BIGINT) AND status = 'processing'"
          " RETURNING status",
      {claim.id, std::to_string(claim.token), std::to_string(options_.max_attempts), error});
  result.error = error;
  if (rows.empty()) {
    result.status = "claim_lost";
    emit_event(EventLevel::kWarning, "pipeline.claim.lost",
               "manifest " + claim.id + ": claim token " + std::to_string(claim.token) +
                   " was taken over; this attempt's error is not recorded: " + error,
               {{"manifest_id", claim.id}, {"token", claim.token}});
    return;
  }
  result.status = rows[0][0].value_or("");
  if (result.status == kManifestFailed) {
    // An output published by an earlier attempt that crashed before its mark would be an
    // output without a completed record: the failed manifest has none.
    const std::string target = pipeline_.layout().parquet_path(claim.date, claim.id);
    if (remove_file(target)) fsync_directory(parent_directory(target));
    emit_event(EventLevel::kError, "pipeline.manifest.failed",
               "manifest " + claim.id + " failed after " + std::to_string(claim.attempts) +
                   " attempt(s): " + error +
                   "; after fixing it run 'warden pipeline "
                   "reprocess-failed --id " +
                   claim.id + "'",
               {{"manifest_id", claim.id}, {"attempts", claim.attempts}, {"error", error}});
  } else {
    emit_event(EventLevel::kWarning, "pipeline.manifest.retry",
               "manifest " + claim.id + " attempt " + std::to_string(claim.attempts) + " of " +
                   std::to_string(options_.max_attempts) + " failed (back to pending): " + error,
               {{"manifest_id", claim.id}, {"attempts", claim.attempts}, {"error", error}});
  }
}

std::optional<WorkResult> PipelineWorker::work_one() {
  std::optional<ManifestClaim> claimed = claim();
  if (!claimed) return std::nullopt;
  return process(*claimed);
}

std::vector<WorkResult> PipelineWorker::work_until_idle(
    const std::function<void(const WorkResult&)>& on_result) {
  std::vector<WorkResult> results;
  while (std::optional<WorkResult> result = work_one()) {
    if (on_result) on_result(*result);
    results.push_back(std::move(*result));
  }
  return results;
}

void PipelineWorker::work_loop(const std::function<bool()>& should_stop,
                               std::chrono::milliseconds idle_poll,
                               const std::function<void(const WorkResult&)>& on_result) {
  auto pause = [&] {
    const auto until = SteadyClock::now() + idle_poll;
    while (!should_stop() && SteadyClock::now() < until) {
      std::this_thread::sleep_for(std::min(idle_poll, std::chrono::milliseconds(100)));
    }
  };
  while (!should_stop()) {
    try {
      std::optional<WorkResult> result = work_one();
      if (result) {
        if (on_result) on_result(*result);
        continue;
      }
    } catch (const Error& e) {
      emit_event(EventLevel::kError, "pipeline.worker.store_error",
                 std::string("pipeline work: ") + e.what() + " (retrying)",
                 {{"writer", options_.writer_id}});
    }
    pause();
  }
}

}  // namespace warden::pipeline
