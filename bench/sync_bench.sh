#!/usr/bin/env bash
# Sync and verify speed side by side with their peers, and peak memory at two scales.
#   bench/sync_bench.sh [BUILD_DIR]     (default build; needs warden_cli and sync_bench built)
# 1. sync throughput: build/bench/sync_bench runs DuckDB's own COPY (one file, and one file per
#    year) and warden's full sync of crsp on the same sample, in one run;
# 2. verify: `warden sync verify` against `sha256sum` on the same files (hyperfine);
# 3. peak memory of `warden sync full --dataset crsp` at scale 1 and scale 4 (/usr/bin/time -v).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
warden="$build/warden"
work="${WARDEN_BENCH_DIR:-/tmp/warden-sync-bench}"
mkdir -p "$work"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

for scale in 1 4; do
  [ -f "$work/sample-$scale.duckdb" ] ||
    "$warden" sample create "$work/sample-$scale.duckdb" --scale "$scale" 2>/dev/null
done

echo
echo "== 1. sync throughput, scale 1 (crsp.dsf), side by side"
WARDEN_BENCH_SAMPLE="$work/sample-1.duckdb" WARDEN_BENCH_OUT="$work" "$build/bench/sync_bench" \
  2>/dev/null | grep -E '^(BM_|Benchmark|---)'

echo
echo "== 2. verify vs sha256sum, scale 4 (crsp)"
rm -rf "$work/data-4"
"$warden" --data-dir "$work/data-4" sync full --dataset crsp \
  --source "duckdb:$work/sample-4.duckdb" >/dev/null 2>&1
files=("$work"/data-4/wrds/crsp/daily/*.parquet)
du -ch "${files[@]}" | tail -1
hyperfine --warmup 2 --runs 10 -N \
  "$warden --data-dir $work/data-4 sync verify --dataset crsp" \
  "sha256sum ${files[*]}"

echo
echo "== 3. peak memory of a full crsp sync (maximum resident set size)"
for scale in 1 4; do
  rm -rf "$work/data-mem"
  rows=$(/usr/bin/time -v "$warden" --data-dir "$work/data-mem" sync full --dataset crsp \
           --json --source "duckdb:$work/sample-$scale.duckdb" 2>"$work/time-$scale.txt" |
         sed -n 's/.*"rows_written":\([0-9]*\).*/\1/p')
  printf 'scale %s: %s rows, peak RSS %s KB, wall %s\n' "$scale" "$rows" \
    "$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time-$scale.txt")" \
    "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time-$scale.txt")"
done
