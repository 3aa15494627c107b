// Sync throughput against its floor: DuckDB itself copying the same query to Parquet.
//
//   WARDEN_BENCH_SAMPLE=/tmp/sample.duckdb build/bench/sync_bench
// (bench/sync_bench.sh creates the sample, runs this, then verify vs sha256sum and peak
// memory.) Each benchmark reads the same source file with the same DuckDB settings and
// writes zstd Parquet; rows/s and bytes/s are reported as counters.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "warden/duckdb.h"
#include "warden/lock.h"
#include "warden/source.h"
#include "warden/sync.h"

namespace {

namespace fs = std::filesystem;
using warden::DatasetCatalog;
using warden::DatasetSpec;

const std::string& sample() {
  static const std::string path = [] {
    const char* env = std::getenv("WARDEN_BENCH_SAMPLE");
    std::string p = env && *env ? env : "/tmp/warden-bench-sample.duckdb";
    if (!fs::exists(p)) warden::create_sample_database(p, {.scale = 1.0});
    return p;
  }();
  return path;
}

std::string out_dir() {
  const char* env = std::getenv("WARDEN_BENCH_OUT");
  std::string dir = (env && *env ? std::string(env) : std::string("/tmp")) + "/warden-bench-out";
  return dir;
}

const DatasetSpec& crsp() {
  static const DatasetCatalog catalog = DatasetCatalog::builtin();
  return catalog.get("crsp");
}

uint64_t directory_bytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

void report(benchmark::State& state, uint64_t rows, uint64_t bytes) {
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(rows) * state.iterations(),
                                                    benchmark::Counter::kIsRate);
  state.counters["MB_per_s"] = benchmark::Counter(
      static_cast<double>(bytes) * state.iterations() / 1e6, benchmark::Counter::kIsRate);
  state.counters["rows"] = static_cast<double>(rows);
}

// The floor: one COPY of the whole query into one file.
void BM_DuckDbCopyOneFile(benchmark::State& state) {
  warden::DuckDbSource source(sample());
  const std::string dir = out_dir();
  uint64_t rows = 0, bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    fs::create_directories(dir);
    state.ResumeTiming();
    rows = source
               .query("COPY (" + crsp().query + ") TO '" + dir +
                      "/x.parquet' (FORMAT parquet, COMPRESSION zstd)")
               .get_int64(0, 0);
  }
  bytes = directory_bytes(dir);
  report(state, rows, bytes);
}

// The same layout warden writes: one COPY per year partition.
void BM_DuckDbCopyPerYear(benchmark::State& state) {
  warden::DuckDbSource source(sample());
  const std::string dir = out_dir();
  auto range = source.year_range(crsp().query, crsp().date_column);
  uint64_t rows = 0, bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    fs::create_directories(dir);
    state.ResumeTiming();
    rows = 0;
    for (int y = range->first; y <= range->second; ++y) {
      rows += source
                  .query("COPY (" + crsp().partition_query(y) + ") TO '" + dir + "/" +
                         std::to_string(y) + ".parquet' (FORMAT parquet, COMPRESSION zstd)")
                  .get_int64(0, 0);
    }
  }
  bytes = directory_bytes(dir);
  report(state, rows, bytes);
}

// DuckDB's own one-pass way to the per-year layout: one COPY with PARTITION_BY (year), at
// DuckDB's default zstd level (3) and at the level warden writes (warden::kParquetCopyOptions).
void copy_partitioned(benchmark::State& state, const std::string& options) {
  warden::DuckDbSource source(sample());
  const std::string dir = out_dir();
  uint64_t rows = 0, bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    fs::create_directories(dir);
    state.ResumeTiming();
    rows = source
               .query("COPY (SELECT *, year(date) AS year FROM (" + crsp().query + ") AS q) TO '" +
                      dir + "/years' (" + options + ", PARTITION_BY (year))")
               .get_int64(0, 0);
  }
  bytes = directory_bytes(dir);
  report(state, rows, bytes);
}

void BM_DuckDbCopyPartitioned(benchmark::State& state) {
  copy_partitioned(state, "FORMAT parquet, COMPRESSION zstd");
}

void BM_DuckDbCopyPartitionedWardenLevel(benchmark::State& state) {
  copy_partitioned(state, warden::kParquetCopyOptions);
}

// warden: the same partitions, plus fingerprints, fsync, SHA-256, read-back gate, rename,
// directory fsync, manifest and checkpoint per year.
void BM_WardenFullSync(benchmark::State& state) {
  warden::DuckDbSource source(sample());
  const std::string dir = out_dir();
  uint64_t rows = 0, bytes = 0;
  warden::LockToken token;
  token.name = "crsp";
  token.token = 1;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    warden::SyncOptions options;
    options.data_dir = dir;
    warden::SyncManager manager(options, DatasetCatalog::builtin(), &source);
    state.ResumeTiming();
    warden::SyncResult r = manager.full_sync("crsp", std::nullopt, std::nullopt, token);
    rows = r.rows_written;
    bytes = r.bytes_written;
  }
  report(state, rows, bytes);
}

BENCHMARK(BM_DuckDbCopyOneFile)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_DuckDbCopyPerYear)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_DuckDbCopyPartitioned)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_DuckDbCopyPartitionedWardenLevel)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);
BENCHMARK(BM_WardenFullSync)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
