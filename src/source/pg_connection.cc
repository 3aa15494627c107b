// One libpq connection: connect with helpful errors, queries with a timeout that really
// cancels on the server, and COPY BINARY streaming.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "lazy_libpq.h"
#include "warden/posix.h"
#include "warden/postgres.h"

namespace warden::pg {

namespace {

// A deleter type, not &PQclear: PQclear is resolved lazily (lazy_libpq.h), only by calls.
struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using OwnedResult = std::unique_ptr<PGresult, ResultDeleter>;

// libpq error text ends with a newline; error messages read better without it.
std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The fix for a connection failure, where libpq's text tells us what went wrong.
std::string connection_hint(const std::string& message) {
  if (message.find("password authentication failed") != std::string::npos ||
      message.find("no password supplied") != std::string::npos) {
    std::string hint =
        " (check the password in ~/.pgpass, PGPASSWORD or password_command; "
        "see docs/runbooks/wrds-credentials.md)";
    const char* home = std::getenv("HOME");
    const char* passfile = std::getenv("PGPASSFILE");
    std::string path =
        passfile && *passfile ? passfile : std::string(home ? home : "") + "/.pgpass";
    auto info = stat_path(path);
    if (info && (info->mode & 077) != 0) {
      hint = " (" + path + " is ignored by libpq because others can read it: run 'chmod 0600 " +
             path + "')";
    }
    return hint;
  }
  if (message.find("Connection refused") != std::string::npos ||
      message.find("could not translate host name") != std::string::npos ||
      message.find("No such file or directory") != std::string::npos ||
      message.find("Network is unreachable") != std::string::npos) {
    return " (the server is unreachable: check host, port and network; "
           "then 'warden source check')";
  }
  if (message.find("timeout expired") != std::string::npos) {
    return " (no answer within connect_timeout: the server is unreachable, or, on WRDS, a Duo "
           "push is waiting for approval: approve it on your phone and rerun; "
           "'warden source check' tells which)";
  }
  if (message.find("too many connections") != std::string::npos) {
    return " (the server's connection limit is reached: lower pool_size/max_overflow or close "
           "other sessions)";
  }
  return "";
}

std::string run_password_command(const std::string& command) {
  // popen with "re": the pipe is close-on-exec for any other child we start later.
  FILE* pipe = ::popen(command.c_str(), "re");
  if (!pipe) throw Error(ErrorCode::kIo, "run password_command: cannot start it");
  std::string out;
  char buffer[512];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  int status = ::pclose(pipe);
  if (status != 0) {
    // Never include its output: it may be the secret.
    throw Error(ErrorCode::kIo, "run password_command: it exited with status " +
                                    std::to_string(status) + " (its output is not shown)");
  }
  size_t newline = out.find('\n');
  if (newline != std::string::npos) out.resize(newline);
  return out;
}

}  // namespace

struct Connection::State {
  Settings settings;
  std::string redacted;
  PGconn* conn = nullptr;
  std::mutex cancel_mutex;
  PGcancel* cancel = nullptr;

  ~State() {
    if (cancel) PQfreeCancel(cancel);
    if (conn) PQfinish(conn);
  }

  // Raises the failure of a finished result (or of the connection) as PostgresError.
  [[noreturn]] void fail(const std::string& operation, PGresult* result) {
    std::string sqlstate;
    std::string message;
    if (result) {
      const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      sqlstate = state ? state : "";
      message = trimmed(PQresultErrorMessage(result));
    }
    if (message.empty()) message = trimmed(PQerrorMessage(conn));
    if (message.empty() && result) {
      // Not a server error: the command ran but returned another kind of result.
      message = std::string("unexpected result ") + PQresStatus(PQresultStatus(result));
    }
    if (sqlstate.empty() && PQstatus(conn) != CONNECTION_OK) sqlstate = "08006";
    ErrorCode code = ErrorCode::kIo;
    if (sqlstate == "57014") {
      code = ErrorCode::kTimeout;
      message += " (it ran past its timeout and was cancelled: raise query_timeout (" +
                 std::to_string(settings.query_timeout.count()) + " ms) or copy_timeout (" +
                 std::to_string(settings.copy_timeout.count()) + " ms) if the server is just slow)";
    } else if (is_transient_sqlstate(sqlstate)) {
      code = ErrorCode::kUnavailable;
    }
    throw PostgresError(code, operation + " on " + redacted + ": " + message, sqlstate);
  }

