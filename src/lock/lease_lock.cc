// TableLock: acquire, refresh and release of one lease row (lease_lock.h; ADR 0003).
#include <algorithm>
#include <cstdio>
#include <thread>

#include "lease_internal.h"
#include "warden/events.h"
#include "warden/failpoint.h"

namespace warden {

using lease_internal::LeaseRow;

namespace {

// Insert the row, or take over one whose lease has ended, in one statement: the database
// decides atomically, under its own row lock, with its own clock. A conflicting row that has
// not expired makes the DO UPDATE's WHERE false, and RETURNING gives nothing.
std::string acquire_sql(const sql::Database& db) {
  const std::string now = db.now_ms();
  return "INSERT INTO warden_leases (name, writer_id, token, hostname, boot_id, pid, pid_start, "
         "acquired_ms, refreshed_ms, expires_ms) VALUES ($1, $2, CAST($3 AS BIGINT), $4, $5, "
         "CAST($6 AS BIGINT), CAST($7 AS BIGINT), " +
         now + ", " + now + ", " + now +
         " + CAST($8 AS BIGINT)) ON CONFLICT (name) DO UPDATE SET writer_id = excluded.writer_id, "
         "token = excluded.token, hostname = excluded.hostname, boot_id = excluded.boot_id, "
         "pid = excluded.pid, pid_start = excluded.pid_start, acquired_ms = excluded.acquired_ms, "
         "refreshed_ms = excluded.refreshed_ms, expires_ms = excluded.expires_ms "
         "WHERE warden_leases.expires_ms <= " +
         now + " RETURNING token, acquired_ms, expires_ms";
}

int64_t integer(const sql::Value& value) { return std::stoll(value.value()); }

}  // namespace

struct TableLock::State {
  State(std::shared_ptr<sql::Database> database, std::string lock_name, LockOptions opts)
      : db(std::move(database)), name(std::move(lock_name)), options(std::move(opts)) {}

  std::shared_ptr<sql::Database> db;
  std::string name;
  LockOptions options;
  std::optional<LockToken> held;
  uint64_t last_released_token = 0;
  std::string last_released_writer;
  bool stale_event_sent = false;

  std::string where() const { return name + " (" + db->location() + ", table warden_leases)"; }

  nlohmann::json fields(const LockToken& t) const {
    return {{"lock", name},
            {"backend", lease_internal::backend_name(*db)},
            {"store", db->location()},
            {"token", t.token},
            {"writer_id", t.writer_id},
            {"pid", self_identity().pid},
            {"hostname", host_name()},
            {"expires_at", format_utc(t.expires_at)}};
  }

  LockToken token_from(const sql::Row& row, const std::string& writer) const {
    LockToken t;
    t.name = name;
    t.writer_id = writer;
    t.token = static_cast<uint64_t>(integer(row.at(0)));
    t.acquired_at = lease_internal::from_ms(integer(row.at(1)));
    t.expires_at = lease_internal::from_ms(integer(row.at(2)));
    return t;
  }

  // Seed 000's alert: a hold longer than max_hold, even while refreshed (the database's
  // refresh time is expires_at - lease).
  void note_long_hold(const LockToken& t) {
    if (stale_event_sent || t.expires_at - options.lease - t.acquired_at <= options.max_hold) {
      return;
    }
    stale_event_sent = true;
    emit_event(EventLevel::kWarning, "sync.lock.stale",
               "lease " + name + " has been held for longer than " +
                   format_duration(options.max_hold) + " by pid " +
                   std::to_string(self_identity().pid) + " on host " + host_name() + " (token " +
                   std::to_string(t.token) + "): check that the job is really still working",
               fields(t));
  }

  // Why the row no longer carries `token`, told from what is there now.
  std::string why_lost(const LockToken& token) {
    auto row = lease_internal::read_row(*db, name);
    if (!row) return "its row is gone (force-unlocked, or cleared after it expired)";
    if (row->record.token != token.token || row->record.writer_id != token.writer_id) {
      return "taken over by token " + std::to_string(row->record.token) + " (" +
             lease_internal::describe_holder(*row) +
             "): it expired or was force-unlocked, and another writer acquired it";
    }
    return "it expired at " + format_utc(row->record.expires_at) + ", " +
           format_duration(std::chrono::milliseconds(row->expires_ms - row->now_ms)) +
           " ago on the database clock, before this refresh";
  }

  [[noreturn]] void lose(const std::string& operation, const LockToken& token,
                         const std::string& why) {
    held.reset();
    std::string message = operation + " lease " + where() + ": token " +
                          std::to_string(token.token) + " no longer holds it: " + why +
                          ". Stop writing: another writer may hold it now (token " +
                          std::to_string(token.token) + " is fenced off)";
    emit_event(EventLevel::kError, "lock.lost", message, fields(token));
    throw LockRecoveryError(message, ErrorCode::kLockLost);
  }

