// Lease locks in a table: the Lock interface (lock.h) backed by one row per lock in table
// `warden_leases` of a shared store (sql.h: SQLite embedded, PostgreSQL across hosts).
// docs/adr/0003-lease-locks-in-a-table.md says why it is built this way.
//
//   CREATE TABLE IF NOT EXISTS warden_leases (
//     name TEXT PRIMARY KEY, writer_id TEXT NOT NULL, token BIGINT NOT NULL,
//     hostname TEXT NOT NULL, boot_id TEXT NOT NULL, pid BIGINT NOT NULL,
//     pid_start BIGINT NOT NULL, acquired_ms BIGINT NOT NULL, refreshed_ms BIGINT NOT NULL,
//     expires_ms BIGINT NOT NULL)
//
// - acquire: ONE statement inserts the row, or takes over a row whose lease has ended:
//   INSERT ... ON CONFLICT (name) DO UPDATE SET ... WHERE warden_leases.expires_ms <= <now>
//   RETURNING .... Expiry is judged there, by the database's clock (never a client's), so
//   correctness never depends on expired rows being deleted (seed 002's DynamoDB locks got
//   stuck because TTL deletion can lag by 48 hours) nor on the clocks of the hosts agreeing.
// - fencing token: db.next_token(), one sequence per store, drawn in the same transaction
//   right after the acquiring statement won the row (under its row lock): every acquisition's
//   token is above every earlier one's, across releases, expiries and force-unlocks. An
//   attempt that loses draws none.
// - refresh: extends expires_ms to <now> + lease only while the row still carries our token
//   and has not expired; release deletes the row only if it carries our token, so a holder
//   that lost its lease never touches its successor's row.
// - times: all in the row are milliseconds since the epoch on the database's clock.
//
// Thread-safety: as for every Lock (one thread at a time, plus a LockGuard's refresher under
// the guard's mutex). The Database is shared and thread-safe (sql.h), so a TableLock may share
// it with other users in the same process. A forked child must open its own Database.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "warden/lock.h"
#include "warden/sql.h"

namespace warden {

// The DDL of warden_leases (idempotent). TableLock's constructor and every function below
// pass it to db.ensure_schema() before touching the table.
extern const char* const kLeaseTableDdl;

// A lease lock in a table. The name must be a plain name as for FileLock ([A-Za-z0-9._-], not
// starting with '.'); InvalidArgumentError otherwise, and when refresh_interval is not shorter
// than the lease (options.lease is the TTL). The constructor creates the table if missing
// (SqlError when it cannot). options.remote_grace does not apply: the database's clock judges
// expiry for every host alike. The destructor releases a lease still held (errors become
// events).
class TableLock : public Lock {
 public:
  TableLock(std::shared_ptr<sql::Database> db, std::string name, LockOptions options = {});
  ~TableLock() override;
  TableLock(const TableLock&) = delete;
  TableLock& operator=(const TableLock&) = delete;

  const std::string& name() const override;
  const LockOptions& options() const override;
  // Polls with jittered backoff (5 ms doubling to 1 s, never past the holder's expiry or the
  // deadline) until the row is ours. Throws LockAcquisitionError (kLockHeld) naming the
  // holder (writer, host, pid, token, when its lease ends on the database clock) and the
  // commands that show and resolve it, when `timeout` runs out; SqlError when the store fails
  // (past its own retries); InvalidArgumentError when this object holds the lease already.
  LockToken acquire(std::chrono::milliseconds timeout) override;
  // One attempt; nullopt when a lease that has not expired is held by anyone (even by a dead
  // process on this host: only expiry or force-unlock frees a row). Throws as acquire().
  std::optional<LockToken> try_acquire() override;
  // Deletes the row if it still carries `token`. Throws LockRecoveryError if `token` is not
  // the one this object holds (nothing is touched), and LockRecoveryError (kLockLost) when the
  // row is gone or carries another token (force-unlocked, cleared, or taken over after expiry;
  // the message says which and by which token): the row is left to its new holder. Releasing
  // our own expired row (not yet taken over) deletes it. Idempotent for the token last
  // released by this object. Throws SqlError when the store fails.
  void release(const LockToken& token) override;
  // Sets expires_ms = <db now> + lease if the row still carries `token` and has not expired.
  // Returns the updated token. A hold longer than options.max_hold raises sync.lock.stale
  // (once per acquisition), as for file locks. Throws LockRecoveryError (kLockLost) naming why
  // otherwise (gone; taken over by token N; expired at T): stop writing. SqlError when the store
  // fails (a LockGuard retries those until the lease is nearly over).
  LockToken refresh(const LockToken& token) override;

  // Whether `token` holds the lease right now, judged by the database clock (the row exists,
  // carries token and writer, and has not expired). Usable inside db.transaction() to fence a
  // commit: on PostgreSQL it takes FOR SHARE on the row, so a takeover waits until that
  // transaction ends; on SQLite the transaction already excludes every other writer. It
  // reads only the database, so it may run while a LockGuard refreshes this lock from its
  // thread. Trap: a LockGuard's refresh waits for the Database, which a transaction holds
  // until it ends, so never release or destroy a LockGuard inside db.transaction() (the
  // guard's mutex and the session would wait for each other). Throws SqlError.
  bool holds(const LockToken& token);

  sql::Database& database();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Every row of warden_leases, sorted by name, judged without changing anything: backend
// "sqlite" or "postgresql", path = db.location(), record from the row, age and expires_in by
// the database clock. Verdicts: kStaleExpired once expires_ms has passed (any acquirer takes
// it over); for a holder on this host (same hostname and boot id) whose pid is gone or reused,
// kStaleDeadPid / kStalePidReused (its row still blocks others until it expires: force-unlock
// frees it now); a holder on this host before its last boot is kStaleDeadPid; otherwise kHeld
// (holder_alive when the holder is a live process on this host). resolve_command is the
// `warden lock force-unlock --name NAME --store LOCATION --yes` that frees a stale row (for a
// live remote holder: how to check it first). Throws SqlError.
std::vector<LockStatus> lease_status(sql::Database& db, const LockOptions& options = {});
// One lease by name: verdict kFree (reason "no lease row") when there is no row. Throws
// SqlError, InvalidArgumentError for a name that is not a plain name.
LockStatus inspect_lease(sql::Database& db, const std::string& name,
                         const LockOptions& options = {});

// Deletes rows whose expires_ms has passed (database clock); returns what it removed (as
// judged just before, verdict kStaleExpired). A row that has not expired is never removed,
// whatever its holder. One statement: a row refreshed or taken over meanwhile stays. Emits
// lock.lease_cleared per row. Throws SqlError.
std::vector<LockStatus> clear_expired_leases(sql::Database& db, const LockOptions& options = {});

// Removes the lease row `name` regardless of its lease. Refuses (removed=false, message says
// why) when the holder is a live process on this host, unless allow_live_holder. Only the row
// that was judged is deleted (token-checked): if it changed hands meanwhile, nothing is removed
// and the message says so. The holder learns at its next refresh that its lease is lost; the
// next acquisition gets a larger token. Nothing to remove is removed=false with before.verdict
// kFree. Emits lock.force_unlocked. Throws SqlError.
ForceUnlockResult force_unlock_lease(sql::Database& db, const std::string& name,
                                     bool allow_live_holder, const LockOptions& options = {});

// "warden lock force-unlock --name NAME --store LOCATION --yes" for a lease in db (LOCATION
// shell-quoted when needed).
std::string force_unlock_lease_command(const sql::Database& db, const std::string& name);

}  // namespace warden
