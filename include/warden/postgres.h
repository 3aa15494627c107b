// PostgreSQL (and so WRDS) through libpq: settings, connections, a small pool, a token-bucket
// rate limiter, retry of transient failures, and the COPY BINARY reader that the fast path
// decodes from.
//
// WRDS facts that shape this (DESIGN.md "Sync facts"): about 7 connections per user and a
// second-factor approval per new connection, so connections are few and reused; a slow link,
// so every query has a timeout that really cancels it on the server; tables that are views,
// so resume is by partition, not by ctid/xmin.
//
// Secrets: a password never appears in an error, event, log line or status output. Errors
// name the server as redact_conninfo() shows it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "warden/error.h"

namespace warden::pg {

// How to reach the server and how to behave on it (the seed's WRDSConfig).
struct Settings {
  // A libpq URI ("postgresql://user@host:5432/db?sslmode=require") or key=value string.
  // Anything it leaves out comes from the PG* environment, ~/.pgpass and pg_service.conf,
  // exactly as libpq resolves them.
  std::string conninfo;
  // Optional: a shell command whose first line of output is the password (a secrets
  // manager). Run once per new connection; never logged.
  std::string password_command;
  int pool_size = 3;                // connections kept open
  int max_overflow = 2;             // extra connections opened under load, closed after
  int server_connection_limit = 7;  // never more than this in total (WRDS allows ~7)
  double queries_per_minute = 0;    // token bucket; 0 = unlimited (the seed uses 10)
  int parallel_exports = 2;         // partitions a sync COPYs at once (each a connection;
                                    // the WRDS preset: 1, each connection is a Duo push)
  std::chrono::milliseconds query_timeout{std::chrono::minutes(5)};
  // A COPY of a whole partition over a slow link legitimately runs longer than a query.
  std::chrono::milliseconds copy_timeout{std::chrono::hours(2)};
  int max_retries = 3;  // transient failures retried this many times
  std::chrono::milliseconds retry_base_delay{500};
  std::chrono::milliseconds retry_max_delay{std::chrono::seconds(30)};
  std::chrono::seconds connect_timeout{30};
  std::string application_name = "warden";
  // The date ("YYYY-MM-DD") the password expires (WRDS passwords expire yearly); "" if
  // unknown. Under 30 days away raises sync.credential.expiring.
  std::string credential_expires;
};

// Overrides settings from the environment, so tuning and secrets live outside the code:
//   WARDEN_PASSWORD_COMMAND, WARDEN_PG_POOL_SIZE, WARDEN_PG_MAX_OVERFLOW,
//   WARDEN_PG_CONNECTION_LIMIT, WARDEN_PG_QPM, WARDEN_PG_QUERY_TIMEOUT and
//   WARDEN_PG_COPY_TIMEOUT (durations in seconds), WARDEN_PG_MAX_RETRIES,
//   WARDEN_PG_PARALLEL_EXPORTS (at least 1),
//   WARDEN_PG_CONNECT_TIMEOUT (seconds), WARDEN_CREDENTIAL_EXPIRES (YYYY-MM-DD).
// Throws InvalidArgumentError naming the variable when a value does not parse.
void apply_environment(Settings& settings);

// Days from `today` ("YYYY-MM-DD", UTC) until settings.credential_expires; nullopt when no
// expiry is configured. Emits sync.credential.expiring (warning; critical once expired)
// when fewer than 30 days remain. Throws InvalidArgumentError on a malformed date.
std::optional<int> check_credential_expiry(const Settings& settings, const std::string& today);

// The WRDS preset: host wrds-pgdata.wharton.upenn.edu, port 9737, dbname wrds,
// sslmode=require, user from WRDS_USERNAME or else PGUSER (left to libpq if neither);
// WARDEN_WRDS_HOST, WARDEN_WRDS_PORT and WARDEN_WRDS_DBNAME override host, port and dbname.
Settings wrds_preset();

// Parses a --source value: "wrds", "postgresql://..." / "postgres://...", or key=value
// conninfo. Throws InvalidArgumentError for anything else.
Settings settings_from_source(const std::string& source);

// The conninfo with any password removed ("password=***", "user:***@host"). Never throws.
std::string redact_conninfo(const std::string& conninfo);

// Whether a SQLSTATE is worth retrying: connection failures (08xxx), admin shutdown
// (57P01..57P03), too many connections (53300), serialization failure (40001), deadlock
// (40P01). Query cancellation (57014) is not: it is our own timeout.
bool is_transient_sqlstate(std::string_view sqlstate);

// A failure reported by the server or libpq. sqlstate is "" when libpq itself failed
// (no connection). code() is kUnavailable for transient failures (retry), kTimeout for our
// own statement timeout, kIo otherwise.
class PostgresError : public Error {
 public:
  PostgresError(ErrorCode code, const std::string& message, std::string sqlstate)
      : Error(code, message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// A clock seam for the rate limiter and backoff (tests drive time by hand).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() = 0;
  virtual void sleep_for(std::chrono::nanoseconds duration) = 0;
};
Clock& system_clock();

// Token bucket: `per_minute` tokens per minute, burst of at most max(1, per_minute/6)
// (so a full bucket allows ~10 s worth at once). acquire() blocks until a token is free.
// Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(double per_minute, Clock& clock = system_clock());
  // Blocks (through clock.sleep_for) until a query may start.
  void acquire();
  // Tokens currently available (for tests and status).
  double available();

