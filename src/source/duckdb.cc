// The RAII layer over DuckDB's C API (include/warden/duckdb.h).
#include "warden/duckdb.h"

#include <cstring>
#include <utility>

#include "lazy_duckdb.h"
#include "warden/error.h"

namespace warden::duckdb {
namespace {

// Statements can be long (a COPY of a whole query); error messages carry the start of it.
std::string abbreviate(std::string_view sql) {
  constexpr size_t kMax = 160;
  std::string text(sql.substr(0, kMax));
  for (char& c : text) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (sql.size() > kMax) text += "...";
  return text;
}

ErrorCode code_for(duckdb_error_type type, std::string_view message) {
  // DuckDB reports a full disk as an IO error whose text is strerror(ENOSPC); callers need
  // kDiskFull to quarantine and stop cleanly rather than retry.
  if (message.find("No space left on device") != std::string_view::npos ||
      message.find("Disk quota exceeded") != std::string_view::npos) {
    return ErrorCode::kDiskFull;
  }
  switch (type) {
    case DUCKDB_ERROR_INTERRUPT:
      return ErrorCode::kUnavailable;
    case DUCKDB_ERROR_IO:
    case DUCKDB_ERROR_OUT_OF_MEMORY:
    case DUCKDB_ERROR_PERMISSION:
      return ErrorCode::kIo;
    case DUCKDB_ERROR_CATALOG:
      return ErrorCode::kNotFound;
    default:
      return ErrorCode::kInvalidArgument;
  }
}

[[noreturn]] void throw_result_error(duckdb_result* result, const std::string& operation,
                                     const std::string& sql) {
  const char* text = duckdb_result_error(result);
  std::string message = text ? text : "unknown DuckDB error";
  duckdb_error_type type = duckdb_result_error_type(result);
  // Destroy the result even if the query failed: the error text lives inside it.
  duckdb_destroy_result(result);
  throw DuckDbError(code_for(type, message), operation + " '" + abbreviate(sql) + "': " + message,
                    sql);
}

std::string owned_c_string(char* text) {
  if (!text) return "";
  std::string copy(text);
  duckdb_free(text);
  return copy;
}

const char* simple_type_name(duckdb_type type) {
  switch (type) {
    case DUCKDB_TYPE_BOOLEAN:
      return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
      return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
      return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
      return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
      return "BIGINT";
    case DUCKDB_TYPE_UTINYINT:
      return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
      return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
      return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
      return "UBIGINT";
    case DUCKDB_TYPE_FLOAT:
      return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
      return "DOUBLE";
    case DUCKDB_TYPE_TIMESTAMP:
      return "TIMESTAMP";
    case DUCKDB_TYPE_DATE:
      return "DATE";
    case DUCKDB_TYPE_TIME:
      return "TIME";
    case DUCKDB_TYPE_INTERVAL:
      return "INTERVAL";
    case DUCKDB_TYPE_HUGEINT:
      return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT:
      return "UHUGEINT";
    case DUCKDB_TYPE_VARCHAR:
      return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
      return "BLOB";
    case DUCKDB_TYPE_TIMESTAMP_S:
      return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS:
      return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return "TIMESTAMP_NS";
    case DUCKDB_TYPE_ENUM:
      return "ENUM";
    case DUCKDB_TYPE_UUID:
      return "UUID";
    case DUCKDB_TYPE_BIT:
      return "BIT";
    case DUCKDB_TYPE_TIME_TZ:
      return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_BIGNUM:
      return "BIGNUM";
    case DUCKDB_TYPE_SQLNULL:
      return "NULL";
    default:
      return nullptr;
  }
}

// Owns a logical type handed out by DuckDB for the length of one call.
struct LogicalType {
  duckdb_logical_type type;
  ~LogicalType() { duckdb_destroy_logical_type(&type); }
};

}  // namespace

std::string logical_type_name(duckdb_logical_type type) {
  duckdb_type id = duckdb_get_type_id(type);
  switch (id) {
    case DUCKDB_TYPE_DECIMAL:
      return "DECIMAL(" + std::to_string(duckdb_decimal_width(type)) + "," +
             std::to_string(duckdb_decimal_scale(type)) + ")";
    case DUCKDB_TYPE_LIST: {
      LogicalType child{duckdb_list_type_child_type(type)};
      return logical_type_name(child.type) + "[]";
    }
    case DUCKDB_TYPE_ARRAY: {
      LogicalType child{duckdb_array_type_child_type(type)};
      return logical_type_name(child.type) + "[" +
             std::to_string(duckdb_array_type_array_size(type)) + "]";
    }
    case DUCKDB_TYPE_STRUCT: {
      std::string text = "STRUCT(";
      idx_t count = duckdb_struct_type_child_count(type);
      for (idx_t i = 0; i < count; ++i) {
        LogicalType child{duckdb_struct_type_child_type(type, i)};
        if (i) text += ", ";
        text += quote_identifier(owned_c_string(duckdb_struct_type_child_name(type, i))) + " " +
                logical_type_name(child.type);
      }
      return text + ")";
    }
    case DUCKDB_TYPE_MAP: {
      LogicalType key{duckdb_map_type_key_type(type)};
      LogicalType value{duckdb_map_type_value_type(type)};
      return "MAP(" + logical_type_name(key.type) + ", " + logical_type_name(value.type) + ")";
    }
    default: {
      const char* name = simple_type_name(id);
      return name ? name : "TYPE" + std::to_string(static_cast<int>(id));
    }
  }
}

std::string date_to_string(int32_t days_since_epoch) {
  duckdb_date_struct d = duckdb_from_date(duckdb_date{days_since_epoch});
  char text[32];
  std::snprintf(text, sizeof text, "%04d-%02d-%02d", static_cast<int>(d.year),
                static_cast<int>(d.month), static_cast<int>(d.day));
  return text;
}

std::string quote_identifier(std::string_view name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string quote_literal(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') quoted += '\'';
    quoted += c;
  }
  return quoted + "'";
}

// ---- DataChunk -------------------------------------------------------------------------

DataChunk& DataChunk::operator=(DataChunk&& other) noexcept {
  if (this != &other) {
    if (chunk_) duckdb_destroy_data_chunk(&chunk_);
    chunk_ = std::exchange(other.chunk_, nullptr);
  }
  return *this;
}

DataChunk::~DataChunk() {
  if (chunk_) duckdb_destroy_data_chunk(&chunk_);
}

size_t DataChunk::size() const { return duckdb_data_chunk_get_size(chunk_); }
size_t DataChunk::column_count() const { return duckdb_data_chunk_get_column_count(chunk_); }

bool DataChunk::is_null(size_t column, size_t row) const {
  uint64_t* validity = duckdb_vector_get_validity(duckdb_data_chunk_get_vector(chunk_, column));
  // A null validity mask means "every row valid" (DuckDB allocates it lazily).
  return validity != nullptr && !duckdb_validity_row_is_valid(validity, row);
}

const void* DataChunk::data(size_t column) const {
  return duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk_, column));
}

