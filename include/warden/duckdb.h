// A thin RAII layer over DuckDB's C API (duckdb.h). C API only: DuckDB's C++ API has no
// stable ABI, and the prebuilt libduckdb.so we link (DESIGN.md "Dependencies") only promises
// the C one.
//
// Every handle DuckDB gives us (database, connection, result, prepared statement, appender,
// data chunk) is owned by exactly one move-only object here and freed in its destructor.
// DuckDB's own rule is ours: "destroy the result even if the query failed" - a failed
// duckdb_query still allocates an error message inside the result, so Connection::query
// destroys it before throwing.
//
// Errors: every failure throws DuckDbError (a warden::Error) whose message names the
// operation, the SQL (abbreviated) or the file, and DuckDB's own error text, e.g.
//   "query 'COPY (SELECT ...) TO ...': IO Error: No space left on device".
// The code is kDiskFull when DuckDB reports ENOSPC, kUnavailable when the query was
// interrupted, kIo for a database that cannot be opened, kInvalidArgument otherwise.
//
// Threads: a Database may be shared between threads (DuckDB synchronises internally); a
// Connection, and everything made from it, is used by one thread at a time.
//
// DuckDB's single-writer rule, where it bites: one process may open a database file
// read-write, any number may open it read-only, never both at once (the file carries a
// POSIX lock; the second opener gets "Could not set lock on file"). Open a source you only
// read with Database::open(path, {{"access_mode", "READ_ONLY"}}).
#pragma once

#include <duckdb.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "warden/error.h"

namespace warden::duckdb {

// A DuckDB call failed. sql() is the statement (or file) involved, "" if none.
class DuckDbError : public Error {
 public:
  DuckDbError(ErrorCode code, const std::string& message, std::string sql)
      : Error(code, message), sql_(std::move(sql)) {}
  const std::string& sql() const { return sql_; }

 private:
  std::string sql_;
};

// The SQL type of a column as DuckDB names it ("BIGINT", "DECIMAL(12,4)", "DATE",
// "VARCHAR", "INTEGER[]", "STRUCT(a INTEGER)"...). Does not take ownership of `type`.
std::string logical_type_name(duckdb_logical_type type);

// Days since 1970-01-01 <-> "YYYY-MM-DD".
std::string date_to_string(int32_t days_since_epoch);

// Quotes an identifier ("my col" -> "\"my col\"") and a string literal ('it''s') for SQL.
std::string quote_identifier(std::string_view name);
std::string quote_literal(std::string_view text);

// One column of a result or chunk: its name, DuckDB type id and full SQL type name.
struct Column {
  std::string name;
  duckdb_type type = DUCKDB_TYPE_INVALID;
  std::string type_name;
};

// A batch of rows in DuckDB's columnar form (duckdb_data_chunk), up to
// duckdb_vector_size() rows (2048). Owns the chunk. Accessors do not check types: the caller
// reads a column with the accessor of its type (see Column::type); reading the wrong type is
// a programmer error.
class DataChunk {
 public:
  DataChunk() = default;
  explicit DataChunk(duckdb_data_chunk chunk) : chunk_(chunk) {}
  DataChunk(DataChunk&& other) noexcept : chunk_(other.chunk_) { other.chunk_ = nullptr; }
  DataChunk& operator=(DataChunk&& other) noexcept;
  DataChunk(const DataChunk&) = delete;
  DataChunk& operator=(const DataChunk&) = delete;
  ~DataChunk();

  bool valid() const { return chunk_ != nullptr; }
  size_t size() const;
  size_t column_count() const;
  bool is_null(size_t column, size_t row) const;
  // Raw column data (e.g. const int64_t* for BIGINT, const int32_t* days for DATE).
  const void* data(size_t column) const;
  template <typename T>
  T value(size_t column, size_t row) const {
    return static_cast<const T*>(data(column))[row];
  }
  // VARCHAR/BLOB column value (a view into the chunk: valid while the chunk lives).
  std::string_view string_value(size_t column, size_t row) const;
  duckdb_data_chunk handle() const { return chunk_; }

 private:
  duckdb_data_chunk chunk_ = nullptr;
};

// The result of a query. Owns the duckdb_result. A materialized result allows random access
// by (column, row); a streaming one (Connection::query_streaming) is read chunk by chunk
// with next_chunk() and holds only the current chunk in memory.
class Result {
 public:
  Result() = default;
  Result(duckdb_result result, bool streaming)
      : result_(result), open_(true), streaming_(streaming) {}
  Result(Result&& other) noexcept;
  Result& operator=(Result&& other) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result();

