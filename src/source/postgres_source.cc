// PostgresSource: COPY BINARY from a pooled connection, read by a background thread into a
// bounded queue and decoded into DuckDB chunks by the caller.
#include "warden/postgres_source.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "lazy_duckdb.h"
#include "pg_copy_decoder.h"
#include "warden/events.h"
#include "warden/posix.h"

namespace warden {

namespace {

TableSchema schema_from_plan(const std::vector<pg_internal::PlannedColumn>& plan) {
  TableSchema schema;
  for (const auto& column : plan) schema.columns.push_back({column.name, column.duckdb_type});
  return schema;
}

// Decoded chunks handed from the reader thread to the consumer, bounded so a fast server and
// a slow disk cannot fill memory: the reader waits when the queue is full.
class ChunkQueue {
 public:
  explicit ChunkQueue(size_t max_chunks) : max_chunks_(max_chunks) {}

  // Blocks while full. Returns false if the consumer has gone away.
  bool push(duckdb::DataChunk chunk) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return chunks_.size() < max_chunks_ || closed_; });
    if (closed_) return false;
    chunks_.push_back(std::move(chunk));
    not_empty_.notify_one();
    return true;
  }
  // Blocks until a chunk, or the end (nullopt; then error() says whether it failed).
  std::optional<duckdb::DataChunk> pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return !chunks_.empty() || finished_; });
    if (chunks_.empty()) return std::nullopt;
    duckdb::DataChunk chunk = std::move(chunks_.front());
    chunks_.pop_front();
    not_full_.notify_one();
    return chunk;
  }
  void finish(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    error_ = error;
    not_empty_.notify_all();
  }
  // The consumer stops reading: unblocks the producer.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    not_full_.notify_all();
  }
  std::exception_ptr error() {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<duckdb::DataChunk> chunks_;
  size_t max_chunks_;
  bool finished_ = false;
  bool closed_ = false;
  std::exception_ptr error_;
};

// One COPY: a reader thread receives the bytes and decodes them into chunks while the caller
// consumes the previous ones (writes Parquet), so the two cores overlap network and encode.
// At most kQueuedChunks chunks (2048 rows each) plus one receive block wait in memory.
class CopyStream : public BatchStream {
 public:
  static constexpr size_t kQueuedChunks = 16;
  static constexpr size_t kReceiveBlock = 256u << 10;

  // `row_hash`: copy_sql is a pg_internal::copy_query_with_row_hash (row_hash_sum() then
  // holds the sum of the rows' hashes once next() has returned nullopt).
  CopyStream(pg::Pool::Lease lease, std::string copy_sql,
             std::vector<pg_internal::PlannedColumn> plan, bool row_hash = false)
      : lease_(std::move(lease)),
        schema_(schema_from_plan(plan)),
        decoder_(std::move(plan), row_hash),
        queue_(kQueuedChunks) {
    reader_ = std::thread([this, sql = std::move(copy_sql)] { read(sql); });
  }

  ~CopyStream() override {
    queue_.close();
    if (!done_) lease_->cancel();  // stop the server sending what no one will read
    reader_.join();
  }

  const TableSchema& schema() const override { return schema_; }
  // DuckDB types of the columns (fixed at construction).
  const std::vector<duckdb_logical_type>& types() const { return decoder_.types(); }

  std::optional<duckdb::DataChunk> next() override {
    if (done_) return std::nullopt;
    if (auto chunk = queue_.pop()) return chunk;
    done_ = true;
    if (auto error = queue_.error()) std::rethrow_exception(error);
    return std::nullopt;
  }
  // After the end (next() returned nullopt; the reader thread has finished with the decoder).
  uint64_t rows() const { return decoder_.rows(); }
  __int128 row_hash_sum() const { return decoder_.row_hash_sum(); }

