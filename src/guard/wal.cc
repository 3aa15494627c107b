// Opening a database once so DuckDB replays a WAL left by a crash, and setting aside a WAL
// it cannot replay (never deleting it: the transactions in it exist nowhere else).
#include <filesystem>

#include "warden/duckdb.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/guard.h"

namespace warden {

const char* wal_outcome_name(WalReplayResult::Outcome outcome) {
  switch (outcome) {
    case WalReplayResult::Outcome::kNoWal:
      return "no_wal";
    case WalReplayResult::Outcome::kReplayed:
      return "replayed";
    case WalReplayResult::Outcome::kCorruptKept:
      return "corrupt_kept";
    case WalReplayResult::Outcome::kCorruptSetAside:
      return "corrupt_set_aside";
    case WalReplayResult::Outcome::kOpenFailed:
      return "open_failed";
  }
  return "unknown";
}

namespace {

// Opening replays the WAL; CHECKPOINT merges it into the database file and removes it.
void open_and_checkpoint(const std::string& db) {
  auto database = duckdb::Database::open(db);
  auto connection = database.connect();
  connection.execute("CHECKPOINT");
}

// DuckDB names the WAL when replaying it fails ("Failure while replaying WAL file ...").
bool is_wal_failure(const std::string& error) { return error.find("WAL") != std::string::npos; }

// "F.wal.corrupt.<stamp>", with a counter if a set-aside of the same second exists.
std::string set_aside_wal(const GuardPaths& paths) {
  const std::string base =
      paths.wal + ".corrupt." + utc_stamp_for_filename(std::chrono::system_clock::now());
  for (int attempt = 0;; ++attempt) {
    std::string target = attempt == 0 ? base : base + "." + std::to_string(attempt);
    bool source_missing = false;
    if (rename_noreplace(paths.wal, target, &source_missing)) {
      fsync_directory(parent_directory(paths.wal));
      return target;
    }
    if (source_missing) {
      throw IoError("set aside " + paths.wal + ": it vanished (another cleanup?)", 0,
                    ErrorCode::kNotFound);
    }
  }
}

}  // namespace

WalReplayResult replay_wal(const GuardPaths& paths, bool allow_set_aside) {
  WalReplayResult result;
  const bool had_wal = stat_path(paths.wal).has_value();
  try {
    open_and_checkpoint(paths.db);
    result.outcome =
        had_wal ? WalReplayResult::Outcome::kReplayed : WalReplayResult::Outcome::kNoWal;
    return result;
  } catch (const Error& e) {
    result.error = e.what();
  }
  if (!had_wal || !is_wal_failure(result.error)) {
    result.outcome = WalReplayResult::Outcome::kOpenFailed;
    return result;
  }
  if (!allow_set_aside) {
    result.outcome = WalReplayResult::Outcome::kCorruptKept;
    return result;
  }
  result.set_aside_path = set_aside_wal(paths);
  WARDEN_FAILPOINT("guard.wal.after_set_aside");
  emit_event(EventLevel::kError, "guard.wal.set_aside",
             "DuckDB cannot replay " + paths.wal + "; moved to " + result.set_aside_path +
                 ": the transactions in it are NOT in the database",
             {{"db", paths.db},
              {"wal", paths.wal},
              {"set_aside", result.set_aside_path},
              {"error", result.error}});
  try {
    open_and_checkpoint(paths.db);
    result.outcome = WalReplayResult::Outcome::kCorruptSetAside;
  } catch (const Error& e) {
    result.outcome = WalReplayResult::Outcome::kOpenFailed;
    result.error += "; then, without the WAL: " + std::string(e.what());
  }
  return result;
}

}  // namespace warden
