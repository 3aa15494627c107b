// PostgresSource: PostgreSQL (and WRDS) behind the Source interface (include/warden/source.h).
//
// The fast path is `COPY (query) TO STDOUT (FORMAT binary)`, decoded straight into DuckDB
// data chunks: no text parsing, no row objects. A reader thread receives and decodes COPY
// data into a bounded queue of chunks while the caller consumes them; write_parquet hands the
// chunks to DuckDB's Parquet writer through a table function (no staging table), so the
// network read + decode and the Parquet encode run on two cores at once and memory stays
// bounded (16 chunks of 2048 rows) whatever the table size.
//
// Types: bool, int2/4/8, float4/8, numeric (DECIMAL(p,s) when the column declares p <= 38;
// an unconstrained or wider numeric becomes an exact decimal string, never a double), text,
// varchar, char, name, date, timestamp, timestamptz, bytea; anything else is cast to text on
// the server. NULLs everywhere. PostgreSQL's +-infinity dates and timestamps map to DuckDB's.
//
// Thread-safety: one thread at a time, like every Source. Connections come from a Pool (few,
// reused: one WRDS second-factor approval per connection) and every query passes the rate
// limiter. Transient failures (dropped connection, admin shutdown, too many connections)
// are retried with backoff by write_parquet, which restarts the partition from scratch so
// the result is exact.
#pragma once

#include <memory>
#include <string>

#include "warden/postgres.h"
#include "warden/source.h"

namespace warden {

class PostgresSource : public Source {
 public:
  // Does not connect yet: the first query does. Emits sync.credential.expiring when
  // settings.credential_expires is under 30 days away. Throws InvalidArgumentError on bad
  // settings.
  explicit PostgresSource(pg::Settings settings);
  ~PostgresSource() override;

  std::string describe() const override;  // "postgresql:<redacted conninfo>"
  TableSchema schema(const std::string& query) override;
  std::unique_ptr<BatchStream> stream(const std::string& query) override;
  // count(*) and the sum of each row's hash_record_extended (hashtext(row::text) where the
  // server cannot hash a row in binary), computed on the server: one small query.
  SourceFingerprint fingerprint(const std::string& query) override;
  // The same sums grouped by year: one query for all the years (incremental sync).
  std::map<int, SourceFingerprint> year_fingerprints(const std::string& query,
                                                     const std::string& date_column, int first,
                                                     int last) override;
  // Source::write_parquet with retries of transient failures (each retry rewrites `path`).
  // The COPY also sends each row's hash (the same hash fingerprint() sums), summed on the
  // way: the export's fingerprint is of exactly the rows written, with no second scan on the
  // server. The Parquet encoders (private DuckDBs, one per export running at once) are kept
  // across calls. Safe to call from settings.parallel_exports threads at once.
  ParquetExport write_parquet(const std::string& query, const std::string& path,
                              const std::string& spill_dir) override;
  bool fingerprints_exports() const override { return true; }
  // settings.parallel_exports (default 2): each export is one server backend running its
  // COPY, so two use two server cores where one COPY is bound by one.
  int concurrent_exports() const override;

  pg::Pool& pool();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Whether `spec` names a PostgreSQL source: "wrds", "postgresql://...", "postgres://...", or
// "postgresql:" followed by a key=value conninfo ("postgresql:service=wrds").
bool is_postgres_source_spec(const std::string& spec);
// The settings for such a spec: the WRDS preset or the conninfo, then pg::apply_environment.
// Throws InvalidArgumentError for anything else.
pg::Settings postgres_settings_for(const std::string& spec);

}  // namespace warden
