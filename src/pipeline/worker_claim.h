// Private to src/pipeline/: the claim's store statements and its heartbeat thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "warden/pipeline_worker.h"
#include "warden/sql.h"

namespace warden::pipeline::worker_internal {

// Extends the claim to now + lease (database clock) if `token` still holds it: the record is
// processing with this claim_token. An expired claim nobody took over is still ours (no
// one else has a token for it), so it is renewed too. Returns false when the claim is lost.
// Throws SqlError.
bool renew_claim(sql::Database& db, const std::string& id, uint64_t token,
                 std::chrono::milliseconds lease);

// Renews the claim every `interval` on its own thread until stopped or the claim is lost
// (lost() then stays true). A failing store is retried at the next beat (the claim has the
// rest of its lease to survive it). Shares `db` (sql::Database serialises its callers).
class ClaimHeartbeat {
 public:
  ClaimHeartbeat(sql::Database& db, const ManifestClaim& claim, std::chrono::milliseconds lease,
                 std::chrono::milliseconds interval);
  ~ClaimHeartbeat() { stop(); }
  ClaimHeartbeat(const ClaimHeartbeat&) = delete;
  ClaimHeartbeat& operator=(const ClaimHeartbeat&) = delete;

  bool lost() const { return lost_.load(); }
  // Stops and joins the thread. Idempotent.
  void stop();

 private:
  void run();

  sql::Database& db_;
  std::string id_;
  uint64_t token_;
  std::chrono::milliseconds lease_, interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> lost_{false};
  std::thread thread_;
};

}  // namespace warden::pipeline::worker_internal
