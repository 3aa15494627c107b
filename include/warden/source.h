// Where rows come from (DESIGN.md "source"): a Source runs a query and streams typed batches
// with the schema known before the first batch. The interface is shaped for a network source
// (WRDS is PostgreSQL behind a slow link, about 7 connections per user): one query at a
// time, bounded memory (a batch at a time), a cheap server-side fingerprint so an incremental
// sync can find revised history without pulling it, and Parquet written from the stream.
//
// Implementations: DuckDbSource (a DuckDB database file, the embedded source and the demo),
// and the PostgreSQL/WRDS source behind the same interface.
//
// Thread-safety: a Source is used by one thread at a time. Every call blocks until the
// source answers. Errors are warden::Error subclasses (duckdb::DuckDbError for DuckDB) whose
// message names the query or file; kUnavailable means "retry later".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "warden/duckdb.h"
#include "warden/storage.h"

namespace warden {

// A stream of batches for one query. schema() is known before the first next().
class BatchStream {
 public:
  virtual ~BatchStream() = default;
  virtual const TableSchema& schema() const = 0;
  // The next batch (DuckDB's columnar chunk, up to 2048 rows, typed as schema() says), or
  // nullopt at the end. Blocks. Memory: one batch at a time.
  virtual std::optional<duckdb::DataChunk> next() = 0;
};

// The source's cheap summary of a partition: rows and an aggregate that changes when any
// value changes (DuckDB: the sum of the rows' hashes). Computed by the server: no rows move.
struct SourceFingerprint {
  uint64_t rows = 0;
  std::string aggregate;
  bool operator==(const SourceFingerprint&) const = default;
};

// The COPY options (inside the parentheses) of every Parquet file a Source writes: zstd at
// level 1. On the sample's crsp.dsf, DuckDB wrote the 25 year files at level 1 in 0.67-0.88x
// the time of its default level 3, and 3% smaller (bench/README.md, "Sync").
inline constexpr const char* kParquetCopyOptions =
    "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1";

// What a Parquet export wrote.
struct ParquetExport {
  uint64_t rows = 0;
  // The fingerprint of exactly the rows written, when the source computed it in the same pass
  // (PostgresSource: the server hashes each row it sends). Equal to what fingerprint() of the
  // same query returns for the same rows; nullopt when the source does not do that.
  std::optional<SourceFingerprint> fingerprint;
};

// The rows of `query` whose `date_column` falls in the calendar years first..last, as SQL that
// PostgreSQL and DuckDB both run: "SELECT * FROM (query) AS source_rows WHERE c >= DATE
// 'first-01-01' AND c < DATE 'last+1-01-01'" (a half-open range, so an index or zone map on
// the date column is used). One year's partition is year_range_query(q, c, y, y).
std::string year_range_query(const std::string& query, const std::string& date_column, int first,
                             int last);

// One year's file written by Source::write_parquet_years.
struct YearExport {
  int year = 0;
  std::string path;  // the new, complete, not yet fsynced Parquet file
  ParquetExport exported;
};

class Source {
 public:
  virtual ~Source() = default;
  // "duckdb:/path/sample.duckdb" (never a password).
  virtual std::string describe() const = 0;
  // The columns `query` returns, without running it to completion.
  virtual TableSchema schema(const std::string& query) = 0;
  // Runs `query` and streams its rows.
  virtual std::unique_ptr<BatchStream> stream(const std::string& query) = 0;
  // Count and aggregate over `query`'s rows, computed by the source.
  virtual SourceFingerprint fingerprint(const std::string& query) = 0;
  // The fingerprint of each year first..last of `query` by `date_column`, each equal to
  // fingerprint(year_range_query(query, date_column, y, y)) (a year without rows included), in
  // one pass where the source can (DuckDB: one grouped query over the range instead of one
  // scan per year). The default asks fingerprint() once per year.
  virtual std::map<int, SourceFingerprint> year_fingerprints(const std::string& query,
                                                             const std::string& date_column,
                                                             int first, int last);
  // Whether write_parquet returns the fingerprint of the rows it wrote (then a sync needs no
  // separate fingerprint query, and the fingerprint is of exactly the rows exported).
  virtual bool fingerprints_exports() const { return false; }
  // The first and last calendar year of `date_column` over `query`'s rows, computed by the
  // source; nullopt when it has no rows. The default streams one row of
  // "SELECT min(extract(year FROM c))::integer, max(...)" (valid SQL in PostgreSQL and
  // DuckDB alike).
  virtual std::optional<std::pair<int, int>> year_range(const std::string& query,
                                                        const std::string& date_column);
  // Writes `query`'s rows to a new Parquet file at `path` (zstd). The file is complete when
  // this returns but not yet fsynced; on failure a partial file may remain at `path` (the
  // caller quarantines it). Throws Error(kDiskFull) when the disk fills. The default
  // implementation streams batches into a private DuckDB (which spills to `spill_dir` past its
  // memory limit, so memory stays bounded) and has DuckDB write the Parquet; DuckDbSource
  // lets DuckDB copy straight from the database file.
  virtual ParquetExport write_parquet(const std::string& query, const std::string& path,
                                      const std::string& spill_dir);
  // Writes each year first..last of `query` (by `date_column`) to its own new Parquet file
  // (zstd) inside `dir`, an existing empty directory, and returns them in year order, one per
  // year (a year without rows gets a file with no rows). The files are complete but not
  // fsynced; on failure partial files may remain in `dir` (the caller removes or quarantines
  // the whole directory). Throws as write_parquet. The default calls write_parquet once per
  // year (files "dir/<year>.parquet"); DuckDbSource writes all the years in one partitioned
  // COPY, one pass over the source that uses every core.
  virtual std::vector<YearExport> write_parquet_years(const std::string& query,
                                                      const std::string& date_column, int first,
                                                      int last, const std::string& dir,
                                                      const std::string& spill_dir);
  // Whether write_parquet_years over several years costs less than one call per year (then a
  // sync exports several years per pass; otherwise one year at a time, so each year is
  // published as soon as it has arrived).
  virtual bool exports_years_in_one_pass() const { return false; }
  // How many write_parquet / write_parquet_years calls may run at once, on separate threads
  // (a sync then exports that many passes side by side while it publishes the one before).
  // 1, the default, means calls must not overlap.
  virtual int concurrent_exports() const { return 1; }
};

// The memory limit open_source() gives a DuckDB source unless WARDEN_DUCKDB_MEMORY_LIMIT (a
// DuckDB size such as "1GB") says otherwise.
inline constexpr const char* kDuckDbSourceMemoryLimit = "256MB";

// A DuckDB database file opened read-only (so any number of readers may share it; DuckDB
// refuses while another process has it open read-write, and this says so).
class DuckDbSource : public Source {
 public:
  struct Options {
    int threads = 0;           // 0: DuckDB's default (all cores)
    std::string memory_limit;  // "" : DuckDB's default (80% of RAM)
    bool direct_copy = true;   // false: use the generic streaming export (tests)
  };
  // Throws duckdb::DuckDbError (kIo) naming the file when it cannot be opened.
  explicit DuckDbSource(const std::string& path) : DuckDbSource(path, Options{}) {}
  DuckDbSource(const std::string& path, Options options);

