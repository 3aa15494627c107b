// FileLock against the raw floor and across processes (bench/README.md, "Lock").
//
//   BM_RawFloor                 open O_EXCL + write a record + fsync file + fsync dir + unlink:
//                               what any durable create-a-lock-file must pay at least.
//   BM_FileLockAcquireRelease   FileLock::try_acquire() + release(), uncontended.
//   BM_UncontendedPaired        both of the above, alternating one op each, so that the
//                               ratio is not skewed by a disk or a neighbour that changes
//                               speed between two separate runs; reports medians and ratio.
//   BM_Handoff/8                1 holder + 8 waiting processes; each handoff is timed from
//                               the moment the holder calls release() to the moment the next
//                               acquire() returns. Reports median, p90 and max.
//   BM_Handoff/1                the same with 1 waiter: no herd of waiters publishing at once.
//
// The lock directory is $WARDEN_BENCH_DIR (default: ./lock-bench.<pid> in the current
// directory). It must be on the disk under test: on tmpfs fsync costs nothing. Handoff
// workers are this program re-run with --handoff-worker; they share counters and samples
// through a POSIX shared-memory segment. bench/run_lock_bench runs this and the Python peer.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "warden/events.h"
#include "warden/lock.h"
#include "warden/posix.h"
#include "warden/posix_names.h"
#include "warden/process.h"
#include "warden/shm.h"

namespace {

using std::chrono::nanoseconds;
using std::chrono::steady_clock;

constexpr int kMaxHandoffs = 4096;
// How long a holder keeps the lock: uniform in [H/2, 3H/2] with H = $WARDEN_BENCH_HOLD_MS
// (default 50). Long enough that every other worker is blocked in acquire() again when it
// releases: a worker that queues again first tries to publish (a temp record and its fsync,
// several ms on a busy disk); if that fsync were still running at the release, its link
// would win with no fsync left to pay, and the handoff would look faster than a real
// waiter's. Random, so that a polling peer's fixed interval cannot fall in step with it.
std::chrono::microseconds hold_time() {
  const char* env = std::getenv("WARDEN_BENCH_HOLD_MS");
  const int64_t hold_us = (env ? std::atoi(env) : 50) * 1000;
  return std::chrono::microseconds(hold_us / 2 +
                                   static_cast<int64_t>(warden::random_u64() % (hold_us + 1)));
}

std::string bench_dir() {
  static const std::string dir = [] {
    const char* env = std::getenv("WARDEN_BENCH_DIR");
    std::string d = env && *env ? env : "lock-bench." + std::to_string(warden::self_identity().pid);
    warden::make_directories(d);
    return d;
  }();
  return dir;
}

int64_t now_ns() {
  return std::chrono::duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

// A record the size FileLock writes (~330 bytes), for the floor to write.
std::string sample_record() {
  warden::LockRecord r;
  r.name = "bench";
  r.pid = 4242;
  r.pid_start = 123456789;
  r.boot_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
  r.hostname = warden::host_name();
  r.writer_id = warden::random_uuid();
  r.token = 17;
  r.acquired_at = warden::WallClock::now();
  r.refreshed_at = r.acquired_at;
  r.expires_at = r.acquired_at + std::chrono::minutes(5);
  return r.to_json();
}

// The floor: the least a durable "create the lock file, then remove it" costs. Optionally
// reports how long its two fsyncs took (the unit of the handoff target).
void raw_floor_once(const std::string& path, int dir_fd, const std::string& record,
                    int64_t* fsync_file_ns = nullptr, int64_t* fsync_dir_ns = nullptr) {
  auto fd = warden::create_exclusive(path, 0644);
  if (!fd) throw warden::IoError("floor: " + path + " exists", EEXIST);
  warden::write_all(fd->get(), record, path);
  const int64_t t0 = now_ns();
  warden::fsync_fd(fd->get(), path);
  const int64_t t1 = now_ns();
  warden::fsync_fd(dir_fd, "bench dir");
  const int64_t t2 = now_ns();
  if (fsync_file_ns) *fsync_file_ns = t1 - t0;
  if (fsync_dir_ns) *fsync_dir_ns = t2 - t1;
  fd->reset();
  warden::remove_file(path);
}

void filelock_once(warden::FileLock& lock) {
  auto token = lock.try_acquire();
  if (!token) throw warden::Error(warden::ErrorCode::kInternal, "uncontended lock was busy");
  lock.release(*token);
}

double median_of(std::vector<int64_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[v.size() / 2]);
}

double percentile_of(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t at = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(at, v.size() - 1)]);
}

