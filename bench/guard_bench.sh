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
hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$dir/true.md" --export-json "$dir/true.json" \
  -n 'true' 'true' \
  -n 'timeout 60 true' 'timeout 60 true' \
  -n 'warden --version (process start only)' "$warden --version" \
  -n 'warden guard run --timeout 60s -- true' "$warden guard run --db $db --timeout 60s -- true"
hyperfine -N --warmup 1 --runs "$runs_1s" --export-markdown "$dir/sleep.md" --export-json "$dir/sleep.json" \
  -n 'sleep 1' 'sleep 1' \
  -n 'timeout 60 sleep 1' 'timeout 60 sleep 1' \
  -n 'warden guard run --timeout 60s -- sleep 1' "$warden guard run --db $db --timeout 60s -- sleep 1"
echo
cat "$dir/true.md"
echo
cat "$dir/sleep.md"
echo
# The issue's figure: what `guard run` adds over `timeout` on the same command, in ms, from
# hyperfine's own numbers (its tables print a 1-second job's mean to the millisecond only).
python3 - "$dir/true.json" "$dir/sleep.json" <<'PY'
import json, statistics, sys
for path, job in zip(sys.argv[1:], ("true", "sleep 1")):
    runs = {r["command"]: r["times"] for r in json.load(open(path))["results"]}
    peer, guard = runs[f"timeout 60 {job}"], runs[f"warden guard run --timeout 60s -- {job}"]
    print(f"added over timeout, {job}: mean {1e3 * (statistics.mean(guard) - statistics.mean(peer)):+.1f} ms,"
          f" median {1e3 * (statistics.median(guard) - statistics.median(peer)):+.1f} ms,"
          f" min {1e3 * (min(guard) - min(peer)):+.1f} ms")
PY