 private:
  void read(const std::string& sql) {
    std::exception_ptr error;
    try {
      std::string block;
      block.reserve(kReceiveBlock);
      bool consumer_gone = false;
      auto decode = [&] {
        decoder_.feed(block);
        block.clear();
        while (auto chunk = decoder_.take()) {
          if (!queue_.push(std::move(*chunk))) consumer_gone = true;
        }
      };
      lease_->copy_out_binary(sql, [&](std::string_view data) {
        if (consumer_gone) return;
        block.append(data);
        if (block.size() >= kReceiveBlock) decode();
      });
      if (!consumer_gone) {
        decode();
        if (auto last = decoder_.finish()) queue_.push(std::move(*last));
      }
    } catch (...) {
      error = std::current_exception();
    }
    queue_.finish(error);
  }

  pg::Pool::Lease lease_;
  TableSchema schema_;
  pg_internal::CopyDecoder decoder_;
  ChunkQueue queue_;
  std::thread reader_;
  bool done_ = false;
};

// A CopyStream as a DuckDB table function, so `COPY (SELECT * FROM warden_copy_stream())
// TO 'x.parquet'` encodes straight from the decoded chunks: no staging table, no second pass.
struct TableFunctionFeed {
  CopyStream* stream = nullptr;
  std::optional<duckdb::DataChunk> current;  // referenced by DuckDB's output until the next call
  std::exception_ptr error;                  // the source's own failure, rethrown as itself
};

void feed_bind(duckdb_bind_info info) {
  auto* feed = static_cast<TableFunctionFeed*>(duckdb_bind_get_extra_info(info));
  const auto& columns = feed->stream->schema().columns;
  const auto& types = feed->stream->types();
  for (size_t i = 0; i < columns.size(); ++i) {
    duckdb_bind_add_result_column(info, columns[i].name.c_str(), types[i]);
  }
}

void feed_init(duckdb_init_info info) { duckdb_init_set_max_threads(info, 1); }

void feed_next(duckdb_function_info info, duckdb_data_chunk output) {
  auto* feed = static_cast<TableFunctionFeed*>(duckdb_function_get_extra_info(info));
  try {
    feed->current = feed->stream->next();
  } catch (...) {
    feed->error = std::current_exception();
    duckdb_function_set_error(info, "the PostgreSQL COPY stream failed");
    return;
  }
  if (!feed->current) {
    duckdb_data_chunk_set_size(output, 0);
    return;
  }
  duckdb_data_chunk source = feed->current->handle();
  idx_t columns = duckdb_data_chunk_get_column_count(source);
  for (idx_t i = 0; i < columns; ++i) {
    duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, i),
                                   duckdb_data_chunk_get_vector(source, i));
  }
  duckdb_data_chunk_set_size(output, feed->current->size());
}

void register_feed(duckdb::Connection& connection, TableFunctionFeed* feed) {
  duckdb_table_function function = duckdb_create_table_function();
  duckdb_table_function_set_name(function, "warden_copy_stream");
  duckdb_table_function_set_extra_info(function, feed, nullptr);
  duckdb_table_function_set_bind(function, feed_bind);
  duckdb_table_function_set_init(function, feed_init);
  duckdb_table_function_set_function(function, feed_next);
  duckdb_state state = duckdb_register_table_function(connection.handle(), function);
  duckdb_destroy_table_function(&function);
  if (state != DuckDBSuccess) {
    throw Error(ErrorCode::kInternal, "register the DuckDB table function warden_copy_stream");
  }
}

// A 128-bit integer in decimal, as PostgreSQL prints a numeric sum of integers.
std::string int128_text(__int128 value) {
  if (value == 0) return "0";
  const bool negative = value < 0;
  unsigned __int128 magnitude =
      negative ? -static_cast<unsigned __int128>(value) : static_cast<unsigned __int128>(value);
  std::string digits;
  while (magnitude > 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  }
  if (negative) digits.push_back('-');
  return std::string(digits.rbegin(), digits.rend());
}

