// sql::Database over SQLite: the embedded store, one file next to the data, shared by the
// processes of one host (WAL journal, writers serialised by BEGIN IMMEDIATE).
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "lazy_sqlite.h"
#include "warden/sql.h"

namespace warden::sql {
namespace {

// How long a statement waits for another connection's lock before it fails with SQLITE_BUSY.
constexpr std::chrono::milliseconds kBusyTimeout{30000};

// A functor, not &sqlite3_finalize: SQLite is resolved lazily (lazy_sqlite.h), only by calls.
struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};

// The statement's first words, enough to say which one failed without dumping it whole.
std::string statement_head(const std::string& sql) {
  std::string head;
  for (char c : sql) {
    if (head.size() >= 60) return head + "...";
    bool space = c == '\n' || c == '\t' || c == ' ';
    if (space && (head.empty() || head.back() == ' ')) continue;
    head += space ? ' ' : c;
  }
  return head;
}

std::string sqlite_code_name(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
      return "SQLITE_BUSY";
    case SQLITE_LOCKED:
      return "SQLITE_LOCKED";
    case SQLITE_CONSTRAINT:
      return "SQLITE_CONSTRAINT";
    case SQLITE_NOTADB:
      return "SQLITE_NOTADB";
    case SQLITE_CORRUPT:
      return "SQLITE_CORRUPT";
    case SQLITE_FULL:
      return "SQLITE_FULL";
    case SQLITE_CANTOPEN:
      return "SQLITE_CANTOPEN";
    case SQLITE_READONLY:
      return "SQLITE_READONLY";
    case SQLITE_IOERR:
      return "SQLITE_IOERR";
    default:
      return "SQLITE_" + std::to_string(code & 0xff);
  }
}

class SqliteDatabase : public Database {
 public:
  explicit SqliteDatabase(const std::string& path) : location_("sqlite:" + path) {
    std::error_code ignored;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
    int rc = sqlite3_open_v2(path.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      db_ = nullptr;
      throw SqlError(ErrorCode::kIo,
                     "open " + location_ + ": " + message +
                         " (check that the directory exists and is writable)",
                     sqlite_code_name(rc));
    }
    sqlite3_busy_timeout(db_, static_cast<int>(kBusyTimeout.count()));
    try {
      // journal_mode is the first statement that reads the file: a file that is not a
      // SQLite database fails here, not later in the middle of some work.
      enter_wal_mode();
      query("PRAGMA synchronous=FULL", {});
      ensure_schema(
          "CREATE TABLE IF NOT EXISTS warden_tokens (id INTEGER PRIMARY KEY CHECK (id = 1), "
          "last BIGINT NOT NULL);"
          "INSERT OR IGNORE INTO warden_tokens VALUES (1, 0)");
    } catch (...) {
      sqlite3_close(db_);
      db_ = nullptr;
      throw;
    }
  }

  ~SqliteDatabase() override { sqlite3_close(db_); }

  Dialect dialect() const override { return Dialect::kSqlite; }
  const std::string& location() const override { return location_; }
  const char* now_ms() const override {
    return "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
  }

  Rows query(const std::string& sql, const Params& params) override {
    std::lock_guard<std::recursive_mutex> guard(mutex_);
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr);
    if (rc != SQLITE_OK) fail(rc, sql);
    std::unique_ptr<sqlite3_stmt, StatementFinalizer> statement(raw);
    bind(raw, sql, params);
    Rows rows;
    int columns = sqlite3_column_count(raw);
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
      Row row;
      row.reserve(static_cast<size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        if (sqlite3_column_type(raw, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(raw, c));
          row.emplace_back(std::string(text, static_cast<size_t>(sqlite3_column_bytes(raw, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) fail(rc, sql);
    return rows;
  }

  void transaction(const std::function<void()>& fn) override {
    std::lock_guard<std::recursive_mutex> guard(mutex_);
    run_transaction(
        depth_, fn, [&] { exec("BEGIN IMMEDIATE"); }, [&] { exec("COMMIT"); }, [&] { rollback(); });
  }

  void ensure_schema(const std::string& ddl) override {
    transaction([&] { exec(ddl); });
  }

  uint64_t next_token() override {
    Rows rows = query("UPDATE warden_tokens SET last = last + 1 WHERE id = 1 RETURNING last", {});
    return std::stoull(rows.at(0).at(0).value());
  }

 private:
  [[noreturn]] void fail(int rc, const std::string& sql) {
    int primary = rc & 0xff;
    ErrorCode code = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? ErrorCode::kUnavailable
                     : primary == SQLITE_FULL                           ? ErrorCode::kDiskFull
                                                                        : ErrorCode::kIo;
    std::string message = location_ + ": " + statement_head(sql) + ": " + sqlite3_errmsg(db_);
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
      message +=
          " (the file is not a healthy SQLite database: move it aside and rerun, or "
          "point --store at the right file)";
    }
    throw SqlError(code, message, sqlite_code_name(rc));
  }

  void bind(sqlite3_stmt* statement, const std::string& sql, const Params& params) {
    if (static_cast<size_t>(sqlite3_bind_parameter_count(statement)) != params.size()) {
      throw SqlError(ErrorCode::kInternal,
                     location_ + ": " + statement_head(sql) + ": takes " +
                         std::to_string(sqlite3_bind_parameter_count(statement)) +
                         " parameters, given " + std::to_string(params.size()));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      std::string name = "$" + std::to_string(i + 1);
      int index = sqlite3_bind_parameter_index(statement, name.c_str());
      if (index == 0) {
        throw SqlError(ErrorCode::kInternal,
                       location_ + ": " + statement_head(sql) + ": no parameter " + name);
      }
      int rc = params[i] ? sqlite3_bind_text(statement, index, params[i]->data(),
                                             static_cast<int>(params[i]->size()), SQLITE_TRANSIENT)
                         : sqlite3_bind_null(statement, index);
      if (rc != SQLITE_OK) fail(rc, sql);
    }
  }

  // Runs statements without parameters (one or several, separated by ';').
  void exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    if (error) sqlite3_free(error);
    if (rc != SQLITE_OK) fail(rc, sql);
  }

  // Switching a new file to WAL takes an exclusive lock. When several connections switch at
  // the same moment (processes opening one new store together), SQLite answers SQLITE_BUSY at
  // once instead of calling the busy handler, because waiting could deadlock them. The loser
  // waits out the winner here, within the same busy timeout; by then the file is in WAL mode
  // and the pragma is a no-op.
  void enter_wal_mode() {
    const auto deadline = std::chrono::steady_clock::now() + kBusyTimeout;
    for (;;) {
      try {
        query("PRAGMA journal_mode=WAL", {});
        return;
      } catch (const SqlError& e) {
        if (e.code() != ErrorCode::kUnavailable || std::chrono::steady_clock::now() >= deadline)
          throw;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  void rollback() noexcept {
    depth_ = 0;
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  std::string location_;
  sqlite3* db_ = nullptr;
  std::recursive_mutex mutex_;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Database> open_sqlite(const std::string& path) {
  return std::make_unique<SqliteDatabase>(std::filesystem::absolute(path).lexically_normal());
}

}  // namespace warden::sql
