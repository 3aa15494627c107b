#!/usr/bin/env bash
# Wrapper overhead of `warden guard run` against coreutils `timeout`: the same commands
# (`true`, and a 1-second job `sleep 1`), in the same hyperfine run, so the machine's state
# is the same for both. `warden --version` is measured too: it is warden's process start
# alone (loading its shared libraries), which every warden command pays before it does
# anything, so the difference to `guard run` is the guard's own work (lease with fsync,
# holder checks, process group, watchdog, sweep, release).
#   bench/guard_bench.sh [path/to/warden]     (default: build/warden)
# Environment: RUNS (default 40) for `true`, RUNS_1S (default 10) for the 1-second job.
set -euo pipefail
warden="$(realpath "${1:-build/warden}")"
runs="${RUNS:-40}"
runs_1s="${RUNS_1S:-10}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
db="$dir/bench.duckdb"

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$dir/true.md" \
  -n 'true' 'true' \
  -n 'timeout 60 true' 'timeout 60 true' \
  -n 'warden --version (process start only)' "$warden --version" \
  -n 'warden guard run --timeout 60s -- true' "$warden guard run --db $db --timeout 60s -- true"
hyperfine -N --warmup 1 --runs "$runs_1s" --export-markdown "$dir/sleep.md" \
  -n 'sleep 1' 'sleep 1' \
  -n 'timeout 60 sleep 1' 'timeout 60 sleep 1' \
  -n 'warden guard run --timeout 60s -- sleep 1' "$warden guard run --db $db --timeout 60s -- sleep 1"
echo
cat "$dir/true.md"
echo
cat "$dir/sleep.md"