  std::string describe() const override;
  TableSchema schema(const std::string& query) override;
  std::unique_ptr<BatchStream> stream(const std::string& query) override;
  SourceFingerprint fingerprint(const std::string& query) override;
  std::map<int, SourceFingerprint> year_fingerprints(const std::string& query,
                                                     const std::string& date_column, int first,
                                                     int last) override;
  ParquetExport write_parquet(const std::string& query, const std::string& path,
                              const std::string& spill_dir) override;
  // One COPY ... (PARTITION_BY year, RETURN_STATS) for all the years (when direct_copy).
  std::vector<YearExport> write_parquet_years(const std::string& query,
                                              const std::string& date_column, int first, int last,
                                              const std::string& dir,
                                              const std::string& spill_dir) override;
  bool exports_years_in_one_pass() const override { return options_.direct_copy; }
  // Runs any SQL on the source (bounds, counts); for the sync's planning queries.
  duckdb::Result query(const std::string& sql) { return connection_.query(sql); }

 private:
  std::string path_;
  Options options_;
  duckdb::Database database_;
  duckdb::Connection connection_;
};

// ---- Choosing the source (src/source/open_source.cc) ------------------------------------

// Opens a source from its spec: "duckdb:PATH" (or a path ending in .duckdb/.db), opened
// read-only with DuckDB's memory_limit at kDuckDbSourceMemoryLimit (or
// WARDEN_DUCKDB_MEMORY_LIMIT); or PostgreSQL: "wrds", "postgresql://...",
// "postgresql:KEY=VALUE..." (a PostgresSource, include/warden/postgres_source.h, which connects
// on first use). This is the one place a spec becomes a Source: every command that reads a
// source calls it. Throws InvalidArgumentError (a usage error) for a scheme it does not know,
// naming the ones it does; duckdb::DuckDbError (kNotFound) when the file is missing, naming the
// command that creates the sample. Does not block beyond opening the file.
std::unique_ptr<Source> open_source(const std::string& spec);

// Which source to use: `given` (--source) when not empty, else the WARDEN_SOURCE environment
// variable, else `from_config` (the config file's `source`). Throws InvalidArgumentError
// naming all three places when none is set. Connection settings never come from code.
std::string resolve_source_spec(const std::string& given, const std::string& from_config);

// The schema of a DuckDB result's columns.
TableSchema schema_of(const std::vector<duckdb::Column>& columns);

// ---- The embedded sample (warden sample create) ---------------------------------------

struct SampleOptions {
  double scale = 1.0;  // 1: ~3 million crsp.dsf rows over 2000-2024
  uint64_t seed = 42;
  int first_year = 2000;
  int last_year = 2024;
};
struct SampleSummary {
  uint64_t dsf_rows = 0;
  uint64_t funda_rows = 0;
  uint64_t factors_rows = 0;
};
// Writes a synthetic, deterministic, WRDS-shaped DuckDB database at `path` (refuses if it
// exists: InvalidArgumentError): crsp.dsf, comp.funda, ff.factors_daily with WRDS's column
// names, exact DECIMALs where WRDS has NUMERIC, and NULLs where CRSP has them (first-day
// returns, missing prices). Generated inside DuckDB with SQL, published by rename so a
// crash leaves no half-made database. Same options, same rows.
SampleSummary create_sample_database(const std::string& path, const SampleOptions& options);

}  // namespace warden