  // One attempt. The fencing token is drawn AFTER the acquiring statement won the row, in
  // the same transaction, while that statement's row lock is held. Trap: drawn before (as a
  // value of the INSERT), a slow attempt could draw 5, stall, and win after a faster one drew
  // 6, held and released the lease: tokens would go down (seen on PostgreSQL, where the
  // sequence is outside transactions). Drawn after, every winner draws after its predecessor
  // committed, so above its token; a lost race draws none.
  std::optional<LockToken> attempt() {
    if (held) {
      throw InvalidArgumentError("acquire lease " + where() +
                                 ": this TableLock already holds it (release it first)");
    }
    const ProcessIdentity& me = self_identity();
    const std::string writer = options.writer_id.empty() ? random_uuid() : options.writer_id;
    const std::string sql = acquire_sql(*db);
    sql::Rows rows;
    db->transaction([&] {
      rows.clear();  // a rerun of a transaction that failed transiently starts afresh
      sql::Rows won =
          db->query(sql, {name, writer, "0", me.hostname, me.boot_id, std::to_string(me.pid),
                          std::to_string(me.start_time), std::to_string(options.lease.count())});
      if (won.empty()) return;
      const uint64_t token = db->next_token();
      rows = db->query(
          "UPDATE warden_leases SET token = CAST($2 AS BIGINT) WHERE name = $1 AND "
          "writer_id = $3 RETURNING token, acquired_ms, expires_ms",
          {name, std::to_string(token), writer});
    });
    if (rows.empty()) return std::nullopt;
    LockToken t = token_from(rows.front(), writer);
    held = t;
    stale_event_sent = false;
    WARDEN_FAILPOINT("lock.lease.acquire.after_commit");
    emit_event(EventLevel::kInfo, "lock.acquired",
               "acquired lease " + name + " (token " + std::to_string(t.token) + ")", fields(t));
    return t;
  }