  // Waits for the next result of a sent command, cancelling on the server once the query
  // timeout (plus a grace for statement_timeout to act first) has passed.
  PGresult* next_result(SteadyClock::time_point deadline) {
    bool cancelled = false;
    while (PQisBusy(conn)) {
      auto now = SteadyClock::now();
      if (!cancelled && now >= deadline) {
        cancel_now();
        cancelled = true;
      }
      auto wait = cancelled ? std::chrono::milliseconds(100)
                            : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      wait_readable(PQsocket(conn), std::max(wait, std::chrono::milliseconds(1)));
      if (!PQconsumeInput(conn)) return nullptr;
    }
    return PQgetResult(conn);
  }

  void cancel_now() noexcept {
    std::lock_guard<std::mutex> guard(cancel_mutex);
    if (!cancel) return;
    char error[256];
    PQcancel(cancel, error, sizeof error);
  }

  SteadyClock::time_point deadline(std::chrono::milliseconds timeout) const {
    return SteadyClock::now() + timeout + std::chrono::seconds(2);
  }

  // Sends sql (with $1..$n bound to params when given) and returns its single final result;
  // the caller owns it.
  PGresult* run(const std::string& sql, const std::string& operation,
                const std::vector<std::optional<std::string>>* params = nullptr) {
    if (params) {
      std::vector<const char*> values;
      values.reserve(params->size());
      for (const auto& p : *params) values.push_back(p ? p->c_str() : nullptr);
      if (!PQsendQueryParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0)) {
        fail(operation, nullptr);
      }
    } else if (!PQsendQuery(conn, sql.c_str())) {
      fail(operation, nullptr);
    }
    auto until = deadline(settings.query_timeout);
    PGresult* last = nullptr;
    while (PGresult* result = next_result(until)) {
      if (last) PQclear(last);
      last = result;
    }
    if (!last) fail(operation, nullptr);
    return last;
  }
};