  size_t column_count();
  std::vector<Column> columns();
  // Materialized results only: the number of rows; for COPY ... TO, the rows written.
  size_t row_count();
  // Random access (materialized results only). Throws DuckDbError for a row or column out of
  // range. get_string renders any type as DuckDB's text form ("NULL" is never returned:
  // check is_null first; a NULL reads as "").
  bool is_null(size_t column, size_t row);
  int64_t get_int64(size_t column, size_t row);
  double get_double(size_t column, size_t row);
  std::string get_string(size_t column, size_t row);
  // Next chunk of rows, or nullopt at the end. Blocks while DuckDB computes it. Works for
  // both kinds of result; throws DuckDbError if the query fails while streaming.
  std::optional<DataChunk> next_chunk();

  duckdb_result* handle() { return &result_; }

 private:
  void check_cell(size_t column, size_t row);
  duckdb_result result_{};
  bool open_ = false;
  bool streaming_ = false;
};

class Connection;

// A prepared statement with positional parameters ($1 or ?, numbered from 1). Owns it.
class PreparedStatement {
 public:
  PreparedStatement(duckdb_prepared_statement statement, std::string sql)
      : statement_(statement), sql_(std::move(sql)) {}
  PreparedStatement(PreparedStatement&& other) noexcept;
  PreparedStatement& operator=(PreparedStatement&&) = delete;
  PreparedStatement(const PreparedStatement&) = delete;
  ~PreparedStatement();

  // Bind a value to parameter `index` (1-based). Throw DuckDbError on a bad index or type.
  PreparedStatement& bind(size_t index, int64_t value);
  PreparedStatement& bind(size_t index, double value);
  PreparedStatement& bind(size_t index, std::string_view value);
  PreparedStatement& bind_null(size_t index);
  // Runs it. Throws DuckDbError naming the SQL on failure.
  Result execute();
  Result execute_streaming();

 private:
  void check(duckdb_state state, const char* what, size_t index);
  duckdb_prepared_statement statement_ = nullptr;
  std::string sql_;
};

// Appends rows to a table fast (duckdb_appender). Rows become visible on flush() or
// close(); the destructor closes it (errors then are swallowed: call close() to see them).
class Appender {
 public:
  Appender(duckdb_appender appender, std::string table)
      : appender_(appender), table_(std::move(table)) {}
  Appender(Appender&& other) noexcept;
  Appender& operator=(Appender&&) = delete;
  Appender(const Appender&) = delete;
  ~Appender();

  // One value per column, in order, then end_row(). Throw DuckDbError naming the table.
  Appender& append(int64_t value);
  Appender& append(int32_t value);
  Appender& append(double value);
  Appender& append(std::string_view value);
  Appender& append(bool value);
  Appender& append_null();
  void end_row();
  // Appends a whole chunk whose columns match the table's.
  void append_chunk(const DataChunk& chunk);
  void flush();
  void close();

 private:
  void check(duckdb_state state, const char* what);
  duckdb_appender appender_ = nullptr;
  std::string table_;
};

// A connection to a database. Owns it. One thread at a time.
class Connection {
 public:
  explicit Connection(duckdb_connection connection) : connection_(connection) {}
  Connection(Connection&& other) noexcept : connection_(other.connection_) {
    other.connection_ = nullptr;
  }
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs SQL (one or more statements; the result is the last one's), fully materialized.
  // Throws DuckDbError naming the SQL and DuckDB's error; the failed result is destroyed.
  Result query(const std::string& sql);
  // Runs SQL, ignoring its result.
  void execute(const std::string& sql) { query(sql); }
  // Runs one statement and streams its result chunk by chunk (bounded memory).
  Result query_streaming(const std::string& sql);
  PreparedStatement prepare(const std::string& sql);
  // An appender on [schema.]table (schema "" = the default).
  Appender appender(const std::string& schema, const std::string& table);
  // Asks a running query on this connection (from another thread) to stop; it then fails
  // with an interrupt error (code kUnavailable).
  void interrupt();
  duckdb_connection handle() const { return connection_; }

 private:
  duckdb_connection connection_ = nullptr;
};

// A database: a file, or in memory. Owns it; connections must not outlive it.
class Database {
 public:
  // Opens (creating if absent and not read-only) the database at `path`; "" or ":memory:"
  // is a private in-memory database. `config` holds DuckDB settings applied at open, e.g.
  // {"access_mode","READ_ONLY"}, {"threads","2"}, {"memory_limit","1GB"},
  // {"temp_directory", dir}. Throws DuckDbError (kIo) naming the file and DuckDB's reason
  // (e.g. another process holds it read-write), or (kInvalidArgument) an unknown setting.
  static Database open(const std::string& path,
                       const std::map<std::string, std::string>& config = {});
  static Database in_memory(const std::map<std::string, std::string>& config = {}) {
    return open("", config);
  }
  Database(Database&& other) noexcept : database_(other.database_), path_(std::move(other.path_)) {
    other.database_ = nullptr;
  }
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  Connection connect();
  const std::string& path() const { return path_; }
  duckdb_database handle() const { return database_; }

 private:
  Database(duckdb_database database, std::string path)
      : database_(database), path_(std::move(path)) {}
  duckdb_database database_ = nullptr;
  std::string path_;
};

}  // namespace warden::duckdb