std::string_view DataChunk::string_value(size_t column, size_t row) const {
  auto* strings = static_cast<duckdb_string_t*>(
      duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk_, column)));
  duckdb_string_t* s = &strings[row];
  return {duckdb_string_t_data(s), duckdb_string_t_length(*s)};
}

// ---- Result ----------------------------------------------------------------------------

Result::Result(Result&& other) noexcept
    : result_(other.result_), open_(other.open_), streaming_(other.streaming_) {
  other.open_ = false;
}

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (open_) duckdb_destroy_result(&result_);
    result_ = other.result_;
    open_ = std::exchange(other.open_, false);
    streaming_ = other.streaming_;
  }
  return *this;
}

Result::~Result() {
  if (open_) duckdb_destroy_result(&result_);
}

size_t Result::column_count() { return open_ ? duckdb_column_count(&result_) : 0; }

std::vector<Column> Result::columns() {
  std::vector<Column> out;
  for (size_t i = 0; i < column_count(); ++i) {
    LogicalType type{duckdb_column_logical_type(&result_, i)};
    out.push_back({duckdb_column_name(&result_, i), duckdb_get_type_id(type.type),
                   logical_type_name(type.type)});
  }
  return out;
}

size_t Result::row_count() {
  if (streaming_) {
    throw DuckDbError(ErrorCode::kInternal, "row_count of a streaming result: read its chunks", "");
  }
  return open_ ? duckdb_row_count(&result_) : 0;
}

void Result::check_cell(size_t column, size_t row) {
  if (!open_ || streaming_ || column >= column_count() || row >= duckdb_row_count(&result_)) {
    throw DuckDbError(ErrorCode::kInternal,
                      "read result cell (" + std::to_string(column) + ", " + std::to_string(row) +
                          "): out of range or streaming result",
                      "");
  }
}

bool Result::is_null(size_t column, size_t row) {
  check_cell(column, row);
  return duckdb_value_is_null(&result_, column, row);
}

