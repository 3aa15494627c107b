// The claim's heartbeat: token-checked renewals of claim_expires_ms (worker_claim.h).
#include "warden/events.h"
#include "worker_claim.h"

namespace warden::pipeline::worker_internal {

bool renew_claim(sql::Database& db, const std::string& id, uint64_t token,
                 std::chrono::milliseconds lease) {
  const std::string now = db.now_ms();
  return !db.query("UPDATE pipeline_manifests SET claim_expires_ms = " + now +
                       " + CAST($3 AS BIGINT), updated_ms = " + now +
                       " WHERE id = $1 AND claim_token = CAST($2 AS BIGINT)"
                       " AND status = 'processing' RETURNING id",
                   {id, std::to_string(token), std::to_string(lease.count())})
              .empty();
}

ClaimHeartbeat::ClaimHeartbeat(sql::Database& db, const ManifestClaim& claim,
                               std::chrono::milliseconds lease, std::chrono::milliseconds interval)
    : db_(db), id_(claim.id), token_(claim.token), lease_(lease), interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

void ClaimHeartbeat::stop() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ClaimHeartbeat::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    try {
      if (!renew_claim(db_, id_, token_, lease_)) {
        lost_ = true;
        emit_event(EventLevel::kWarning, "pipeline.claim.lost",
                   "manifest " + id_ + ": claim token " + std::to_string(token_) +
                       " was taken over by another worker; this conversion will not be recorded",
                   {{"manifest_id", id_}, {"token", token_}});
        return;
      }
    } catch (const std::exception& e) {
      emit_event(EventLevel::kWarning, "pipeline.claim.heartbeat_failed",
                 "manifest " + id_ + ": could not renew the claim (retrying): " + e.what(),
                 {{"manifest_id", id_}, {"token", token_}});
    }
    lock.lock();
  }
}

}  // namespace warden::pipeline::worker_internal
