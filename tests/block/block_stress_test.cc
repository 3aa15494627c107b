// Two producers and four consumers in separate processes for a few seconds, SIGKILLed at
// random (from outside, and from inside at the named dangerous moments), with recover --auto
// running alongside as an operator would. At the end every committed payload verifies, its
// contents are what its producer wrote, and after recovery no slot is stuck.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "block_test_support.h"
#include "warden/failpoint.h"

namespace warden::block {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::ScopedBlock;

constexpr uint32_t kSlots = 6;
constexpr uint64_t kSlotSize = 4096;

// A payload: [u64 seed][u64 length][byte i = f(seed, i)...]. Self-describing, so a reader
// can check the contents, not only the checksum.
uint8_t pattern(uint64_t seed, uint64_t i) {
  return static_cast<uint8_t>((seed * 131 + i * 7) >> 3);
}

size_t fill_payload(std::span<std::byte> buffer, uint64_t seed) {
  uint64_t length = 16 + seed % (buffer.size() - 16);
  std::memcpy(buffer.data(), &seed, 8);
  std::memcpy(buffer.data() + 8, &length, 8);
  for (uint64_t i = 16; i < length; ++i) buffer[i] = std::byte{pattern(seed, i)};
  return length;
}

bool payload_is_intact(std::span<const std::byte> data) {
  if (data.size() < 16) return false;
  uint64_t seed, length;
  std::memcpy(&seed, data.data(), 8);
  std::memcpy(&length, data.data() + 8, 8);
  if (length != data.size()) return false;
  for (uint64_t i = 16; i < length; ++i) {
    if (data[i] != std::byte{pattern(seed, i)}) return false;
  }
  return true;
}

const char* const kProducerCrashPoints[] = {"block.write.after_lock", "block.write.after_acquire",
                                            "block.commit.before_publish"};

// Writes until killed. Exits 4 only if the API misbehaves.
Child spawn_producer(const std::string& name, uint64_t seed, const char* crash_point) {
  return Child::fork_function([=]() -> int {
    std::mt19937_64 random(seed);
    Producer producer = Producer::open(name);
    uint64_t written = 0;
    while (true) {
      // The failpoint fires a few writes in, so the crash lands mid-stream.
      if (crash_point && written == 3) failpoint_arm(crash_point, "crash");
      auto slot = producer.try_acquire(200ms);
      if (!slot) continue;  // every slot busy or stuck until recovery runs
      size_t length = fill_payload(slot->buffer(), random());
      slot->commit(length);
      written++;
    }
  });
}

// Reads until killed. Exits 3 when a payload it holds fails its checksum or its contents.
Child spawn_consumer(const std::string& name, uint64_t seed, bool crash_while_holding) {
  return Child::fork_function([=] {
    std::mt19937_64 random(seed);
    Consumer consumer = Consumer::open(name, {.heartbeat_interval = 100ms});
    uint64_t last = 0;
    uint64_t reads = 0;
    while (true) {
      if (crash_while_holding && reads == 5) failpoint_arm("block.read.while_holding", "crash");
      auto held = random() % 4 == 0 ? consumer.read_slot(random() % kSlots, 50ms)
                                    : consumer.read_newest(50ms, last);
      if (!held) continue;
      bool intact = held->verify() && payload_is_intact(held->data());
      // Only an operator's --force can break a hold; nobody forces here.
      if (!intact) return held->still_held() ? 3 : 5;
      last = std::max(last, held->sequence());
      if (random() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(random() % 500));
      reads++;
    }
  });
}

TEST(BlockStressTest, RandomKillsNeverCorruptACommittedPayloadAndRecoveryLeavesNothingStuck) {
  ScopedBlock block("stress", kSlots, kSlotSize, 1s);
  const std::string name = block.name();
  uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);

  struct Worker {
    bool producer;
    Child child;
  };
  auto spawn = [&](bool producer) {
    bool crash = random() % 3 == 0;  // a third die at a named moment on their own
    if (producer) {
      return Worker{true, spawn_producer(name, random(),
                                         crash ? kProducerCrashPoints[random() % 3] : nullptr)};
    }
    return Worker{false, spawn_consumer(name, random(), crash)};
  };
  std::vector<Worker> workers;
  for (int i = 0; i < 2; ++i) workers.push_back(spawn(true));
  for (int i = 0; i < 4; ++i) workers.push_back(spawn(false));

  int kills = 0, self_crashes = 0, recoveries = 0;
  auto until = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + random() % 80));
    // Replace every worker that ended; only SIGKILL is an acceptable end.
    for (auto& worker : workers) {
      if (!worker.child.finished()) continue;
      auto result = worker.child.wait();
      ASSERT_FALSE(result.exited) << (worker.producer ? "producer" : "consumer") << " exited "
                                  << result.exit_code << ": " << result.err;
      ASSERT_EQ(result.signal, SIGKILL);
      self_crashes++;
      worker = spawn(worker.producer);
    }
    Worker& victim = workers[random() % workers.size()];
    testing::kill_and_reap(victim.child);
    victim = spawn(victim.producer);
    kills++;
    if (random() % 3 == 0) {
      recover_auto(name, false);
      recoveries++;
    }
  }
  for (auto& worker : workers) {
    worker.child.kill(SIGKILL);
    auto result = worker.child.wait();
    EXPECT_FALSE(result.exited) << result.exit_code << ": " << result.err;
  }
  std::printf("stress: %d kills, %d self-crashes at failpoints, %d recoveries, %llu commits\n",
              kills, self_crashes, recoveries,
              static_cast<unsigned long long>(diagnose(name).latest_sequence));

  recover_auto(name, false);
  BlockDiagnosis after = diagnose(name);
  EXPECT_GT(after.latest_sequence, 0u);
  EXPECT_TRUE(after.participants.empty());
  EXPECT_EQ(after.active_consumer_count, 0u);
  for (const SlotDiagnosis& slot : after.slots) {
    EXPECT_FALSE(slot.is_stuck) << "slot " << slot.index << ": " << slot.stuck_reason;
    EXPECT_FALSE(slot.write_lock.has_value()) << "slot " << slot.index;
    EXPECT_EQ(slot.reader_count, 0u) << "slot " << slot.index;
    EXPECT_FALSE(slot.writer_waiting) << "slot " << slot.index;
  }
  ValidationReport report = validate(name);
  EXPECT_TRUE(report.findings.empty()) << report.to_json().dump(2);

  // Every committed payload verifies and holds what its producer wrote; every slot can be
  // written again.
  Consumer consumer = Consumer::open(name, {.heartbeat_interval = 0ms});
  for (uint32_t i = 0; i < kSlots; ++i) {
    if (after.slots[i].state != "COMMITTED") continue;
    auto held = consumer.read_slot(i, 1s);
    ASSERT_TRUE(held.has_value()) << "slot " << i;
    EXPECT_TRUE(held->verify()) << "slot " << i;
    EXPECT_TRUE(payload_is_intact(held->data())) << "slot " << i;
  }
  Producer producer = Producer::open(name);
  for (uint32_t i = 0; i < kSlots; ++i) {
    EXPECT_TRUE(producer.try_acquire(1s, i).has_value()) << "slot " << i;
  }
}

}  // namespace
}  // namespace warden::block
