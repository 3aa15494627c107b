// The pre-check: who holds a DuckDB database file (guard lease, DuckDB's lock, /proc).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "warden/guard.h"

namespace warden {

namespace fs = std::filesystem;

bool GuardStatus::held() const {
  // A remote lease within its lease time cannot be checked from here: treat it as held,
  // as the lock core does (it is not stale).
  return lease.verdict == LockVerdict::kHeld || lease.verdict == LockVerdict::kRemoteUnverifiable ||
         duckdb_lock_pid.has_value();
}

const char* GuardStatus::state_name() const {
  if (held()) return "held";
  if (stale_lease() || crash_wal() || lease.verdict == LockVerdict::kMalformed) return "crashed";
  return "free";
}

namespace {

std::vector<std::string> find_corrupt_wals(const GuardPaths& paths) {
  std::vector<std::string> found;
  std::error_code error;
  fs::path directory = fs::path(paths.db).parent_path();
  std::string prefix = fs::path(paths.wal).filename().string() + ".corrupt.";
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) found.push_back(entry.path().string());
  }
  std::sort(found.begin(), found.end());
  return found;
}

DbHolder describe(pid_t pid) {
  DbHolder holder;
  holder.pid = pid;
  if (auto stat = process_stat(pid)) {
    holder.ppid = stat->ppid;
    holder.state = stat->state;
  }
  holder.command = process_command_line(pid);
  holder.elapsed_seconds = process_age_seconds(pid).value_or(0);
  return holder;
}

}  // namespace

GuardStatus inspect_guard(const std::string& db_path, pid_t ignore_pid, bool scan_open_files) {
  if (ignore_pid == 0) ignore_pid = ::getpid();
  GuardStatus status;
  status.paths = guard_paths(db_path);
  const GuardPaths& paths = status.paths;
  status.db_exists = stat_path(paths.db).has_value();
  if (auto wal = stat_path(paths.wal)) {
    status.wal_exists = true;
    status.wal_size = wal->size;
    status.wal_modified = wal->modified;
  }
  status.lease = inspect_file_lock(paths.lock_dir, paths.lock_name, guard_lock_options());
  status.corrupt_wals = find_corrupt_wals(paths);

  // DuckDB locks the database file and, while writing, the WAL (classic fcntl locks).
  // F_GETLK gives one holder even for a lock /proc/locks cannot show (another namespace).
  // Trap: F_GETLK never reports the caller's own locks, and closing any fd of a file drops
  // this process's fcntl locks on it: callers must not hold F open through DuckDB themselves.
  status.duckdb_lock_pid = posix_lock_holder(paths.db);
  if (!status.duckdb_lock_pid && status.wal_exists) {
    status.duckdb_lock_pid = posix_lock_holder(paths.wal);
  }

  std::map<pid_t, DbHolder> holders;
  auto holder = [&](pid_t pid) -> DbHolder& {
    auto it = holders.find(pid);
    if (it == holders.end()) it = holders.emplace(pid, describe(pid)).first;
    return it->second;
  };
  if (status.lease.verdict == LockVerdict::kHeld && status.lease.record &&
      status.lease.record->hostname == host_name() && status.lease.record->pid != ignore_pid) {
    holder(status.lease.record->pid).holds_guard_lease = true;
  }
  std::vector<pid_t> lockers = posix_lock_holders(paths.db);
  for (pid_t pid : posix_lock_holders(paths.wal)) lockers.push_back(pid);
  if (status.duckdb_lock_pid && *status.duckdb_lock_pid > 0) {
    lockers.push_back(*status.duckdb_lock_pid);
  }
  for (pid_t pid : lockers) {
    if (pid != ignore_pid) holder(pid).holds_duckdb_lock = true;
  }
  std::vector<pid_t> openers;
  if (scan_open_files) {
    openers = processes_with_file_open(paths.db);
    for (pid_t pid : processes_with_file_open(paths.wal)) openers.push_back(pid);
  }
  for (pid_t pid : openers) {
    if (pid != ignore_pid) holder(pid).has_db_open = true;
  }
  for (auto& [pid, entry] : holders) {
    // A holder that exited between the scans is not a holder.
    if (pid_exists(pid) && entry.state != 'Z') status.holders.push_back(entry);
  }
  return status;
}

}  // namespace warden