// The two forms of a row's hash, and of the fingerprint: hash_record_extended (PostgreSQL 14+)
// hashes each row's binary values; hashtext(row::text) is the fallback (see fingerprint()).
constexpr const char* kBinaryRowHash = "hash_record_extended(warden_row, 0)";
constexpr const char* kTextRowHash = "hashtext(warden_row::text)";

bool is_no_row_hash(const pg::PostgresError& e) {
  // 42883: no such function (PostgreSQL < 14), or no hash for a column's type (json).
  return e.sqlstate() == "42883" || e.sqlstate() == "0A000";
}

}  // namespace

struct PostgresSource::State {
  explicit State(pg::Settings s)
      : settings(std::move(s)), pool(settings), limiter(settings.queries_per_minute) {}
  pg::Settings settings;
  pg::Pool pool;
  pg::RateLimiter limiter;
  std::atomic<bool> binary_fingerprint{true};  // false once the server cannot hash rows in binary

  // A DuckDB that encodes Parquet, kept across partitions (building one costs ~100 ms of
  // CPU: its catalog registers every function), with warden_copy_stream registered once on
  // it, fed from `feed`. One per export running at once: the table function is the
  // database's, so two exports cannot share one.
  struct Sink {
    std::string spill_dir;
    std::optional<duckdb::Database> database;
    std::optional<duckdb::Connection> connection;
    TableFunctionFeed feed;
  };
  std::mutex sinks_mutex;
  std::vector<std::unique_ptr<Sink>> idle_sinks;

  // An idle sink for spill_dir, or a new one. Give it back with return_sink.
  std::unique_ptr<Sink> take_sink(const std::string& spill_dir) {
    {
      std::lock_guard<std::mutex> held(sinks_mutex);
      for (auto it = idle_sinks.begin(); it != idle_sinks.end(); ++it) {
        if ((*it)->spill_dir != spill_dir) continue;
        std::unique_ptr<Sink> sink = std::move(*it);
        idle_sinks.erase(it);
        return sink;
      }
    }
    make_directories(spill_dir);
    auto sink = std::make_unique<Sink>();
    sink->spill_dir = spill_dir;
    // 256 MB each: a sync runs settings.parallel_exports of them (2 by default).
    sink->database = duckdb::Database::in_memory(
        {{"memory_limit", "256MB"}, {"temp_directory", spill_dir}, {"threads", "1"}});
    sink->connection = sink->database->connect();
    register_feed(*sink->connection, &sink->feed);
    return sink;
  }

  void return_sink(std::unique_ptr<Sink> sink) {
    sink->feed = TableFunctionFeed{};
    std::lock_guard<std::mutex> held(sinks_mutex);
    // Sinks of another spill directory (an earlier dataset) are not used again.
    std::erase_if(idle_sinks, [&](const auto& s) { return s->spill_dir != sink->spill_dir; });
    idle_sinks.push_back(std::move(sink));
  }

  std::vector<pg_internal::PlannedColumn> plan(const std::string& query) {
    limiter.acquire();
    auto lease = pool.lease();
    return pg_internal::plan_columns(lease->describe(query));
  }

  std::unique_ptr<CopyStream> open_copy(const std::string& query) {
    auto columns = plan(query);
    std::string sql = pg_internal::copy_query(query, columns);
    limiter.acquire();
    return std::make_unique<CopyStream>(pool.lease(), std::move(sql), std::move(columns));
  }