 private:
  void refill_locked();
  double per_minute_;
  double capacity_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
  Clock& clock_;
  std::mutex mutex_;
};

// The delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped at
// max_delay, with full jitter in [delay/2, delay].
std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base,
                                        std::chrono::milliseconds max_delay);

// One PostgreSQL value as decoded from COPY BINARY.
struct ColumnInfo {
  std::string name;
  uint32_t type_oid = 0;
  std::string type_name;       // "numeric", "int4", ...
  int32_t type_modifier = -1;  // numeric: ((precision << 16) | scale) + 4
};

// What get_table_info reports about a table or view (the seed's WRDSClient.get_table_info).
struct TableColumn {
  std::string name;
  std::string type;  // as PostgreSQL formats it: "numeric(12,4)", "date", ...
  bool nullable = true;
};
struct TableInfo {
  std::string schema, table;
  std::string kind;                       // "table", "view", "materialized view", ...
  std::optional<int64_t> estimated_rows;  // from the planner's statistics; none for a view
  std::string comment;                    // the table's COMMENT, "" if none
  std::vector<TableColumn> columns;
};

class Connection;
// Columns, types, estimated rows and comment of schema.table. Throws PostgresError
// (kNotFound) naming it when it does not exist or is not visible to this user.
TableInfo get_table_info(Connection& connection, const std::string& schema,
                         const std::string& table);

// One connection. Not thread-safe (one user at a time: the pool hands it out); cancel()
// may be called from another thread.
class Connection {
 public:
  // Connects (blocking, up to connect_timeout). Throws PostgresError naming the redacted
  // server and, where it can tell, the fix (bad password, pgpass mode, unreachable host).
  explicit Connection(const Settings& settings);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs SQL that returns no rows (or ignores them). Applies the query timeout.
  void execute(const std::string& sql);
  // Runs a query and returns all rows as text (NULL -> nullopt). For small results only.
  std::vector<std::vector<std::optional<std::string>>> query_text(const std::string& sql);
  // Runs one statement with $1..$n bound to params (text; nullopt is NULL) and returns its
  // rows as text (none for a statement that returns no rows). Applies the query timeout.
  // Throws PostgresError (with the SQLSTATE) when the server refuses it.
  std::vector<std::vector<std::optional<std::string>>> query_params(
      const std::string& sql, const std::vector<std::optional<std::string>>& params);
  // Columns a query would return, without running it (a LIMIT 0 describe).
  std::vector<ColumnInfo> describe(const std::string& sql);
  // Streams `COPY (sql) TO STDOUT (FORMAT binary)`: on_data receives raw COPY chunks in
  // order (each a whole row, as libpq delivers them). Applies copy_timeout (server-side
  // statement_timeout plus a client deadline that cancels); afterwards the connection is
  // usable again.
  void copy_out_binary(const std::string& sql,
                       const std::function<void(std::string_view chunk)>& on_data);
  // Asks the server to cancel whatever this connection runs. Thread-safe. Never throws.
  void cancel() noexcept;
  // Whether the connection is still good (false after the server dropped it).
  bool healthy() const;
  // Whether the connection to the server is up (it may be inside a transaction).
  bool connected() const;
  // The server's version ("15.18") and its backend pid.
  std::string server_version() const;
  int backend_pid() const;
  const std::string& redacted_target() const;

 private:
  void copy_rows(const std::string& copy, std::chrono::milliseconds timeout,
                 const std::function<void(std::string_view chunk)>& on_data);
  struct State;
  std::unique_ptr<State> state_;
};

// A small pool: at most pool_size idle connections kept, pool_size + max_overflow (capped
// by server_connection_limit) open at once. lease() blocks until one is free. Connections
// found broken are dropped and replaced. Thread-safe.
class Pool {
 public:
  explicit Pool(Settings settings);
  ~Pool();

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> connection);
    Lease(Lease&&) noexcept;
    ~Lease();
    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  Lease lease();
  int open_connections() const;
  int idle_connections() const;
  int max_connections() const;
  // Connections opened over the pool's life (each one a second-factor prompt on WRDS).
  int connections_opened() const;
  const Settings& settings() const;

 private:
  void give_back(std::unique_ptr<Connection> connection);
  struct State;
  std::unique_ptr<State> state_;
};

// Runs fn with retries: on a PostgresError with code kUnavailable, waits backoff_delay and
// tries again, up to settings.max_retries times; emits "source.retry" events. Rethrows the
// last error, or any non-transient one at once.
void with_retries(const Settings& settings, const std::function<void(int attempt)>& fn,
                  Clock& clock = system_clock());

}  // namespace warden::pg
