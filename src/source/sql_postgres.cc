// sql::Database over PostgreSQL: the shared store when several hosts cooperate. One
// connection, reconnected when the server dropped it; transactions are READ COMMITTED.
#include <mutex>

#include "warden/postgres.h"
#include "warden/postgres_source.h"
#include "warden/sql.h"

namespace warden::sql {
namespace {

class PostgresDatabase : public Database {
 public:
  explicit PostgresDatabase(const pg::Settings& settings)
      : settings_(settings), connection_(connect(settings)) {
    location_ = "postgresql:" + connection_->redacted_target();
    ensure_schema("CREATE SEQUENCE IF NOT EXISTS warden_tokens");
  }

  Dialect dialect() const override { return Dialect::kPostgres; }
  const std::string& location() const override { return location_; }
  const char* now_ms() const override {
    // The statement's own start: one instant for the whole statement, as on SQLite.
    return "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)";
  }

  Rows query(const std::string& sql, const Params& params) override {
    std::lock_guard<std::recursive_mutex> guard(mutex_);
    if (depth_ == 0 && !connection_->healthy()) reconnect();
    try {
      return connection_->query_params(sql, params);
    } catch (const pg::PostgresError& e) {
      throw SqlError(e.code(), e.what(), e.sqlstate());
    }
  }

  void transaction(const std::function<void()>& fn) override {
    std::lock_guard<std::recursive_mutex> guard(mutex_);
    run_transaction(
        depth_, fn,
        [&] {
          if (!connection_->healthy()) reconnect();
          query("BEGIN", {});
        },
        [&] { query("COMMIT", {}); }, [&] { rollback(); });
  }

  void ensure_schema(const std::string& ddl) override {
    // CREATE ... IF NOT EXISTS races with itself in PostgreSQL (two creators both see
    // "not exists"); one advisory lock per database serialises the creators.
    transaction([&] {
      query("SELECT pg_advisory_xact_lock(7406281639)", {});
      try {
        connection_->execute(ddl);
      } catch (const pg::PostgresError& e) {
        throw SqlError(e.code(), e.what(), e.sqlstate());
      }
    });
  }

  uint64_t next_token() override {
    return std::stoull(query("SELECT nextval('warden_tokens')", {}).at(0).at(0).value());
  }

 private:
  // A store connection: CREATE ... IF NOT EXISTS on every open must not print a NOTICE
  // ("already exists, skipping") on the user's terminal each time.
  static std::unique_ptr<pg::Connection> connect(const pg::Settings& settings) {
    auto connection = std::make_unique<pg::Connection>(settings);
    connection->execute("SET client_min_messages = warning");
    return connection;
  }

  void reconnect() {
    connection_.reset();
    connection_ = connect(settings_);
  }

  void rollback() noexcept {
    depth_ = 0;
    try {
      // Not healthy(): that also means "idle", and inside a transaction it never is.
      if (connection_ && connection_->connected()) connection_->execute("ROLLBACK");
    } catch (...) {
      // The connection is gone or broken; the server rolls back on its own.
    }
  }

  pg::Settings settings_;
  std::unique_ptr<pg::Connection> connection_;
  std::string location_;
  std::recursive_mutex mutex_;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Database> open_postgres(const pg::Settings& settings) {
  return std::make_unique<PostgresDatabase>(settings);
}

std::unique_ptr<Database> open_store(const std::string& spec,
                                     const std::string& default_sqlite_path) {
  if (spec.empty()) return open_sqlite(default_sqlite_path);
  if (spec.rfind("sqlite:", 0) == 0) {
    std::string path = spec.substr(7);
    if (path.empty()) throw InvalidArgumentError("store 'sqlite:': give a path, sqlite:PATH");
    return open_sqlite(path);
  }
  for (const char* suffix : {".sqlite", ".sqlite3", ".db"}) {
    std::string s = suffix;
    if (spec.size() > s.size() && spec.compare(spec.size() - s.size(), s.size(), s) == 0) {
      return open_sqlite(spec);
    }
  }
  if (spec != "wrds" && is_postgres_source_spec(spec)) {
    return open_postgres(postgres_settings_for(spec));
  }
  throw InvalidArgumentError("store '" + pg::redact_conninfo(spec) +
                             "': expected sqlite:PATH, a .sqlite file, postgresql://... or "
                             "postgresql:KEY=VALUE ...");
}

}  // namespace warden::sql