int64_t Result::get_int64(size_t column, size_t row) {
  check_cell(column, row);
  return duckdb_value_int64(&result_, column, row);
}

double Result::get_double(size_t column, size_t row) {
  check_cell(column, row);
  return duckdb_value_double(&result_, column, row);
}

std::string Result::get_string(size_t column, size_t row) {
  check_cell(column, row);
  return owned_c_string(duckdb_value_varchar(&result_, column, row));
}

std::optional<DataChunk> Result::next_chunk() {
  if (!open_) return std::nullopt;
  duckdb_data_chunk chunk = duckdb_fetch_chunk(result_);
  if (!chunk) {
    // The end, or a failure while streaming: the result then carries the error.
    const char* error = duckdb_result_error(&result_);
    if (error && *error) {
      std::string message = error;
      throw DuckDbError(code_for(duckdb_result_error_type(&result_), message),
                        "fetch result chunk: " + message, "");
    }
    return std::nullopt;
  }
  return DataChunk(chunk);
}

// ---- PreparedStatement -----------------------------------------------------------------

PreparedStatement::PreparedStatement(PreparedStatement&& other) noexcept
    : statement_(std::exchange(other.statement_, nullptr)), sql_(std::move(other.sql_)) {}

PreparedStatement::~PreparedStatement() {
  if (statement_) duckdb_destroy_prepare(&statement_);
}

void PreparedStatement::check(duckdb_state state, const char* what, size_t index) {
  if (state == DuckDBSuccess) return;
  const char* error = duckdb_prepare_error(statement_);
  throw DuckDbError(ErrorCode::kInvalidArgument,
                    std::string(what) + " parameter " + std::to_string(index) + " of '" +
                        abbreviate(sql_) + "': " + (error ? error : "bad index or type"),
                    sql_);
}

PreparedStatement& PreparedStatement::bind(size_t index, int64_t value) {
  check(duckdb_bind_int64(statement_, index, value), "bind", index);
  return *this;
}
PreparedStatement& PreparedStatement::bind(size_t index, double value) {
  check(duckdb_bind_double(statement_, index, value), "bind", index);
  return *this;
}
PreparedStatement& PreparedStatement::bind(size_t index, std::string_view value) {
  check(duckdb_bind_varchar_length(statement_, index, value.data(), value.size()), "bind", index);
  return *this;
}
PreparedStatement& PreparedStatement::bind_null(size_t index) {
  check(duckdb_bind_null(statement_, index), "bind", index);
  return *this;
}

Result PreparedStatement::execute() {
  duckdb_result result;
  if (duckdb_execute_prepared(statement_, &result) != DuckDBSuccess) {
    throw_result_error(&result, "execute", sql_);
  }
  return Result(result, false);
}

Result PreparedStatement::execute_streaming() {
  duckdb_result result;
  if (duckdb_execute_prepared_streaming(statement_, &result) != DuckDBSuccess) {
    throw_result_error(&result, "execute", sql_);
  }
  return Result(result, true);
}

// ---- Appender --------------------------------------------------------------------------

Appender::Appender(Appender&& other) noexcept
    : appender_(std::exchange(other.appender_, nullptr)), table_(std::move(other.table_)) {}

Appender::~Appender() {
  // duckdb_appender_destroy flushes and closes; its error (if any) has nowhere to go.
  if (appender_) duckdb_appender_destroy(&appender_);
}

void Appender::check(duckdb_state state, const char* what) {
  if (state == DuckDBSuccess) return;
  const char* error = appender_ ? duckdb_appender_error(appender_) : nullptr;
  throw DuckDbError(ErrorCode::kInvalidArgument,
                    std::string(what) + " table " + table_ + ": " + (error ? error : "failed"),
                    table_);
}

Appender& Appender::append(int64_t value) {
  check(duckdb_append_int64(appender_, value), "append to");
  return *this;
}
Appender& Appender::append(int32_t value) {
  check(duckdb_append_int32(appender_, value), "append to");
  return *this;
}
Appender& Appender::append(double value) {
  check(duckdb_append_double(appender_, value), "append to");
  return *this;
}
Appender& Appender::append(std::string_view value) {
  check(duckdb_append_varchar_length(appender_, value.data(), value.size()), "append to");
  return *this;
}
Appender& Appender::append(bool value) {
  check(duckdb_append_bool(appender_, value), "append to");
  return *this;
}
Appender& Appender::append_null() {
  check(duckdb_append_null(appender_), "append to");
  return *this;
}
void Appender::end_row() { check(duckdb_appender_end_row(appender_), "end row of"); }
void Appender::append_chunk(const DataChunk& chunk) {
  check(duckdb_append_data_chunk(appender_, chunk.handle()), "append chunk to");
}
void Appender::flush() { check(duckdb_appender_flush(appender_), "flush appender of"); }
void Appender::close() { check(duckdb_appender_close(appender_), "close appender of"); }

