#!/usr/bin/env bash
# The pipeline's conversion speed side by side with DuckDB itself, in one run (hyperfine).
#   bench/pipeline_bench.sh [BUILD_DIR]   (needs warden_cli and pipeline_bench built there)
# Env: WARDEN_BENCH_DIR (default /tmp/warden-pipeline-bench), RUNS (default 2),
#      FILES (1000), BYTES (1000000 per file), EXTRA=1 adds conversion-only rows.
#
# Input: FILES NDJSON files of ~BYTES each (event records: ids, timestamps, strings, numbers,
# a nested object two levels deep, an array, optional keys) over 10 dates, generated once.
# Rows compared, all reading the same files with the same read_json options
# (newline_delimited, union_by_name) and writing zstd Parquet:
#   duckdb COPY        DuckDB itself (libduckdb 1.4.4, C API): ONE COPY of all files into one
#                      Parquet file, threads = cores (bench/pipeline_bench.cc duckdb-copy)
#   warden, 1 worker   `warden pipeline work --once` after `ingest` (done once, not timed; the
#                      store is restored from a snapshot before each run): claims each of the
#                      100 manifests (10 files), verifies every input's SHA-256, converts,
#                      fsyncs, renames, marks completed - the whole worker phase
#   warden, 2 workers  two `warden pipeline work --once` processes at once on the same store
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
warden="$build/warden"
bench="$build/bench/pipeline_bench"
work="${WARDEN_BENCH_DIR:-/tmp/warden-pipeline-bench}"
runs="${RUNS:-2}"
files="${FILES:-1000}"
bytes="${BYTES:-1000000}"
mkdir -p "$work"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

landing="$work/landing-$files-$bytes"
if [ ! -d "$landing" ]; then
  "$bench" generate "$landing.tmp" "$files" "$bytes" 10
  mv "$landing.tmp" "$landing"
fi
total_bytes=$(du -sb "$landing" | cut -f1)
echo "input: $files files, $((total_bytes / 1000000)) MB in $landing"

# The store after ingest + batching, kept as a snapshot and restored before every run.
data="$work/data"
snapshot="$work/state.snapshot.sqlite"
if [ ! -f "$snapshot" ]; then
  rm -rf "$data"
  "$warden" --data-dir "$data" pipeline ingest "$landing" --threshold 10 \
    --today 2026-12-31 >/dev/null 2>&1
  cp "$data/pipeline/state.sqlite" "$snapshot"
fi
reset="rm -rf $data/pipeline/parquet $work/peer.parquet $work/convert &&
  rm -f $data/pipeline/state.sqlite-wal $data/pipeline/state.sqlite-shm &&
  cp $snapshot $data/pipeline/state.sqlite && sync"
one="$warden --data-dir $data pipeline work --once"

commands=(
  -n "duckdb COPY" "$bench duckdb-copy $landing $work/peer.parquet"
  -n "warden, 1 worker" "$one"
  -n "warden, 2 workers" "bash -c '$one >/dev/null & $one >/dev/null & wait'"
)
if [ "${EXTRA:-0}" = 1 ]; then
  commands+=(
    -n "duckdb COPY, no union_by_name" "$bench duckdb-copy $landing $work/peer.parquet --no-union"
    -n "convert only, 1 process" "$bench convert $landing $work/convert"
  )
fi
hyperfine --runs "$runs" --prepare "$reset" --export-json "$work/results.json" \
  --style basic "${commands[@]}" 2>&1 | grep -vE '^\s*$'

# The last run (2 workers) must have converted every manifest exactly once.
outputs=$(find "$data/pipeline/parquet" -name '*.parquet' | wc -l)
echo "outputs of the last run (2 workers): $outputs Parquet files"
python3 - "$work/results.json" "$files" "$total_bytes" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
files, total = int(sys.argv[2]), int(sys.argv[3])
peer = next(r["mean"] for r in results if r["command"] == "duckdb COPY")
print()
print("| run | mean s (min-max) | files/s | MB/s | vs DuckDB COPY |")
print("| --- | --- | --- | --- | --- |")
for r in results:
    print(f"| {r['command']} | {r['mean']:.1f} ({r['min']:.1f}-{r['max']:.1f}) | "
          f"{files / r['mean']:.1f} | {total / 1e6 / r['mean']:.1f} | {peer / r['mean']:.2f}x |")
EOF