  // One attempt: COPY from the server into DuckDB's Parquet writer, chunk by chunk, with each
  // row's hash summed on the way (the fingerprint of exactly these rows).
  ParquetExport export_once(const std::string& query, const std::string& path,
                            const std::string& spill_dir) {
    struct Taken {
      State& state;
      std::unique_ptr<Sink> sink;
      ~Taken() { state.return_sink(std::move(sink)); }
    } taken{*this, take_sink(spill_dir)};
    Sink& sink = *taken.sink;
    auto columns = plan(query);
    const bool binary = binary_fingerprint.load();
    std::string sql = pg_internal::copy_query_with_row_hash(query, columns,
                                                            binary ? kBinaryRowHash : kTextRowHash);
    limiter.acquire();
    auto copy = std::make_unique<CopyStream>(pool.lease(), std::move(sql), std::move(columns),
                                             /*row_hash=*/true);
    sink.feed = TableFunctionFeed{.stream = copy.get()};
    try {
      duckdb::Result result =
          sink.connection->query("COPY (SELECT * FROM warden_copy_stream()) TO " +
                                 duckdb::quote_literal(path) + " (" + kParquetCopyOptions + ")");
      ParquetExport out{static_cast<uint64_t>(result.get_int64(0, 0))};
      out.fingerprint =
          SourceFingerprint{copy->rows(), (binary ? "r" : "t") + int128_text(copy->row_hash_sum())};
      return out;
    } catch (const duckdb::DuckDbError&) {
      if (std::exception_ptr error = sink.feed.error) {
        std::rethrow_exception(error);  // e.g. a retryable dropped connection
      }
      throw;
    }
  }
};

PostgresSource::PostgresSource(pg::Settings settings)
    : state_(std::make_unique<State>(std::move(settings))) {
  // Every sync says so when the password is about to expire (sync.credential.expiring).
  pg::check_credential_expiry(state_->settings,
                              format_utc(std::chrono::system_clock::now()).substr(0, 10));
}

PostgresSource::~PostgresSource() = default;

std::string PostgresSource::describe() const {
  return "postgresql:" + pg::redact_conninfo(state_->settings.conninfo);
}

TableSchema PostgresSource::schema(const std::string& query) {
  TableSchema schema;
  pg::with_retries(state_->settings, [&](int) { schema = schema_from_plan(state_->plan(query)); });
  return schema;
}

std::unique_ptr<BatchStream> PostgresSource::stream(const std::string& query) {
  return state_->open_copy(query);
}

SourceFingerprint PostgresSource::fingerprint(const std::string& query) {
  // hash_record_extended (PostgreSQL 14+) hashes each row's binary values: it costs about
  // what count(*) costs, where hashtext(row::text) formats every value as text first (twice
  // the server time of a whole COPY on a crsp.dsf year). A server without it, or a column
  // type it cannot hash (json), falls back to the text form; the choice is remembered, and a
  // given server always makes the same one, so fingerprints stay comparable across runs.
  static const char* kBinary =
      "SELECT count(*), 'r' || coalesce(sum(hash_record_extended(warden_row, 0)::numeric), 0) "
      "FROM (%s) AS warden_row";
  static const char* kText =
      "SELECT count(*), 't' || coalesce(sum(hashtext(warden_row::text)::numeric), 0) "
      "FROM (%s) AS warden_row";
  SourceFingerprint fingerprint;
  pg::with_retries(state_->settings, [&](int) {
    state_->limiter.acquire();
    auto lease = state_->pool.lease();
    auto run = [&](const char* form) {
      std::string sql = form;
      sql.replace(sql.find("%s"), 2, query);
      return lease->query_text(sql);
    };
    std::vector<std::vector<std::optional<std::string>>> rows;
    if (state_->binary_fingerprint) {
      try {
        rows = run(kBinary);
      } catch (const pg::PostgresError& e) {
        // 42883: no such function (PostgreSQL < 14), or no hash for a column's type.
        if (e.sqlstate() != "42883" && e.sqlstate() != "0A000") throw;
        state_->binary_fingerprint = false;
      }
    }
    if (!state_->binary_fingerprint) rows = run(kText);
    fingerprint.rows = std::stoull(rows.at(0).at(0).value_or("0"));
    fingerprint.aggregate = rows.at(0).at(1).value_or("0");
  });
  return fingerprint;
}

