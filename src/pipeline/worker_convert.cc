// NDJSON files -> one Parquet file with DuckDB, published atomically (pipeline_worker.h).
#include <string_view>

#include "warden/checksum.h"
#include "warden/failpoint.h"
#include "warden/pipeline_worker.h"
#include "warden/posix.h"

namespace warden::pipeline {
namespace {

using duckdb::quote_literal;

// DuckDB appends the statement with a caret under the failing call ("\n\nLINE 1: COPY ...");
// the operator needs DuckDB's reason, not our SQL.
std::string reason_without_sql_context(const std::string& message) {
  std::string reason = message;
  const size_t line = reason.find("\n\nLINE ");
  if (line != std::string::npos) reason.erase(line);
  while (!reason.empty() && (reason.back() == ' ' || reason.back() == '\n')) reason.pop_back();
  // The wrapper prefixes "query '<sql>': "; DuckDB's own text follows it.
  const size_t start = reason.find("': ");
  if (reason.rfind("query '", 0) == 0 && start != std::string::npos) reason.erase(0, start + 3);
  return reason;
}

// The input DuckDB blames: its messages say `... in file "PATH" ...` for JSON errors, and
// `No files found that match the pattern "PATH"` for a missing one.
std::string blamed_input(const std::string& reason, const std::vector<std::string>& inputs) {
  for (const std::string& input : inputs) {
    if (reason.find('"' + input + '"') != std::string::npos) return input;
  }
  return "";
}

bool is_input_error(const duckdb::DuckDbError& error, const std::string& reason) {
  if (error.code() == ErrorCode::kDiskFull || error.code() == ErrorCode::kUnavailable) {
    return false;
  }
  return reason.rfind("Invalid Input Error", 0) == 0 ||
         reason.find("No files found") != std::string::npos ||
         reason.find("Malformed JSON") != std::string::npos;
}

std::string copy_statement(const std::vector<std::string>& inputs, const std::string& temp,
                           const ConvertOptions& options) {
  std::string files = "[";
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) files += ", ";
    files += quote_literal(inputs[i]);
  }
  files += "]";
  // union_by_name: without it DuckDB takes the columns from a sample of the files and a key
  // that only later files carry comes out NULL - silently losing data.
  std::string sql = "COPY (SELECT * FROM read_json(" + files +
                    ", format = 'newline_delimited', union_by_name = true)) TO " +
                    quote_literal(temp) + " (FORMAT parquet, COMPRESSION " +
                    quote_literal(options.compression);
  if (options.row_group_size) sql += ", ROW_GROUP_SIZE " + std::to_string(options.row_group_size);
  return sql + ")";
}

}  // namespace

ConvertResult convert_ndjson_to_parquet(duckdb::Connection& connection,
                                        const std::vector<std::string>& inputs,
                                        const std::string& target, const ConvertOptions& options,
                                        const std::function<void()>& before_publish) {
  if (inputs.empty()) {
    throw InvalidArgumentError("convert " + target + ": no input files");
  }
  // Hidden and not ending in .parquet: a reader's glob of *.parquet never matches it.
  const std::string temp = temp_name_beside(target);
  ConvertResult result;
  try {
    try {
      duckdb::Result copied = connection.query(copy_statement(inputs, temp, options));
      result.rows = static_cast<uint64_t>(copied.get_int64(0, 0));
    } catch (const duckdb::DuckDbError& e) {
      const std::string reason = reason_without_sql_context(e.what());
      if (!is_input_error(e, reason)) throw;
      const std::string file = blamed_input(reason, inputs);
      throw MalformedInputError(
          "convert " + target + ": malformed NDJSON in " +
              (file.empty() ? "one of " + std::to_string(inputs.size()) + " input files" : file) +
              ": " + reason,
          file);
    }
    {
      UniqueFd fd = open_read(temp);
      fsync_fd(fd.get(), temp);
      result.bytes = stat_fd(fd.get(), temp).size;
    }
    result.sha256 = sha256_file(temp);
    WARDEN_FAILPOINT("pipeline.convert.after_temp_write");
    if (before_publish) before_publish();
    rename_replace(temp, target);
  } catch (...) {
    remove_file(temp);
    throw;
  }
  // Without this the rename may not survive a crash, yet the caller would record the output.
  fsync_directory(parent_directory(target));
  return result;
}

}  // namespace warden::pipeline