// ---- Connection ------------------------------------------------------------------------

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (connection_) duckdb_disconnect(&connection_);
    connection_ = std::exchange(other.connection_, nullptr);
  }
  return *this;
}

Connection::~Connection() {
  if (connection_) duckdb_disconnect(&connection_);
}

Result Connection::query(const std::string& sql) {
  duckdb_result result;
  if (duckdb_query(connection_, sql.c_str(), &result) != DuckDBSuccess) {
    throw_result_error(&result, "query", sql);
  }
  return Result(result, false);
}

Result Connection::query_streaming(const std::string& sql) {
  return prepare(sql).execute_streaming();
}

PreparedStatement Connection::prepare(const std::string& sql) {
  duckdb_prepared_statement statement = nullptr;
  if (duckdb_prepare(connection_, sql.c_str(), &statement) != DuckDBSuccess) {
    std::string message = statement ? duckdb_prepare_error(statement) : "prepare failed";
    // The failed statement still owns its error text: destroy it after copying.
    if (statement) duckdb_destroy_prepare(&statement);
    throw DuckDbError(code_for(DUCKDB_ERROR_INVALID, message),
                      "prepare '" + abbreviate(sql) + "': " + message, sql);
  }
  return PreparedStatement(statement, sql);
}

Appender Connection::appender(const std::string& schema, const std::string& table) {
  duckdb_appender appender = nullptr;
  if (duckdb_appender_create(connection_, schema.empty() ? nullptr : schema.c_str(), table.c_str(),
                             &appender) != DuckDBSuccess) {
    std::string message = appender ? duckdb_appender_error(appender) : "create failed";
    if (appender) duckdb_appender_destroy(&appender);
    throw DuckDbError(ErrorCode::kNotFound, "create appender for table " + table + ": " + message,
                      table);
  }
  return Appender(appender, schema.empty() ? table : schema + "." + table);
}

void Connection::interrupt() { duckdb_interrupt(connection_); }

// ---- Database --------------------------------------------------------------------------

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (database_) duckdb_close(&database_);
    database_ = std::exchange(other.database_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

Database::~Database() {
  if (database_) duckdb_close(&database_);
}

Database Database::open(const std::string& path, const std::map<std::string, std::string>& config) {
  const std::string shown = path.empty() || path == ":memory:" ? ":memory:" : path;
  duckdb_config handle = nullptr;
  if (duckdb_create_config(&handle) != DuckDBSuccess) {
    throw DuckDbError(ErrorCode::kIo, "open database " + shown + ": cannot create config", shown);
  }
  for (const auto& [name, value] : config) {
    if (duckdb_set_config(handle, name.c_str(), value.c_str()) != DuckDBSuccess) {
      duckdb_destroy_config(&handle);
      throw DuckDbError(ErrorCode::kInvalidArgument,
                        "open database " + shown + ": bad setting " + name + "='" + value + "'",
                        shown);
    }
  }
  duckdb_database database = nullptr;
  char* error = nullptr;
  const char* c_path = path.empty() ? nullptr : path.c_str();
  duckdb_state state = duckdb_open_ext(c_path, &database, handle, &error);
  duckdb_destroy_config(&handle);
  if (state != DuckDBSuccess) {
    std::string message = owned_c_string(error);
    // DuckDB accepts any name in duckdb_set_config and rejects unknown ones only here.
    ErrorCode code = message.find("not recognized") != std::string::npos ||
                             message.find("nrecognized configuration") != std::string::npos
                         ? ErrorCode::kInvalidArgument
                         : code_for(DUCKDB_ERROR_IO, message);
    throw DuckDbError(code, "open database " + shown + ": " + message, shown);
  }
  return Database(database, shown);
}

Connection Database::connect() {
  duckdb_connection connection = nullptr;
  if (duckdb_connect(database_, &connection) != DuckDBSuccess) {
    throw DuckDbError(ErrorCode::kIo, "connect to database " + path_ + ": failed", path_);
  }
  return Connection(connection);
}

}  // namespace warden::duckdb
