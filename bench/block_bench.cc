// DataBlock speed (issue 6): one-way latency from a producer's commit to a consumer's read in
// another process (64-byte payloads), and write throughput with 1 MiB slots next to memcpy
// bandwidth measured in the same run. Run: build/block_bench (see bench/README.md).
//
// The bench forks its peer processes directly (a bench is not library code, so it is outside
// the one-POSIX-layer rule, as the tests are).
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "warden/block.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: one clock for every process
namespace block = warden::block;

std::string bench_name(const std::string& what) {
  return "bench" + std::to_string(::getpid()) + "-" + what;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// A forked peer, SIGKILLed and reaped when the benchmark ends.
class Peer {
 public:
  template <typename Body>
  explicit Peer(Body body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      body();
      ::_exit(0);
    }
  }
  ~Peer() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_;
};

std::span<const std::byte> as_bytes(const void* data, size_t size) {
  return {static_cast<const std::byte*>(data), size};
}

// Ping-pong over two blocks. The producer stamps each 64-byte ping with CLOCK_MONOTONIC just
// before write(); the echo process reads it, takes its own stamp the moment read_newest
// returns, and sends the difference back in the pong, so every sample is a true one-way
// latency (commit to read), not half a round trip. spin_us is the consumer's spin before it
// sleeps on the futex: 50 (the default) is a busy pipeline, 0 measures a futex wake-up.
void BM_OneWayLatency64B(benchmark::State& state) {
  auto spin = std::chrono::microseconds(state.range(0));
  std::string ping = bench_name("ping"), pong = bench_name("pong");
  block::create_block(ping, {.slot_count = 4, .slot_size = 64});
  block::create_block(pong, {.slot_count = 4, .slot_size = 64});
  std::vector<double> samples;
  {
    Peer echo([&] {
      block::Consumer in =
          block::Consumer::open(ping, {.heartbeat_interval = 0ms, .spin_before_sleep = spin});
      block::Producer out = block::Producer::open(pong);
      uint64_t last = 0;
      while (true) {
        auto held = in.read_newest(60s, last);
        int64_t arrived = now_ns();
        if (!held) continue;
        int64_t sent;
        std::memcpy(&sent, held->data().data(), sizeof sent);
        last = held->sequence();
        held->release();
        int64_t one_way = arrived - sent;
        out.write(as_bytes(&one_way, sizeof one_way), 5s);
      }
    });
    block::Producer out = block::Producer::open(ping);
    block::Consumer in =
        block::Consumer::open(pong, {.heartbeat_interval = 0ms, .spin_before_sleep = 1000us});
    char payload[64] = {};
    uint64_t last = 0;
    for (auto _ : state) {
      int64_t sent = now_ns();
      std::memcpy(payload, &sent, sizeof sent);
      out.write(as_bytes(payload, sizeof payload), 5s);
      auto back = in.read_newest(5s, last);
      if (!back) {
        state.SkipWithError("no pong within 5 s");
        break;
      }
      last = back->sequence();
      int64_t one_way;
      std::memcpy(&one_way, back->data().data(), sizeof one_way);
      samples.push_back(static_cast<double>(one_way));
    }
  }
  block::remove_block(ping);
  block::remove_block(pong);
  if (samples.empty()) return;
  std::sort(samples.begin(), samples.end());
  state.counters["median_ns"] = samples[samples.size() / 2];
  state.counters["p99_ns"] = samples[samples.size() * 99 / 100];
  state.counters["min_ns"] = samples.front();
}
BENCHMARK(BM_OneWayLatency64B)->Arg(50)->Arg(0)->Iterations(20000)->UseRealTime();

constexpr size_t kMiB = 1 << 20;

// memcpy of 1 MiB into `targets` private 1 MiB buffers in turn: with as many targets as the
// block has slots, the same amount of memory is written as the block's ring (a single hot
// target would stay in cache and flatter memcpy; BM_Memcpy1MiB shows that figure).
double memcpy_bytes_per_second(const std::vector<char>& source, size_t targets) {
  std::vector<std::vector<char>> target(targets, std::vector<char>(kMiB));
  for (int i = 0; i < 20; ++i) std::memcpy(target[i % targets].data(), source.data(), kMiB);
  auto start = Clock::now();
  int rounds = 0;
  while (Clock::now() - start < 500ms) {
    std::memcpy(target[rounds % targets].data(), source.data(), kMiB);
    benchmark::ClobberMemory();
    rounds++;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return rounds * static_cast<double>(kMiB) / seconds;
}

void BM_Memcpy1MiB(benchmark::State& state) {
  std::vector<char> source(kMiB, 'x'), target(kMiB);
  for (auto _ : state) {
    std::memcpy(target.data(), source.data(), kMiB);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kMiB));
}
BENCHMARK(BM_Memcpy1MiB)->UseRealTime();

// Producer throughput with 1 MiB slots (copy in, XXH3 checksum, commit) while a consumer in
// another process reads and verifies the newest slot continuously. vs_memcpy is this
// bandwidth over memcpy's, measured right before in the same process.
void BM_BlockWrite1MiBWithConsumer(benchmark::State& state) {
  std::string name = bench_name("mib");
  block::create_block(name, {.slot_count = 4, .slot_size = kMiB});
  std::vector<char> source(kMiB);
  for (size_t i = 0; i < kMiB; ++i) source[i] = static_cast<char>(i * 7);
  double memcpy_rate = memcpy_bytes_per_second(source, 4);
  {
    Peer reader([&] {
      block::Consumer in = block::Consumer::open(name, {.heartbeat_interval = 0ms});
      uint64_t last = 0;
      while (true) {
        auto held = in.read_newest(60s, last);
        if (!held) continue;
        if (!held->verify()) ::_exit(3);
        last = held->sequence();
      }
    });
    block::Producer out = block::Producer::open(name);
    for (int i = 0; i < 8; ++i) out.write(as_bytes(source.data(), kMiB), 5s);  // touch the pages
    auto start = Clock::now();
    for (auto _ : state) out.write(as_bytes(source.data(), kMiB), 5s);
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    double rate = static_cast<double>(state.iterations()) * kMiB / seconds;
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kMiB));
    state.counters["memcpy_GBps"] = memcpy_rate / 1e9;
    state.counters["block_GBps"] = rate / 1e9;
    state.counters["vs_memcpy"] = rate / memcpy_rate;
  }
  block::remove_block(name);
}
BENCHMARK(BM_BlockWrite1MiBWithConsumer)->UseRealTime()->MinTime(2.0);

// In-process write + commit of small payloads (pylabhub's "4 KB in 650 ns" figure).
void BM_BlockWrite(benchmark::State& state) {
  size_t size = static_cast<size_t>(state.range(0));
  std::string name = bench_name("write" + std::to_string(size));
  block::create_block(name, {.slot_count = 8, .slot_size = size});
  std::vector<char> source(size, 'y');
  {
    block::Producer out = block::Producer::open(name);
    for (auto _ : state) out.write(as_bytes(source.data(), size), 5s);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  }
  block::remove_block(name);
}
BENCHMARK(BM_BlockWrite)->Arg(64)->Arg(4096)->Arg(65536)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
