// What the guard tells operators: `guard status` (text and JSON) and the BLOCKED refusal.
#include <cmath>
#include <cstdio>

#include "warden/guard.h"

namespace warden {

std::string format_elapsed(double seconds) {
  if (seconds < 0) seconds = 0;
  char buffer[64];
  if (seconds < 60) {
    std::snprintf(buffer, sizeof buffer, "%.1fs", seconds);
    return buffer;
  }
  auto total = static_cast<long long>(std::floor(seconds));
  long long days = total / 86400, hours = (total / 3600) % 24, minutes = (total / 60) % 60,
            secs = total % 60;
  if (days > 0) {
    std::snprintf(buffer, sizeof buffer, "%lldd%lldh%02lldm%02llds", days, hours, minutes, secs);
  } else if (hours > 0) {
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm%02llds", hours, minutes, secs);
  } else {
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", minutes, secs);
  }
  return buffer;
}

namespace {

std::string what_it_holds(const DbHolder& holder) {
  std::string text;
  auto add = [&](const char* part) {
    if (!text.empty()) text += ", ";
    text += part;
  };
  if (holder.holds_guard_lease) add("the warden guard lease");
  if (holder.holds_duckdb_lock) add("DuckDB's lock on the database");
  if (holder.has_db_open) add("the database file open");
  return text;
}

std::string holder_line(const DbHolder& holder) {
  char head[96];
  std::snprintf(head, sizeof head, "pid %d (ppid %d, state %c, running %s): ", holder.pid,
                holder.ppid, holder.state, format_elapsed(holder.elapsed_seconds).c_str());
  std::string command = holder.command.empty() ? "(command line unreadable)" : holder.command;
  return std::string(head) + command + "\n      holds " + what_it_holds(holder);
}

std::string lease_line(const LockStatus& lease) {
  std::string line =
      std::string("guard lease ") + lease.path + ": " + lock_verdict_name(lease.verdict);
  if (lease.record) {
    line += " (pid " + std::to_string(lease.record->pid) + " on " + lease.record->hostname +
            ", token " + std::to_string(lease.record->token) + ", since " +
            format_utc(lease.record->acquired_at) + ")";
  }
  if (!lease.reason.empty()) line += ": " + lease.reason;
  return line;
}

}  // namespace

nlohmann::json guard_status_json(const GuardStatus& status) {
  nlohmann::json holders = nlohmann::json::array();
  for (const DbHolder& h : status.holders) {
    holders.push_back({{"pid", h.pid},
                       {"ppid", h.ppid},
                       {"state", std::string(1, h.state)},
                       {"command", h.command},
                       {"elapsed_seconds", h.elapsed_seconds},
                       {"holds_guard_lease", h.holds_guard_lease},
                       {"holds_duckdb_lock", h.holds_duckdb_lock},
                       {"has_db_open", h.has_db_open},
                       {"blocks", h.blocks()}});
  }
  nlohmann::json lease = {{"path", status.lease.path},
                          {"verdict", lock_verdict_name(status.lease.verdict)},
                          {"reason", status.lease.reason},
                          {"holder_alive", status.lease.holder_alive}};
  if (status.lease.record) {
    const LockRecord& r = *status.lease.record;
    lease["pid"] = r.pid;
    lease["hostname"] = r.hostname;
    lease["writer_id"] = r.writer_id;
    lease["token"] = r.token;
    lease["acquired_at"] = format_utc(r.acquired_at);
    lease["expires_at"] = format_utc(r.expires_at);
  }
  nlohmann::json wal = {{"path", status.paths.wal}, {"exists", status.wal_exists}};
  if (status.wal_exists) {
    wal["size"] = status.wal_size;
    if (status.wal_modified) wal["modified"] = format_utc(*status.wal_modified);
    wal["left_by_crash"] = status.crash_wal();
  }
  nlohmann::json out = {{"db", status.paths.db},
                        {"db_exists", status.db_exists},
                        {"state", status.state_name()},
                        {"held", status.held()},
                        {"stale_lease", status.stale_lease()},
                        {"crash_wal", status.crash_wal()},
                        {"lease", lease},
                        {"wal", wal},
                        {"holders", holders},
                        {"corrupt_wals", status.corrupt_wals}};
  out["duckdb_lock_pid"] =
      status.duckdb_lock_pid ? nlohmann::json(*status.duckdb_lock_pid) : nlohmann::json(nullptr);
  return out;
}

std::string format_guard_status(const GuardStatus& status) {
  const std::string db = shell_quote(status.paths.db);
  std::string out = "database " + status.paths.db + (status.db_exists ? "" : " (does not exist)") +
                    ": " + status.state_name() + "\n";
  out += "  " + lease_line(status.lease) + "\n";
  if (status.duckdb_lock_pid) {
    out += "  DuckDB lock: held by pid " + std::to_string(*status.duckdb_lock_pid) + "\n";
  } else {
    out += "  DuckDB lock: free\n";
  }
  if (status.wal_exists) {
    out += "  WAL " + status.paths.wal + ": " + std::to_string(status.wal_size) + " bytes, " +
           (status.crash_wal() ? "left by a crash (nobody holds the database; DuckDB replays it "
                                 "on the next open)"
                               : "in use by the live writer") +
           "\n";
  } else {
    out += "  WAL: none\n";
  }
  for (const std::string& corrupt : status.corrupt_wals) {
    out += "  set aside by cleanup (its transactions are NOT in the database): " + corrupt + "\n";
  }
  if (status.holders.empty()) {
    out += "  processes: none hold or have the database open\n";
  } else {
    out += "  processes:\n";
    for (const DbHolder& h : status.holders) out += "    " + holder_line(h) + "\n";
  }
  if (status.held()) {
    out += "next: wait for it, or stop it: warden guard cleanup --db " + db + "\n";
  } else if (status.stale_lease() || status.crash_wal()) {
    out += "next: warden guard cleanup --db " + db +
           " (or just run: warden guard run recovers a dead holder's lease)\n";
  } else if (status.lease.verdict == LockVerdict::kMalformed) {
    out += "next: " +
           (status.lease.resolve_command.empty()
                ? "inspect and remove " + shell_quote(status.lease.path)
                : status.lease.resolve_command) +
           "\n";
  }
  return out;
}

std::string blocked_message(const GuardStatus& status) {
  const std::string db = shell_quote(status.paths.db);
  std::string out = "BLOCKED: " + status.paths.db + " is held by a live process\n";
  bool named = false;
  std::string pids;
  for (const DbHolder& h : status.holders) {
    if (!h.blocks()) continue;
    out += "  " + holder_line(h) + "\n";
    pids += (pids.empty() ? "" : " ") + std::to_string(h.pid);
    named = true;
  }
  if (!named) {
    // Held, but the holder is not visible here: another host's lease, or a DuckDB lock
    // whose owner lives in another pid namespace.
    if (status.lease.verdict == LockVerdict::kRemoteUnverifiable ||
        status.lease.verdict == LockVerdict::kHeld) {
      out += "  " + lease_line(status.lease) + "\n";
    }
    if (status.duckdb_lock_pid) {
      out += "  DuckDB's lock is held by pid " + std::to_string(*status.duckdb_lock_pid) +
             " (not visible from here: another pid namespace or container)\n";
    }
  }
  for (const DbHolder& h : status.holders) {
    if (!h.blocks()) out += "  also open in: " + holder_line(h) + "\n";
  }
  out += "  Resolve:\n";
  out += "    1. See who holds it:   warden guard status --db " + db + "\n";
  out += "    2. If it is stuck, stop it (asks first; TERM, then KILL after a grace):\n";
  out += "                           warden guard cleanup --db " + db + "\n";
  if (!pids.empty()) out += "       or by hand:        kill -TERM " + pids + "\n";
  out += "    3. Re-run this command.\n";
  return out;
}

}  // namespace warden