void BM_RawFloor(benchmark::State& state) {
  const std::string path = bench_dir() + "/floor.lock";
  warden::UniqueFd dir_fd = warden::open_directory(bench_dir());
  const std::string record = sample_record();
  for (auto _ : state) raw_floor_once(path, dir_fd.get(), record);
}
BENCHMARK(BM_RawFloor)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(2.0);

void BM_FileLockAcquireRelease(benchmark::State& state) {
  warden::FileLock lock(bench_dir(), "uncontended");
  for (auto _ : state) filelock_once(lock);
}
BENCHMARK(BM_FileLockAcquireRelease)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(2.0);

void BM_UncontendedPaired(benchmark::State& state) {
  const std::string path = bench_dir() + "/paired_floor.lock";
  warden::UniqueFd dir_fd = warden::open_directory(bench_dir());
  const std::string record = sample_record();
  warden::FileLock lock(bench_dir(), "paired");
  std::vector<int64_t> floor_ns, lock_ns, fsync_file_ns, fsync_dir_ns;
  for (auto _ : state) {
    int64_t fsync_file = 0, fsync_dir = 0;
    const int64_t t0 = now_ns();
    raw_floor_once(path, dir_fd.get(), record, &fsync_file, &fsync_dir);
    const int64_t t1 = now_ns();
    filelock_once(lock);
    const int64_t t2 = now_ns();
    floor_ns.push_back(t1 - t0);
    lock_ns.push_back(t2 - t1);
    fsync_file_ns.push_back(fsync_file);
    fsync_dir_ns.push_back(fsync_dir);
  }
  const double floor_median = median_of(floor_ns), lock_median = median_of(lock_ns);
  state.counters["floor_median_us"] = floor_median / 1e3;
  state.counters["floor_p90_us"] = percentile_of(floor_ns, 0.9) / 1e3;
  state.counters["filelock_median_us"] = lock_median / 1e3;
  state.counters["filelock_p90_us"] = percentile_of(lock_ns, 0.9) / 1e3;
  state.counters["fsync_file_median_us"] = median_of(fsync_file_ns) / 1e3;
  state.counters["fsync_dir_median_us"] = median_of(fsync_dir_ns) / 1e3;
  state.counters["ratio_median"] = floor_median > 0 ? lock_median / floor_median : 0;
}
BENCHMARK(BM_UncontendedPaired)->UseRealTime()->Unit(benchmark::kMicrosecond)->Iterations(400);

// ---- Handoff between processes --------------------------------------------------------

// Shared by the handoff workers (zero-filled by SharedMemory::create).
struct HandoffShared {
  std::atomic<uint32_t> ready;      // workers that reached the start line
  std::atomic<uint32_t> go;         // 1: start
  std::atomic<uint32_t> seq;        // acquisitions so far
  std::atomic<int32_t> occupancy;   // holders right now: must never exceed 1
  std::atomic<uint32_t> overlaps;   // times occupancy was found above 0
  std::atomic<int64_t> release_ns;  // when the last holder called release()
  int64_t samples[kMaxHandoffs];    // samples[i]: release of acquisition i -> acquisition i+1
};

// One worker: acquire, note the handoff, hold, release, then wait until someone else holds
// the lock before queueing again (so every handoff goes to a process that was waiting).
int handoff_worker(const std::string& dir, const std::string& shm_name, uint32_t total) {
  warden::EventSinkOptions quiet;
  quiet.stderr_format = warden::EventSinkOptions::StderrFormat::kNone;
  warden::configure_events(quiet);
  warden::SharedMemory memory = warden::SharedMemory::open(shm_name, true);
  auto* shared = reinterpret_cast<HandoffShared*>(memory.data());
  warden::FileLock lock(dir, "handoff");
  shared->ready.fetch_add(1);
  warden::futex_wake(&shared->ready, INT32_MAX);
  while (shared->go.load() == 0) warden::futex_wait(&shared->go, 0, std::chrono::seconds(1));
  for (;;) {
    warden::LockToken token = lock.acquire(std::chrono::seconds(120));
    const int64_t acquired = now_ns();
    const uint32_t n = shared->seq.load();
    if (n >= total) {
      lock.release(token);
      return 0;
    }
    if (n > 0) shared->samples[n - 1] = acquired - shared->release_ns.load();
    if (shared->occupancy.fetch_add(1) != 0) shared->overlaps.fetch_add(1);
    shared->seq.store(n + 1);
    warden::futex_wake(&shared->seq, INT32_MAX);
    std::this_thread::sleep_for(hold_time());
    shared->occupancy.fetch_sub(1);
    shared->release_ns.store(now_ns());
    lock.release(token);
    // Queue again only once another worker holds it (or the run is over).
    for (uint32_t seen = n + 1; seen == n + 1 && seen < total; seen = shared->seq.load()) {
      warden::futex_wait(&shared->seq, seen, std::chrono::milliseconds(100));
    }
  }
}