std::map<int, SourceFingerprint> PostgresSource::year_fingerprints(const std::string& query,
                                                                   const std::string& date_column,
                                                                   int first, int last) {
  // fingerprint()'s count and sum, grouped by year: one query and one scan of the range for
  // all the years instead of one round trip per year.
  std::string column = "\"";
  for (char ch : date_column) column += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  column += "\"";
  const std::string range = year_range_query(query, date_column, first, last);
  std::map<int, SourceFingerprint> out;
  pg::with_retries(state_->settings, [&](int) {
    state_->limiter.acquire();
    auto lease = state_->pool.lease();
    auto run = [&](const char* row_hash, const char* prefix) {
      return lease->query_text("SELECT extract(year FROM warden_row." + column +
                               ")::integer, count(*), '" + prefix + "' || coalesce(sum(" +
                               row_hash + "::numeric), 0) FROM (" + range +
                               ") AS warden_row GROUP BY 1");
    };
    std::vector<std::vector<std::optional<std::string>>> rows;
    if (state_->binary_fingerprint) {
      try {
        rows = run(kBinaryRowHash, "r");
      } catch (const pg::PostgresError& e) {
        if (!is_no_row_hash(e)) throw;
        state_->binary_fingerprint = false;
      }
    }
    if (!state_->binary_fingerprint) rows = run(kTextRowHash, "t");
    out.clear();
    const std::string none = state_->binary_fingerprint ? "r0" : "t0";  // fingerprint() of no rows
    for (int y = first; y <= last; ++y) out[y] = {0, none};
    for (const auto& row : rows) {
      out[std::stoi(row.at(0).value_or("0"))] = {std::stoull(row.at(1).value_or("0")),
                                                 row.at(2).value_or(none)};
    }
  });
  return out;
}

ParquetExport PostgresSource::write_parquet(const std::string& query, const std::string& path,
                                            const std::string& spill_dir) {
  ParquetExport result;
  // A dropped connection mid-COPY restarts the partition from its first row: the Parquet
  // file is rewritten whole, so a retry can neither duplicate nor lose a row.
  pg::with_retries(state_->settings, [&](int attempt) {
    if (attempt > 1) {
      emit_event(EventLevel::kInfo, "source.partition.restart",
                 "restarting the partition export after a transient failure",
                 {{"path", path}, {"attempt", attempt}});
    }
    try {
      result = state_->export_once(query, path, spill_dir);
    } catch (const pg::PostgresError& e) {
      if (!state_->binary_fingerprint || !is_no_row_hash(e)) throw;
      state_->binary_fingerprint = false;  // as fingerprint() does: the text form from now on
      result = state_->export_once(query, path, spill_dir);
    }
  });
  return result;
}

int PostgresSource::concurrent_exports() const {
  return std::max(1, state_->settings.parallel_exports);
}

pg::Pool& PostgresSource::pool() { return state_->pool; }

bool is_postgres_source_spec(const std::string& spec) {
  return spec == "wrds" || spec.rfind("postgresql:", 0) == 0 || spec.rfind("postgres:", 0) == 0;
}

pg::Settings postgres_settings_for(const std::string& spec) {
  if (!is_postgres_source_spec(spec)) {
    throw InvalidArgumentError("parse source '" + pg::redact_conninfo(spec) +
                               "': expected wrds, postgresql://... or postgresql:KEY=VALUE...");
  }
  std::string conninfo = spec;
  // "postgresql:service=wrds" is key=value conninfo behind our scheme prefix; a URI keeps it.
  for (const char* prefix : {"postgresql:", "postgres:"}) {
    std::string p = prefix;
    if (spec.rfind(p, 0) == 0 && spec.rfind(p + "//", 0) != 0) conninfo = spec.substr(p.size());
  }
  pg::Settings settings = pg::settings_from_source(conninfo);
  pg::apply_environment(settings);
  return settings;
}

}  // namespace warden
