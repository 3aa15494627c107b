// PostgresSource: COPY BINARY from a pooled connection, read by a background thread into a
// bounded queue and decoded into DuckDB chunks by the caller.
#include "warden/postgres_source.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "pg_copy_decoder.h"
#include "warden/events.h"

namespace warden {

namespace {

TableSchema schema_from_plan(const std::vector<pg_internal::PlannedColumn>& plan) {
  TableSchema schema;
  for (const auto& column : plan) schema.columns.push_back({column.name, column.duckdb_type});
  return schema;
}

// Raw COPY bytes handed from the reader thread to the decoder, bounded so a fast server
// and a slow disk cannot fill memory: the reader waits when the queue is full.
class ByteQueue {
 public:
  explicit ByteQueue(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Blocks while full. Returns false if the consumer has gone away.
  bool push(std::string block) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return bytes_ < max_bytes_ || closed_; });
    if (closed_) return false;
    bytes_ += block.size();
    blocks_.push_back(std::move(block));
    not_empty_.notify_one();
    return true;
  }
  // Blocks until a block, or the end (nullopt; then error() says whether it failed).
  std::optional<std::string> pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return !blocks_.empty() || finished_; });
    if (blocks_.empty()) return std::nullopt;
    std::string block = std::move(blocks_.front());
    blocks_.pop_front();
    bytes_ -= block.size();
    not_full_.notify_one();
    return block;
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
  std::deque<std::string> blocks_;
  size_t bytes_ = 0;
  size_t max_bytes_;
  bool finished_ = false;
  bool closed_ = false;
  std::exception_ptr error_;
};

class CopyStream : public BatchStream {
 public:
  CopyStream(pg::Pool::Lease lease, std::string copy_sql,
             std::vector<pg_internal::PlannedColumn> plan)
      : lease_(std::move(lease)),
        schema_(schema_from_plan(plan)),
        decoder_(std::move(plan)),
        queue_(32u << 20) {
    reader_ = std::thread([this, sql = std::move(copy_sql)] { read(sql); });
  }

  ~CopyStream() override {
    queue_.close();
    if (!done_) lease_->cancel();  // stop the server sending what no one will read
    reader_.join();
  }

  const TableSchema& schema() const override { return schema_; }

  std::optional<duckdb::DataChunk> next() override {
    for (;;) {
      if (auto chunk = decoder_.take()) return chunk;
      if (done_) return std::nullopt;
      auto block = queue_.pop();
      if (!block) {
        if (auto error = queue_.error()) std::rethrow_exception(error);
        done_ = true;
        return decoder_.finish();
      }
      decoder_.feed(*block);
    }
  }

 private:
  void read(const std::string& sql) {
    std::exception_ptr error;
    try {
      std::string block;
      block.reserve(1u << 20);
      bool consumer_gone = false;
      lease_->copy_out_binary(sql, [&](std::string_view data) {
        if (consumer_gone) return;
        block.append(data);
        if (block.size() >= (1u << 20)) {
          consumer_gone = !queue_.push(std::move(block));
          block.clear();
          block.reserve(1u << 20);
        }
      });
      if (!block.empty()) queue_.push(std::move(block));
    } catch (...) {
      error = std::current_exception();
    }
    queue_.finish(error);
  }

  pg::Pool::Lease lease_;
  TableSchema schema_;
  pg_internal::CopyDecoder decoder_;
  ByteQueue queue_;
  std::thread reader_;
  bool done_ = false;
};

}  // namespace

struct PostgresSource::State {
  explicit State(pg::Settings s)
      : settings(std::move(s)), pool(settings), limiter(settings.queries_per_minute) {}
  pg::Settings settings;
  pg::Pool pool;
  pg::RateLimiter limiter;

  std::vector<pg_internal::PlannedColumn> plan(const std::string& query) {
    limiter.acquire();
    auto lease = pool.lease();
    return pg_internal::plan_columns(lease->describe(query));
  }
};

PostgresSource::PostgresSource(pg::Settings settings)
    : state_(std::make_unique<State>(std::move(settings))) {}

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
  auto plan = state_->plan(query);
  std::string sql = pg_internal::copy_query(query, plan);
  state_->limiter.acquire();
  return std::make_unique<CopyStream>(state_->pool.lease(), std::move(sql), std::move(plan));
}

SourceFingerprint PostgresSource::fingerprint(const std::string& query) {
  // hashtext over the row's text form changes when any value changes; summed as numeric so
  // it cannot overflow. One small query, computed entirely on the server.
  std::string sql = "SELECT count(*), coalesce(sum(hashtext(warden_row::text)::numeric), 0) "
                    "FROM (" + query + ") AS warden_row";
  SourceFingerprint fingerprint;
  pg::with_retries(state_->settings, [&](int) {
    state_->limiter.acquire();
    auto lease = state_->pool.lease();
    auto rows = lease->query_text(sql);
    fingerprint.rows = std::stoull(rows.at(0).at(0).value_or("0"));
    fingerprint.aggregate = rows.at(0).at(1).value_or("0");
  });
  return fingerprint;
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
    result = Source::write_parquet(query, path, spill_dir);
  });
  return result;
}

pg::Pool& PostgresSource::pool() { return state_->pool; }

}  // namespace warden