// Median time of one fsync of a freshly written record (the floor's first fsync), sampled
// `count` times: the disk's speed right now, for the handoff target "1 ms plus one fsync".
std::vector<int64_t> sample_fsyncs(int count) {
  const std::string path = bench_dir() + "/fsync_probe.lock";
  warden::UniqueFd dir_fd = warden::open_directory(bench_dir());
  const std::string record = sample_record();
  std::vector<int64_t> fsync_ns;
  for (int i = 0; i < count; ++i) {
    int64_t fsync_file = 0, fsync_dir = 0;
    raw_floor_once(path, dir_fd.get(), record, &fsync_file, &fsync_dir);
    fsync_ns.push_back(fsync_file);
  }
  return fsync_ns;
}

void BM_Handoff(benchmark::State& state) {
  const int waiters = static_cast<int>(state.range(0));
  const char* env = std::getenv("WARDEN_BENCH_HANDOFFS");
  const uint32_t handoffs = std::clamp(env ? std::atoi(env) : 200, 10, kMaxHandoffs - 1);
  const std::string self = warden::read_symlink("/proc/self/exe").value_or("");
  for (auto _ : state) {
    // The disk's fsync time just before and just after the run (not during: the probe
    // would compete with the workers' own fsyncs).
    std::vector<int64_t> fsyncs = sample_fsyncs(25);
    const std::string shm_name =
        "/warden-lock-bench-" + std::to_string(warden::self_identity().pid);
    auto memory = warden::SharedMemory::create(shm_name, sizeof(HandoffShared), 0600);
    if (!memory) {
      state.SkipWithError("shared memory segment exists");
      return;
    }
    auto* shared = reinterpret_cast<HandoffShared*>(memory->data());
    std::vector<warden::ChildProcess> workers;
    for (int i = 0; i < waiters + 1; ++i) {
      warden::ChildOptions options;
      options.argv = {self, "--handoff-worker", bench_dir(), shm_name,
                      std::to_string(handoffs + 1)};
      workers.push_back(warden::ChildProcess::start(options));
    }
    for (uint32_t r; (r = shared->ready.load()) < static_cast<uint32_t>(waiters + 1);) {
      warden::futex_wait(&shared->ready, r, std::chrono::milliseconds(100));
    }
    const int64_t start = now_ns();
    shared->go.store(1);
    warden::futex_wake(&shared->go, INT32_MAX);
    bool failed = false;
    for (auto& worker : workers) failed = worker.wait().shell_code() != 0 || failed;
    const double seconds = static_cast<double>(now_ns() - start) / 1e9;
    warden::remove_shared_memory(shm_name);
    for (int64_t ns : sample_fsyncs(25)) fsyncs.push_back(ns);
    if (failed) {
      state.SkipWithError("a handoff worker failed");
      return;
    }
    std::vector<int64_t> samples(shared->samples, shared->samples + handoffs);
    const double median = median_of(samples);
    state.SetIterationTime(median / 1e9);
    state.counters["handoffs"] = handoffs;
    state.counters["median_us"] = median / 1e3;
    state.counters["p90_us"] = percentile_of(samples, 0.9) / 1e3;
    state.counters["max_us"] = percentile_of(samples, 1.0) / 1e3;
    state.counters["overlaps"] = shared->overlaps.load();
    state.counters["fsync_median_us"] = median_of(fsyncs) / 1e3;
    state.counters["run_s"] = seconds;
  }
}
BENCHMARK(BM_Handoff)
    ->Arg(8)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--handoff-worker") == 0) {
    try {
      return handoff_worker(argv[2], argv[3], static_cast<uint32_t>(std::atoi(argv[4])));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "handoff worker: %s\n", e.what());
      return 1;
    }
  }
  warden::EventSinkOptions quiet;
  quiet.stderr_format = warden::EventSinkOptions::StderrFormat::kNone;
  warden::configure_events(quiet);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 64;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ignored;
  if (!std::getenv("WARDEN_BENCH_DIR")) std::filesystem::remove_all(bench_dir(), ignored);
  return 0;
}
