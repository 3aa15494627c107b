// Looking at lease rows without changing them, and the two ways an operator removes rows:
// clear_expired_leases (only what has expired) and force_unlock_lease (one row, judged first).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "lease_internal.h"
#include "warden/events.h"

namespace warden {

const char* const kLeaseTableDdl =
    "CREATE TABLE IF NOT EXISTS warden_leases ("
    " name TEXT PRIMARY KEY, writer_id TEXT NOT NULL, token BIGINT NOT NULL,"
    " hostname TEXT NOT NULL, boot_id TEXT NOT NULL, pid BIGINT NOT NULL,"
    " pid_start BIGINT NOT NULL, acquired_ms BIGINT NOT NULL, refreshed_ms BIGINT NOT NULL,"
    " expires_ms BIGINT NOT NULL)";

namespace lease_internal {

const char* const kColumns =
    "name, writer_id, token, hostname, boot_id, pid, pid_start, acquired_ms, refreshed_ms, "
    "expires_ms";

namespace {

int64_t parse_integer(const sql::Value& value, const char* column, const sql::Database& db) {
  const char* text = value ? value->c_str() : "";
  char* end = nullptr;
  errno = 0;
  long long parsed = std::strtoll(text, &end, 10);
  if (!value || value->empty() || *end != '\0' || errno == ERANGE) {
    throw sql::SqlError(ErrorCode::kIo, "read warden_leases in " + db.location() + ": column " +
                                            column + " holds \"" + (value ? *value : "NULL") +
                                            "\", not an integer (a hand-edited row?)");
  }
  return parsed;
}

std::string text_of(const sql::Value& value) { return value ? *value : std::string(); }

}  // namespace

WallClock::time_point from_ms(int64_t ms) {
  return WallClock::time_point(std::chrono::milliseconds(ms));
}

int64_t to_ms(WallClock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

const char* backend_name(const sql::Database& db) {
  return db.dialect() == sql::Dialect::kSqlite ? "sqlite" : "postgresql";
}

std::string shell_quote(const std::string& text) {
  bool plain = !text.empty();
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              std::string_view("_/.:=@%+,-").find(c) != std::string_view::npos;
    plain = plain && ok;
  }
  if (plain) return text;
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

LeaseRow parse_row(const sql::Row& row, const sql::Database& db) {
  if (row.size() != 11) {
    throw sql::SqlError(ErrorCode::kInternal, "read warden_leases in " + db.location() + ": " +
                                                  std::to_string(row.size()) +
                                                  " columns, expected 11");
  }
  LeaseRow out;
  LockRecord& r = out.record;
  r.name = text_of(row[0]);
  r.writer_id = text_of(row[1]);
  r.token = static_cast<uint64_t>(parse_integer(row[2], "token", db));
  r.hostname = text_of(row[3]);
  r.boot_id = text_of(row[4]);
  r.pid = static_cast<pid_t>(parse_integer(row[5], "pid", db));
  r.pid_start = static_cast<uint64_t>(parse_integer(row[6], "pid_start", db));
  r.acquired_at = from_ms(parse_integer(row[7], "acquired_ms", db));
  r.refreshed_at = from_ms(parse_integer(row[8], "refreshed_ms", db));
  out.expires_ms = parse_integer(row[9], "expires_ms", db);
  r.expires_at = from_ms(out.expires_ms);
  out.now_ms = parse_integer(row[10], "now", db);
  return out;
}

std::optional<LeaseRow> read_row(sql::Database& db, const std::string& name) {
  sql::Rows rows = db.query(std::string("SELECT ") + kColumns + ", " + db.now_ms() +
                                " FROM warden_leases WHERE name = $1",
                            {name});
  if (rows.empty()) return std::nullopt;
  return parse_row(rows.front(), db);
}

std::string describe_holder(const LeaseRow& row) {
  const LockRecord& r = row.record;
  const int64_t left = row.expires_ms - row.now_ms;
  return "pid " + std::to_string(r.pid) + " on host " + r.hostname + " (writer " + r.writer_id +
         ", token " + std::to_string(r.token) + ", since " + format_utc(r.acquired_at) +
         ", lease until " + format_utc(r.expires_at) + ": " +
         (left > 0 ? "ends in " + format_duration(std::chrono::milliseconds(left))
                   : "ended " + format_duration(std::chrono::milliseconds(left)) + " ago") +
         " on the database clock)";
}

LockStatus describe_row(const sql::Database& db, const LeaseRow& row, const LockOptions& options) {
  const LockRecord& r = row.record;
  LockStatus status;
  status.backend = backend_name(db);
  status.name = r.name;
  status.path = db.location();
  status.record = r;
  status.age = std::chrono::milliseconds(row.now_ms - to_ms(r.acquired_at));
  status.expires_in = std::chrono::milliseconds(row.expires_ms - row.now_ms);
  status.max_hold_exceeded = status.age > options.max_hold;
  const std::string pid = "pid " + std::to_string(r.pid);
  const std::string until =
      format_utc(r.expires_at) + " (in " +
      format_duration(std::chrono::milliseconds(row.expires_ms - row.now_ms)) + ", database clock)";
  // A holder on this host is checked the way file locks are: same boot, same pid, same start
  // time (a reused pid is not the holder). Its row still blocks others until it expires:
  // expiry alone frees a row, so a wrong liveness guess can never hand out the lease twice.
  if (row.expired()) {
    status.verdict = LockVerdict::kStaleExpired;
    status.reason = "its lease ended at " + format_utc(r.expires_at) + ", " +
                    format_duration(std::chrono::milliseconds(row.expires_ms - row.now_ms)) +
                    " ago on the database clock; the next acquisition takes it over";
  } else if (r.hostname == host_name()) {
    if (r.boot_id != boot_id()) {
      status.verdict = LockVerdict::kStaleDeadPid;
      status.reason = "the holder ran before this host last booted (boot id " + r.boot_id +
                      "); its row blocks others until " + until;
    } else {
      switch (check_liveness(r.holder())) {
        case Liveness::kAlive:
          status.verdict = LockVerdict::kHeld;
          status.holder_alive = true;
          status.reason = pid + " is alive and holds the lease until " + until;
          break;
        case Liveness::kPidReused:
          status.verdict = LockVerdict::kStalePidReused;
          status.reason = pid + " now belongs to another process (its start time differs from " +
                          "the holder's); the holder is gone, but its row blocks others until " +
                          until;
          break;
        default:
          status.verdict = LockVerdict::kStaleDeadPid;
          status.reason = pid + " is not running; its row blocks others until " + until;
          break;
      }
    }
  } else {
    status.verdict = LockVerdict::kHeld;
    status.reason = "held from host " + r.hostname + " until " + until +
                    "; its process cannot be checked from here";
  }
  const std::string command = force_unlock_lease_command(db, r.name);
  if (is_stale(status.verdict)) {
    status.resolve_command = command;
  } else if (status.verdict == LockVerdict::kHeld && r.hostname != host_name()) {
    status.resolve_command =
        "ssh " + r.hostname + " ps -p " + std::to_string(r.pid) + "  # if it is gone: " + command;
  }
  return status;
}

}  // namespace lease_internal

using lease_internal::LeaseRow;

namespace {

nlohmann::json fields_of(const sql::Database& db, const LockRecord& r) {
  return {{"lock", r.name},
          {"backend", lease_internal::backend_name(db)},
          {"store", db.location()},
          {"token", r.token},
          {"pid", r.pid},
          {"writer_id", r.writer_id},
          {"hostname", r.hostname},
          {"acquired_at", format_utc(r.acquired_at)},
          {"expires_at", format_utc(r.expires_at)}};
}

}  // namespace

std::string force_unlock_lease_command(const sql::Database& db, const std::string& name) {
  return "warden lock force-unlock --name " + lease_internal::shell_quote(name) + " --store " +
         lease_internal::shell_quote(db.location()) + " --yes";
}

std::vector<LockStatus> lease_status(sql::Database& db, const LockOptions& options) {
  db.ensure_schema(kLeaseTableDdl);
  sql::Rows rows = db.query(std::string("SELECT ") + lease_internal::kColumns + ", " + db.now_ms() +
                            " FROM warden_leases ORDER BY name");
  std::vector<LockStatus> out;
  for (const auto& row : rows) {
    out.push_back(lease_internal::describe_row(db, lease_internal::parse_row(row, db), options));
  }
  return out;
}

LockStatus inspect_lease(sql::Database& db, const std::string& name, const LockOptions& options) {
  validate_lock_name(name);
  db.ensure_schema(kLeaseTableDdl);
  if (auto row = lease_internal::read_row(db, name)) {
    return lease_internal::describe_row(db, *row, options);
  }
  LockStatus status;
  status.backend = lease_internal::backend_name(db);
  status.name = name;
  status.path = db.location();
  status.reason = "no lease row";
  return status;
}

std::vector<LockStatus> clear_expired_leases(sql::Database& db, const LockOptions& options) {
  db.ensure_schema(kLeaseTableDdl);
  // One statement judges and deletes: a row refreshed or taken over between a look and a
  // delete cannot be caught, because there is no look apart from the delete.
  const std::string now = db.now_ms();
  sql::Rows rows = db.query("DELETE FROM warden_leases WHERE expires_ms <= " + now + " RETURNING " +
                            lease_internal::kColumns + ", " + now);
  std::vector<LockStatus> out;
  for (const auto& row : rows) {
    LeaseRow lease = lease_internal::parse_row(row, db);
    out.push_back(lease_internal::describe_row(db, lease, options));
    emit_event(EventLevel::kInfo, "lock.lease_cleared",
               "cleared expired lease " + lease.record.name + " of " +
                   lease_internal::describe_holder(lease),
               fields_of(db, lease.record));
  }
  std::sort(out.begin(), out.end(),
            [](const LockStatus& a, const LockStatus& b) { return a.name < b.name; });
  return out;
}

ForceUnlockResult force_unlock_lease(sql::Database& db, const std::string& name,
                                     bool allow_live_holder, const LockOptions& options) {
  ForceUnlockResult result;
  result.before = inspect_lease(db, name, options);
  const LockStatus& before = result.before;
  if (before.verdict == LockVerdict::kFree) {
    result.message = "no lease " + name + " in " + db.location() + ": nothing to remove";
    return result;
  }
  const LockRecord& r = *before.record;
  if (before.verdict == LockVerdict::kHeld && before.holder_alive && !allow_live_holder) {
    result.message = "refusing to remove lease " + name + " (" + db.location() + "): pid " +
                     std::to_string(r.pid) + " is alive on this host and holds it. Stop it " +
                     "(its lease is released when it exits, or ends on its own at " +
                     format_utc(r.expires_at) + "), or add --force";
    return result;
  }
  // Token-checked: only the row that was judged goes. If it changed hands since (a takeover
  // after expiry), its new holder keeps it.
  sql::Rows deleted = db.query(
      "DELETE FROM warden_leases WHERE name = $1 AND token = CAST($2 AS BIGINT) "
      "RETURNING token",
      {name, std::to_string(r.token)});
  if (deleted.empty()) {
    auto now = lease_internal::read_row(db, name);
    result.message =
        "lease " + name + " changed hands while it was being removed (now " +
        (now ? "held by " + lease_internal::describe_holder(*now) : std::string("gone")) +
        "); nothing removed. Look again: warden lock status --store " +
        lease_internal::shell_quote(db.location());
    return result;
  }
  result.removed = true;
  result.message = "removed lease " + name + " (token " + std::to_string(r.token) + ", pid " +
                   std::to_string(r.pid) + " on host " + r.hostname + ", " +
                   lock_verdict_name(before.verdict) + ") from " + db.location() +
                   "; the next holder gets a larger token";
  emit_event(EventLevel::kWarning, "lock.force_unlocked", result.message, fields_of(db, r));
  return result;
}

std::string format_duration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count() < 0 ? -duration.count() : duration.count();
  char text[48];
  if (ms < 1000) {
    std::snprintf(text, sizeof text, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms / 1000 % 60));
  } else {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60));
  }
  return text;
}

}  // namespace warden
