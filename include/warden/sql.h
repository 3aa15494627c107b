// A small SQL session over the two state stores warden uses for shared state (lease locks,
// the pipeline's records): SQLite, embedded, a file next to the data; and PostgreSQL, for
// several hosts. Callers write one SQL text for both: parameters are $1..$n, times are
// integers of milliseconds since the epoch taken from the database's clock (now_ms()), and
// fencing tokens come from one sequence per database (next_token()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "warden/error.h"

namespace warden::pg {
struct Settings;
}

namespace warden::sql {

enum class Dialect { kSqlite, kPostgres };

using Value = std::optional<std::string>;  // text; nullopt is NULL
using Row = std::vector<Value>;
using Rows = std::vector<Row>;
using Params = std::vector<Value>;

// A failed statement. code(): kUnavailable for a transient failure (busy database, dropped
// connection, serialization failure) worth retrying, kIo otherwise. The message names the
// store (redacted), the statement's first words and the database's own message.
class SqlError : public Error {
 public:
  SqlError(ErrorCode code, const std::string& message, std::string sqlstate = "")
      : Error(code, message), sqlstate_(std::move(sqlstate)) {}
  // PostgreSQL's SQLSTATE, or "SQLITE_<name>" for SQLite; "" when unknown.
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// One connection to a store. Thread-safe: calls from several threads are serialised (a
// transaction holds the session until it ends), so a heartbeat thread may share it.
class Database {
 public:
  virtual ~Database() = default;

  virtual Dialect dialect() const = 0;
  // "sqlite:/abs/path.sqlite" or the redacted PostgreSQL target, for messages and status.
  virtual const std::string& location() const = 0;

  // Runs one statement with $1..$n bound to params (text, or NULL) and returns its rows
  // as text (none for a statement without RETURNING). Numbers read back alike on both
  // backends; booleans do not ('t' vs '1'), so compare in SQL instead. Throws SqlError.
  virtual Rows query(const std::string& sql, const Params& params = {}) = 0;
  // Runs fn inside one transaction that serialises writers (SQLite: BEGIN IMMEDIATE;
  // PostgreSQL: READ COMMITTED, so take row locks with FOR UPDATE where it matters) and
  // commits when fn returns. If fn throws, rolls back and rethrows. A transient failure
  // (SQLITE_BUSY past the busy timeout, serialization failure, deadlock) reruns fn, up to
  // 5 times in all, so fn must be safe to rerun. Nested calls join the outer transaction.
  virtual void transaction(const std::function<void()>& fn) = 0;
  // Creates what `ddl` (statements separated by ';', each idempotent: IF NOT EXISTS) describes,
  // once, even when several processes open the store at the same moment (PostgreSQL: under
  // an advisory lock). Throws SqlError.
  virtual void ensure_schema(const std::string& ddl) = 0;

  // The next fencing token of this store: only ever grows, across processes and hosts that
  // share it. Inside a transaction, it is part of it. Throws SqlError.
  virtual uint64_t next_token() = 0;

  // An SQL expression for the database's clock, in integer milliseconds since the epoch.
  // Expiry is always judged with it, never with the client's clock.
  virtual const char* now_ms() const = 0;
  // Milliseconds since the epoch on the database's clock.
  int64_t clock_ms();

 protected:
  // The transaction loop of every backend, as transaction() promises it: when `depth` > 0 (a
  // nested call) just runs fn; otherwise begin(), depth = 1, fn(), commit(), depth = 0. If
  // anything throws, calls rollback() (which must not throw, and resets depth); a SqlError
  // with code kUnavailable reruns the whole, up to 5 attempts with 10, 20, 30, 40 ms between;
  // anything else is rethrown at once. The caller holds the lock that guards depth.
  static void run_transaction(int& depth, const std::function<void()>& fn,
                              const std::function<void()>& begin,
                              const std::function<void()>& commit,
                              const std::function<void()>& rollback);
};

// Opens (creating it and its directory if missing) the SQLite store at path: WAL journal,
// synchronous=FULL (a committed transaction survives a power cut), a 30 s busy timeout.
// Throws SqlError naming the path when it cannot be opened or is not a SQLite database.
std::unique_ptr<Database> open_sqlite(const std::string& path);

// Connects to PostgreSQL with settings (pg::Connection's timeouts and errors apply).
// Throws pg::PostgresError naming the server when it cannot connect.
std::unique_ptr<Database> open_postgres(const pg::Settings& settings);

// Opens the store a user names: "sqlite:PATH", a path ending in .sqlite/.db, or
// "postgresql://..." / "postgresql:KEY=VALUE ..." (environment settings as for sources).
// "" means the SQLite file at default_sqlite_path. Throws InvalidArgumentError for a spec
// it cannot read, SqlError or pg::PostgresError when the store cannot be opened.
std::unique_ptr<Database> open_store(const std::string& spec,
                                     const std::string& default_sqlite_path);

}  // namespace warden::sql
