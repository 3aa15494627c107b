// Private to src/source/: decoding PostgreSQL's COPY BINARY format into DuckDB data chunks.
//
// The format (PostgreSQL docs, "COPY ... Binary Format"): an 11-byte signature
// "PGCOPY\n\377\r\n\0", int32 flags, int32 header-extension length (+ extension), then per
// tuple an int16 field count followed by (int32 length, bytes) per field, length -1 for NULL;
// a field count of -1 ends the data. All integers are network byte order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "warden/duckdb.h"
#include "warden/postgres.h"

namespace warden::pg_internal {

// How one column is decoded, chosen from its PostgreSQL type.
enum class Kind {
  kBool,
  kInt16,
  kInt32,
  kInt64,
  kFloat,
  kDouble,
  kDecimal,      // numeric(p,s) with p <= 38: DuckDB DECIMAL(p,s)
  kNumericText,  // unconstrained or wider numeric: its exact decimal text
  kText,         // text, varchar, char, name, and anything cast to text on the server
  kBlob,         // bytea
  kDate,
  kTimestamp,
  kTimestampTz,
};

struct PlannedColumn {
  std::string name;
  Kind kind = Kind::kText;
  int precision = 0;
  int scale = 0;
  std::string duckdb_type;    // "DECIMAL(12,4)", "VARCHAR", ...
  bool cast_to_text = false;  // the server sends this column ::text (no binary decoder)
};

// Chooses the decoding of each column from what the server describes.
std::vector<PlannedColumn> plan_columns(const std::vector<pg::ColumnInfo>& columns);

// The query COPY should run: `query` itself, or a SELECT that casts the planned columns
// that have no binary decoder to text.
std::string copy_query(const std::string& query, const std::vector<PlannedColumn>& columns);

// The COPY query that also sends, after the planned columns, `row_hash`: an int8 or int4 SQL
// expression over the row of `query` named warden_row ("hash_record_extended(warden_row, 0)"),
// which the decoder sums instead of storing, so a fingerprint of exactly the exported rows
// comes with the export (PostgresSource::fingerprint computes the same sum on the server).
std::string copy_query_with_row_hash(const std::string& query,
                                     const std::vector<PlannedColumn>& columns,
                                     const std::string& row_hash);

// Exact decimal text of a numeric in binary form ("-12.3400", "NaN", "Infinity").
std::string numeric_to_text(std::string_view field);

// Feeds raw COPY bytes in any chunking; produces full DataChunks of up to `chunk_rows` rows.
// Throws Error(kMalformed) naming the column on data that does not match the plan.
class CopyDecoder {
 public:
  // With `row_hash`, every tuple carries one more field after the planned columns (see
  // copy_query_with_row_hash): summed into row_hash_sum(), not written to the chunks.
  explicit CopyDecoder(std::vector<PlannedColumn> columns, bool row_hash = false);
  ~CopyDecoder();
  CopyDecoder(const CopyDecoder&) = delete;
  CopyDecoder& operator=(const CopyDecoder&) = delete;

  // Decodes every complete tuple in buffered + data. Full chunks queue up for take().
  void feed(std::string_view data);
  // A full chunk, if one is ready.
  std::optional<duckdb::DataChunk> take();
  // After the last feed: the final partial chunk (if any rows). Throws if the data ended
  // without the end-of-data marker (a cut stream must never look complete).
  std::optional<duckdb::DataChunk> finish();
  uint64_t rows() const { return rows_; }
  // The sum of the row hashes decoded so far (NULL hashes count as nothing, as in SQL's sum).
  __int128 row_hash_sum() const { return row_hash_sum_; }
  // The DuckDB type of each column, in order (owned by the decoder).
  const std::vector<duckdb_logical_type>& types() const { return types_; }

 private:
  bool decode_tuple(std::string_view data, size_t& pos);
  void write_field(size_t column, std::string_view field);
  void start_chunk();
  void seal_chunk();

  std::vector<PlannedColumn> columns_;
  bool row_hash_ = false;
  __int128 row_hash_sum_ = 0;
  std::vector<duckdb_logical_type> types_;
  // The current chunk's vectors, their data and validity (start_chunk).
  std::vector<duckdb_vector> vectors_;
  std::vector<void*> data_;
  std::vector<uint64_t*> validity_;
  std::string pending_;  // an incomplete tuple carried to the next feed
  bool header_seen_ = false;
  bool trailer_seen_ = false;
  duckdb_data_chunk chunk_ = nullptr;
  size_t chunk_size_ = 0;
  size_t capacity_ = 0;
  std::vector<duckdb::DataChunk> ready_;
  uint64_t rows_ = 0;
};

}  // namespace warden::pg_internal