  [[noreturn]] void give_up(const std::optional<LeaseRow>& holder,
                            std::chrono::milliseconds waited) {
    const std::string store = lease_internal::shell_quote(db->location());
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1fs", static_cast<double>(waited.count()) / 1000.0);
    throw LockAcquisitionError(
        "acquire lease " + where() + ": held by " +
        (holder ? lease_internal::describe_holder(*holder) : std::string("another writer")) +
        "; gave up after waiting " + seconds + ". See `warden lock status --store " + store +
        "`; if that holder is gone, `" + force_unlock_lease_command(*db, name) +
        "` frees it now (otherwise it is free once its lease ends)");
  }
};

TableLock::TableLock(std::shared_ptr<sql::Database> db, std::string name, LockOptions options) {
  validate_lock_name(name);
  if (options.lease.count() <= 0 || options.refresh_interval.count() <= 0 ||
      options.refresh_interval >= options.lease) {
    throw InvalidArgumentError("lease " + name + ": refresh_interval must be positive and " +
                               "shorter than the lease");
  }
  if (!db) throw InvalidArgumentError("lease " + name + ": no database");
  db->ensure_schema(kLeaseTableDdl);
  state_ = std::make_unique<State>(std::move(db), std::move(name), std::move(options));
}

TableLock::~TableLock() {
  if (state_ && state_->held) {
    try {
      release(*state_->held);
    } catch (const std::exception& e) {
      emit_event(EventLevel::kError, "lock.release_failed",
                 std::string("release on destruction failed: ") + e.what(),
                 {{"lock", state_->name}, {"store", state_->db->location()}});
    }
  }
}

const std::string& TableLock::name() const { return state_->name; }
const LockOptions& TableLock::options() const { return state_->options; }
sql::Database& TableLock::database() { return *state_->db; }

std::optional<LockToken> TableLock::try_acquire() { return state_->attempt(); }

LockToken TableLock::acquire(std::chrono::milliseconds timeout) {
  const auto start = SteadyClock::now();
  const auto deadline = start + timeout;
  std::chrono::milliseconds backoff{5};
  bool announced = false;
  for (;;) {
    if (auto token = state_->attempt()) return *token;
    // Who holds it, for the wait and the error. It may be gone already: then look again.
    std::optional<LeaseRow> holder = lease_internal::read_row(*state_->db, state_->name);
    const auto now = SteadyClock::now();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left.count() <= 0) {
      state_->give_up(holder, std::chrono::duration_cast<std::chrono::milliseconds>(now - start));
    }
    if (!holder) continue;
    if (!announced) {
      announced = true;
      emit_event(EventLevel::kDebug, "lock.waiting",
                 "waiting for lease " + state_->name + ": held by " +
                     lease_internal::describe_holder(*holder),
                 {{"lock", state_->name}, {"store", state_->db->location()}});
    }
    // Jittered exponential backoff, so waiters on many hosts do not retry in step; never
    // sleeping past the holder's expiry (by the database clock), when it can be taken over.
    auto jittered = std::chrono::milliseconds(
        backoff.count() / 2 + static_cast<int64_t>(random_u64() % (backoff.count() + 1)));
    auto until_expiry =
        std::chrono::milliseconds(std::max<int64_t>(holder->expires_ms - holder->now_ms, 0) + 1);
    std::this_thread::sleep_for(std::min({jittered, until_expiry, left}));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

void TableLock::release(const LockToken& given) {
  // A copy: `given` may be our own held token (the destructor's), which is reset below.
  const LockToken token = given;
  State& s = *state_;
  if (!s.held) {
    if (token.token == s.last_released_token && token.writer_id == s.last_released_writer) {
      return;  // released already
    }
    throw LockRecoveryError("release lease " + s.where() + ": token " +
                            std::to_string(token.token) + " (writer " + token.writer_id +
                            ") is not held through this TableLock; the lease was left untouched");
  }
  if (token.token != s.held->token || token.writer_id != s.held->writer_id) {
    throw LockRecoveryError(
        "release lease " + s.where() + ": token " + std::to_string(token.token) + " (writer " +
        token.writer_id + ") is not the current holder's (token " + std::to_string(s.held->token) +
        ", writer " + s.held->writer_id + "); the lease was left untouched");
  }
  // Token-checked: a holder whose row was taken over never deletes its successor's row.
  sql::Rows deleted = s.db->query(
      "DELETE FROM warden_leases WHERE name = $1 AND token = CAST($2 AS BIGINT) AND "
      "writer_id = $3 RETURNING token",
      {s.name, std::to_string(token.token), token.writer_id});
  if (deleted.empty()) s.lose("release", token, s.why_lost(token));
  s.held.reset();
  s.last_released_token = token.token;
  s.last_released_writer = token.writer_id;
  emit_event(EventLevel::kInfo, "lock.released",
             "released lease " + s.name + " (token " + std::to_string(token.token) + ")",
             s.fields(token));
}

LockToken TableLock::refresh(const LockToken& given) {
  const LockToken token = given;  // see release()
  State& s = *state_;
  if (!s.held || token.token != s.held->token || token.writer_id != s.held->writer_id) {
    throw LockRecoveryError("refresh lease " + s.where() + ": token " +
                            std::to_string(token.token) + " (writer " + token.writer_id +
                            ") is not held through this TableLock; stop writing");
  }
  const std::string now = s.db->now_ms();
  // Only while the row is ours and has not expired: once it has expired, someone may have
  // judged it free, so extending it now could overlap a successor.
  sql::Rows rows =
      s.db->query("UPDATE warden_leases SET refreshed_ms = " + now + ", expires_ms = " + now +
                      " + CAST($4 AS BIGINT) WHERE name = $1 AND token = CAST($2 AS BIGINT) AND "
                      "writer_id = $3 AND expires_ms > " +
                      now + " RETURNING token, acquired_ms, expires_ms",
                  {s.name, std::to_string(token.token), token.writer_id,
                   std::to_string(s.options.lease.count())});
  if (rows.empty()) s.lose("refresh", token, s.why_lost(token));
  LockToken t = s.token_from(rows.front(), token.writer_id);
  s.held = t;
  s.note_long_hold(t);
  emit_event(EventLevel::kDebug, "lock.refreshed",
             "refreshed lease " + s.name + " until " + format_utc(t.expires_at), s.fields(t));
  return t;
}

bool TableLock::holds(const LockToken& token) {
  State& s = *state_;
  // FOR SHARE: a takeover's DO UPDATE waits for the caller's transaction, so a commit fenced
  // by this check lands before any successor can start. SQLite's write transaction already
  // excludes every other writer.
  const std::string lock_row = s.db->dialect() == sql::Dialect::kPostgres ? " FOR SHARE" : "";
  sql::Rows rows = s.db->query(
      "SELECT token FROM warden_leases WHERE name = $1 AND token = CAST($2 AS BIGINT) AND "
      "writer_id = $3 AND expires_ms > " +
          std::string(s.db->now_ms()) + lock_row,
      {s.name, std::to_string(token.token), token.writer_id});
  return !rows.empty();
}

}  // namespace warden