Connection::Connection(const Settings& settings) : state_(std::make_unique<State>()) {
  state_->settings = settings;
  state_->redacted =
      redact_conninfo(settings.conninfo.empty() ? "(PG* environment)" : settings.conninfo);
  std::string timeout = std::to_string(settings.connect_timeout.count());
  std::string password;
  if (!settings.password_command.empty())
    password = run_password_command(settings.password_command);
  // Later keywords override earlier ones, and the expanded dbname sits in the middle: our
  // application_name yields to the user's, our connect_timeout and password win.
  std::vector<const char*> keys{"application_name", "dbname", "connect_timeout"};
  std::vector<const char*> values{settings.application_name.c_str(),
                                  settings.conninfo.empty() ? nullptr : settings.conninfo.c_str(),
                                  timeout.c_str()};
  if (!password.empty()) {
    keys.push_back("password");
    values.push_back(password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  state_->conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (!state_->conn) throw PostgresError(ErrorCode::kIo, "connect: out of memory", "");
  if (PQstatus(state_->conn) != CONNECTION_OK) {
    std::string message = trimmed(PQerrorMessage(state_->conn));
    ErrorCode code = message.find("too many connections") != std::string::npos ||
                             message.find("the database system is") != std::string::npos
                         ? ErrorCode::kUnavailable
                         : ErrorCode::kIo;
    throw PostgresError(
        code, "connect to " + state_->redacted + ": " + message + connection_hint(message),
        code == ErrorCode::kUnavailable ? "53300" : "08001");
  }
  state_->cancel = PQgetCancel(state_->conn);
  // statement_timeout makes the server give up on its own; the client deadline in run()
  // is the backstop for a server that does not answer at all.
  execute("SET statement_timeout = " + std::to_string(settings.query_timeout.count()));
}

Connection::~Connection() = default;

void Connection::execute(const std::string& sql) {
  PGresult* result = state_->run(sql, "execute");
  ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    OwnedResult owned(result);
    state_->fail("execute", result);
  }
  PQclear(result);
}

namespace {

std::vector<std::vector<std::optional<std::string>>> text_rows(PGresult* result) {
  std::vector<std::vector<std::optional<std::string>>> rows;
  int row_count = PQntuples(result);
  int column_count = PQnfields(result);
  rows.reserve(static_cast<size_t>(row_count));
  for (int r = 0; r < row_count; ++r) {
    std::vector<std::optional<std::string>> row;
    for (int c = 0; c < column_count; ++c) {
      if (PQgetisnull(result, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(result, r, c), static_cast<size_t>(PQgetlength(result, r, c))));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

std::vector<std::vector<std::optional<std::string>>> Connection::query_text(
    const std::string& sql) {
  PGresult* result = state_->run(sql, "query");
  OwnedResult owned(result);
  if (PQresultStatus(result) != PGRES_TUPLES_OK) state_->fail("query", result);
  return text_rows(result);
}

std::vector<std::vector<std::optional<std::string>>> Connection::query_params(
    const std::string& sql, const std::vector<std::optional<std::string>>& params) {
  PGresult* result = state_->run(sql, "query", &params);
  OwnedResult owned(result);
  ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK) return {};
  if (status != PGRES_TUPLES_OK) state_->fail("query", result);
  return text_rows(result);
}

std::vector<ColumnInfo> Connection::describe(const std::string& sql) {
  PGresult* result =
      state_->run("SELECT * FROM (" + sql + ") AS warden_describe LIMIT 0", "describe");
  OwnedResult owned(result);
  if (PQresultStatus(result) != PGRES_TUPLES_OK) state_->fail("describe", result);
  std::vector<ColumnInfo> columns;
  std::string oids;
  for (int c = 0; c < PQnfields(result); ++c) {
    ColumnInfo column;
    column.name = PQfname(result, c);
    column.type_oid = PQftype(result, c);
    column.type_modifier = PQfmod(result, c);
    columns.push_back(column);
    oids += (oids.empty() ? "" : ",") + std::to_string(column.type_oid);
  }
  if (!columns.empty()) {
    auto names = query_text("SELECT oid, typname FROM pg_type WHERE oid IN (" + oids + ")");
    for (auto& column : columns) {
      for (const auto& row : names) {
        if (row[0] && std::stoul(*row[0]) == column.type_oid)
          column.type_name = row[1].value_or("");
      }
    }
  }
  return columns;
}

void Connection::copy_out_binary(const std::string& sql,
                                 const std::function<void(std::string_view chunk)>& on_data) {
  std::string copy = "COPY (" + sql + ") TO STDOUT (FORMAT binary)";
  const auto timeout = state_->settings.copy_timeout;
  const std::string restore =
      "SET statement_timeout = " + std::to_string(state_->settings.query_timeout.count());
  execute("SET statement_timeout = " + std::to_string(timeout.count()));
  try {
    copy_rows(copy, timeout, on_data);
  } catch (...) {
    if (healthy()) {
      try {
        execute(restore);
      } catch (...) {
        // The original failure is the one worth reporting.
      }
    }
    throw;
  }
  execute(restore);
}

void Connection::copy_rows(const std::string& copy, std::chrono::milliseconds timeout,
                           const std::function<void(std::string_view chunk)>& on_data) {
  PGconn* conn = state_->conn;
  if (!PQsendQuery(conn, copy.c_str())) state_->fail("copy", nullptr);
  auto deadline = state_->deadline(timeout);
  PGresult* start = state_->next_result(deadline);
  if (!start) state_->fail("copy", nullptr);
  {
    OwnedResult owned(start);
    if (PQresultStatus(start) != PGRES_COPY_OUT) {
      // Drain to the end of this command so the connection stays usable.
      while (PGresult* rest = PQgetResult(conn)) PQclear(rest);
      state_->fail("copy", start);
    }
  }
  bool cancelled = false;
  for (;;) {
    char* buffer = nullptr;
    int n = PQgetCopyData(conn, &buffer, /*async=*/1);
    if (n > 0) {
      struct Free {
        void operator()(char* p) const { PQfreemem(p); }
      };
      std::unique_ptr<char, Free> owned(buffer);
      on_data(std::string_view(buffer, static_cast<size_t>(n)));
      continue;
    }
    if (n == 0) {
      auto now = SteadyClock::now();
      if (!cancelled && now >= deadline) {
        state_->cancel_now();
        cancelled = true;
      }
      wait_readable(PQsocket(conn), std::chrono::milliseconds(100));
      if (!PQconsumeInput(conn)) state_->fail("copy", nullptr);
      continue;
    }
    break;  // -1: done, -2: error; the final result says which
  }
  PGresult* last = nullptr;
  while (PGresult* result = PQgetResult(conn)) {
    if (last) PQclear(last);
    last = result;
  }
  if (!last) state_->fail("copy", nullptr);
  OwnedResult owned(last);
  if (PQresultStatus(last) != PGRES_COMMAND_OK) state_->fail("copy", last);
}

void Connection::cancel() noexcept { state_->cancel_now(); }

bool Connection::healthy() const {
  return connected() && PQtransactionStatus(state_->conn) == PQTRANS_IDLE;
}

bool Connection::connected() const {
  return state_->conn && PQstatus(state_->conn) == CONNECTION_OK;
}

std::string Connection::server_version() const {
  int version = PQserverVersion(state_->conn);
  return std::to_string(version / 10000) + "." + std::to_string(version % 10000);
}

int Connection::backend_pid() const { return PQbackendPID(state_->conn); }

const std::string& Connection::redacted_target() const { return state_->redacted; }

}  // namespace warden::pg
