// DuckDbSource: a DuckDB database file as a Source, and the generic Parquet export.
#include <duckdb.h>

#include <cstdlib>

#include "warden/error.h"
#include "warden/posix.h"
#include "warden/source.h"

namespace warden {

using duckdb::quote_literal;

TableSchema schema_of(const std::vector<duckdb::Column>& columns) {
  TableSchema schema;
  for (const duckdb::Column& c : columns) schema.columns.push_back({c.name, c.type_name});
  return schema;
}

namespace {

class DuckDbStream : public BatchStream {
 public:
  explicit DuckDbStream(duckdb::Result result) : result_(std::move(result)) {
    schema_ = schema_of(result_.columns());
  }
  const TableSchema& schema() const override { return schema_; }
  std::optional<duckdb::DataChunk> next() override { return result_.next_chunk(); }

 private:
  duckdb::Result result_;
  TableSchema schema_;
};

std::string column_list(const TableSchema& schema) {
  std::string text;
  for (const ColumnSchema& c : schema.columns) {
    if (!text.empty()) text += ", ";
    text += duckdb::quote_identifier(c.name) + " " + c.type;
  }
  return text;
}

}  // namespace

ParquetExport Source::write_parquet(const std::string& query, const std::string& path,
                                    const std::string& spill_dir) {
  // Rows from a network source arrive a batch at a time; DuckDB buffers them in a private
  // database that spills to spill_dir beyond 256 MB, then writes the Parquet file itself.
  make_directories(spill_dir);
  duckdb::Database sink = duckdb::Database::in_memory(
      {{"memory_limit", "256MB"}, {"temp_directory", spill_dir}, {"threads", "2"}});
  duckdb::Connection connection = sink.connect();
  std::unique_ptr<BatchStream> batches = stream(query);
  connection.execute("CREATE TABLE batches (" + column_list(batches->schema()) + ")");
  ParquetExport out;
  {
    duckdb::Appender appender = connection.appender("", "batches");
    while (auto chunk = batches->next()) {
      out.rows += chunk->size();
      appender.append_chunk(*chunk);
    }
    appender.close();
  }
  connection.execute("COPY batches TO " + quote_literal(path) + " (" + kParquetCopyOptions + ")");
  return out;
}

std::string year_range_query(const std::string& query, const std::string& date_column, int first,
                             int last) {
  const std::string column = duckdb::quote_identifier(date_column);
  return "SELECT * FROM (" + query + ") AS source_rows WHERE " + column + " >= DATE '" +
         std::to_string(first) + "-01-01' AND " + column + " < DATE '" + std::to_string(last + 1) +
         "-01-01'";
}

std::map<int, SourceFingerprint> Source::year_fingerprints(const std::string& query,
                                                           const std::string& date_column,
                                                           int first, int last) {
  std::map<int, SourceFingerprint> out;
  for (int y = first; y <= last; ++y) {
    out[y] = fingerprint(year_range_query(query, date_column, y, y));
  }
  return out;
}

std::vector<YearExport> Source::write_parquet_years(const std::string& query,
                                                    const std::string& date_column, int first,
                                                    int last, const std::string& dir,
                                                    const std::string& spill_dir) {
  std::vector<YearExport> out;
  for (int y = first; y <= last; ++y) {
    YearExport file{.year = y, .path = dir + "/" + std::to_string(y) + ".parquet"};
    file.exported = write_parquet(year_range_query(query, date_column, y, y), file.path, spill_dir);
    out.push_back(std::move(file));
  }
  return out;
}

std::optional<std::pair<int, int>> Source::year_range(const std::string& query,
                                                      const std::string& date_column) {
  const std::string column = duckdb::quote_identifier(date_column);
  std::unique_ptr<BatchStream> rows =
      stream("SELECT min(extract(year FROM " + column + "))::integer, max(extract(year FROM " +
             column + "))::integer FROM (" + query + ") AS q");
  std::optional<duckdb::DataChunk> chunk = rows->next();
  if (!chunk || chunk->size() == 0 || chunk->is_null(0, 0)) return std::nullopt;
  return std::pair<int, int>(chunk->value<int32_t>(0, 0), chunk->value<int32_t>(1, 0));
}

DuckDbSource::DuckDbSource(const std::string& path, Options options)
    : path_(path),
      options_(options),
      database_([&] {
        if (!stat_path(path)) {
          throw duckdb::DuckDbError(ErrorCode::kNotFound,
                                    "open source duckdb:" + path +
                                        ": no such file (create the demo source with "
                                        "'warden sample create " +
                                        path + "')",
                                    path);
        }
        std::map<std::string, std::string> config = {{"access_mode", "READ_ONLY"}};
        if (options.threads > 0) config["threads"] = std::to_string(options.threads);
        if (!options.memory_limit.empty()) config["memory_limit"] = options.memory_limit;
        return duckdb::Database::open(path, config);
      }()),
      connection_(database_.connect()) {}

std::string DuckDbSource::describe() const { return "duckdb:" + path_; }

TableSchema DuckDbSource::schema(const std::string& query) {
  return schema_of(connection_.query("SELECT * FROM (" + query + ") AS q LIMIT 0").columns());
}

std::unique_ptr<BatchStream> DuckDbSource::stream(const std::string& query) {
  return std::make_unique<DuckDbStream>(connection_.query_streaming(query));
}

SourceFingerprint DuckDbSource::fingerprint(const std::string& query) {
  // hash(q) hashes the whole row (q is the row as a struct); the sum does not depend on row
  // order, so a reordered but equal partition keeps its fingerprint.
  duckdb::Result r = connection_.query(
      "SELECT count(*), coalesce(sum(hash(q)), 0)::VARCHAR FROM (" + query + ") AS q");
  return {static_cast<uint64_t>(r.get_int64(0, 0)), r.get_string(1, 0)};
}

std::map<int, SourceFingerprint> DuckDbSource::year_fingerprints(const std::string& query,
                                                                 const std::string& date_column,
                                                                 int first, int last) {
  // The same count and sum(hash(q)) as fingerprint() (q is the same row of the same columns),
  // grouped by year: one scan of the range instead of one per year.
  const std::string column = duckdb::quote_identifier(date_column);
  duckdb::Result r =
      connection_.query("SELECT extract(year FROM q." + column +
                        ")::INTEGER, count(*), coalesce(sum(hash(q)), 0)::VARCHAR FROM (" +
                        year_range_query(query, date_column, first, last) + ") AS q GROUP BY ALL");
  std::map<int, SourceFingerprint> out;
  for (int y = first; y <= last; ++y) out[y] = {0, "0"};  // what fingerprint() says of no rows
  for (size_t row = 0; row < r.row_count(); ++row) {
    out[static_cast<int>(r.get_int64(0, row))] = {static_cast<uint64_t>(r.get_int64(1, row)),
                                                  r.get_string(2, row)};
  }
  return out;
}

std::vector<YearExport> DuckDbSource::write_parquet_years(const std::string& query,
                                                          const std::string& date_column, int first,
                                                          int last, const std::string& dir,
                                                          const std::string& spill_dir) {
  if (!options_.direct_copy || first == last) {  // one year: one plain COPY, no partitioning
    return Source::write_parquet_years(query, date_column, first, last, dir, spill_dir);
  }
  // One pass over the source for all the years: DuckDB writes one file per year under
  // dir/years/__warden_year=<y>/ (the year column itself is not written) and says per file
  // how many rows it holds.
  static const std::string kKey = "__warden_year";
  const std::string column = duckdb::quote_identifier(date_column);
  duckdb::Result r =
      connection_.query("COPY (SELECT *, extract(year FROM " + column + ")::INTEGER AS " + kKey +
                        " FROM (" + year_range_query(query, date_column, first, last) +
                        ") AS q) TO " + quote_literal(dir + "/years") + " (" + kParquetCopyOptions +
                        ", PARTITION_BY (" + kKey + "), RETURN_STATS)");
  std::map<int, std::vector<YearExport>> written;
  for (size_t row = 0; row < r.row_count(); ++row) {
    const std::string path = r.get_string(0, row);
    const size_t at = path.rfind(kKey + "=");
    if (at == std::string::npos) continue;
    const int year = std::atoi(path.c_str() + at + kKey.size() + 1);
    written[year].push_back(
        {.year = year, .path = path, .exported = {static_cast<uint64_t>(r.get_int64(1, row))}});
  }
  std::vector<YearExport> out;
  for (int y = first; y <= last; ++y) {
    auto found = written.find(y);
    if (found != written.end() && found->second.size() == 1) {
      out.push_back(found->second.front());
      continue;
    }
    // No rows (no partition was written), or DuckDB split the year into several files: the
    // year alone, into one file.
    YearExport file{.year = y, .path = dir + "/" + std::to_string(y) + ".parquet"};
    file.exported = write_parquet(year_range_query(query, date_column, y, y), file.path, spill_dir);
    out.push_back(std::move(file));
  }
  return out;
}

ParquetExport DuckDbSource::write_parquet(const std::string& query, const std::string& path,
                                          const std::string& spill_dir) {
  if (!options_.direct_copy) return Source::write_parquet(query, path, spill_dir);
  duckdb::Result r = connection_.query("COPY (" + query + ") TO " + quote_literal(path) + " (" +
                                       kParquetCopyOptions + ")");
  return {static_cast<uint64_t>(r.get_int64(0, 0))};
}

}  // namespace warden
