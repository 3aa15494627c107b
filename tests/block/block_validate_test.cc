// Seed 003's scenario 4: corruption injected into payloads, slot control records and the
// header; validate finds each one, and --repair fixes what is repairable and reports the rest.
#include <gtest/gtest.h>

#include <cstring>

#include "../../src/block/layout.h"
#include "block_test_support.h"
#include "warden/error.h"

namespace warden::block {
namespace {

using namespace std::chrono_literals;
using testing::bytes;
using testing::Child;
using testing::kill_and_reap;
using testing::park;
using testing::ScopedBlock;
using testing::slot_of;
using testing::text;
using testing::wait_until;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const ValidationFinding* find(const ValidationReport& report, const std::string& where,
                              const std::string& problem) {
  for (const auto& f : report.findings) {
    if (f.where == where && contains(f.problem, problem)) return &f;
  }
  return nullptr;
}

std::string describe(const ValidationReport& report) { return report.to_json().dump(2); }

TEST(BlockValidateTest, SoundBlockHasNoFindings) {
  ScopedBlock block("sound");
  Producer producer = Producer::open(block.name());
  for (int i = 0; i < 6; ++i) producer.write(bytes("payload " + std::to_string(i)), 1s);
  Consumer consumer = Consumer::open(block.name());
  auto held = consumer.read_newest(1s);
  ValidationReport report = validate(block.name());
  EXPECT_TRUE(report.findings.empty()) << describe(report);
  EXPECT_EQ(report.unresolved(), 0u);
}

TEST(BlockValidateTest, CorruptPayloadAndSlotControlAreFoundAndRepairedTheRestReported) {
  ScopedBlock block("corrupt", 5, 64);
  Producer producer = Producer::open(block.name());
  for (uint32_t i = 0; i < 4; ++i) producer.write(bytes(std::string(8, 'a' + i)), 1s, i);
  // Slot 4: a producer SIGKILLed with the write lock (a stuck writer validate must not touch).
  Child dead = Child::fork_function([&] {
    Producer doomed = Producer::open(block.name());
    WriteSlot slot = doomed.acquire(5s, 4);
    return park();
  });
  ASSERT_TRUE(wait_until([&] { return slot_of(block.name(), 4).write_lock.has_value(); }));
  pid_t dead_pid = dead.pid();
  kill_and_reap(dead);

  auto segment = Segment::open(block.name());
  segment->payload(0)[3] = std::byte{'X'};            // payload no longer matches its checksum
  segment->slot(1).state.store(7);                    // impossible state
  segment->slot(2).payload_length.store(1000);        // longer than the slot
  segment->slot(3).reader_mask.fetch_or(1ull << 50);  // hold of a participant that does not exist

  Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 0ms});
  {
    auto held = consumer.read_slot(0, 1s);
    ASSERT_TRUE(held.has_value());
    EXPECT_FALSE(held->verify());  // readers see the corruption too
  }
  segment->header().active_consumer_count.store(3);  // one consumer is registered

  ValidationReport found = validate(block.name());
  EXPECT_EQ(found.findings.size(), 7u) << describe(found);
  const ValidationFinding* checksum = find(found, "slot 0", "payload checksum mismatch");
  ASSERT_NE(checksum, nullptr) << describe(found);
  EXPECT_TRUE(checksum->repairable);
  EXPECT_FALSE(checksum->repaired);
  ASSERT_NE(find(found, "slot 1", "state 7 is not a valid slot state"), nullptr);
  ASSERT_NE(find(found, "slot 2", "payload length 1000 exceeds the slot size 64"), nullptr);
  ASSERT_NE(find(found, "slot 3", "orphan read hold of participant entry 50"), nullptr);
  const ValidationFinding* writer =
      find(found, "slot 4", "write lock held by dead pid " + std::to_string(dead_pid));
  ASSERT_NE(writer, nullptr) << describe(found);
  EXPECT_FALSE(writer->repairable);
  EXPECT_TRUE(contains(writer->action, "warden block recover " + block.name() +
                                           " --slot 4 --action release_writer"));
  ASSERT_NE(find(found, "header", "active_consumer_count is 3 but 1 consumers are registered"),
            nullptr);
  bool dead_producer_reported = false;
  for (const auto& f : found.findings) {
    if (contains(f.where, "participant ") &&
        f.problem == "dead producer (pid " + std::to_string(dead_pid) + ") still registered") {
      dead_producer_reported = true;
    }
  }
  EXPECT_TRUE(dead_producer_reported) << describe(found);
  EXPECT_EQ(found.unresolved(), 7u);
  EXPECT_EQ(slot_of(block.name(), 1).state, "INVALID(7)");  // validate alone changes nothing

  ValidationReport repaired = validate(block.name(), true);
  EXPECT_EQ(repaired.findings.size(), 7u) << describe(repaired);
  EXPECT_TRUE(find(repaired, "slot 0", "payload checksum mismatch")->repaired);
  EXPECT_TRUE(contains(find(repaired, "slot 0", "checksum")->action, "checksum recomputed"));
  EXPECT_TRUE(find(repaired, "slot 1", "state 7")->repaired);
  EXPECT_TRUE(find(repaired, "slot 2", "payload length")->repaired);
  EXPECT_TRUE(find(repaired, "slot 3", "orphan read hold")->repaired);
  EXPECT_TRUE(find(repaired, "header", "active_consumer_count")->repaired);
  EXPECT_FALSE(find(repaired, "slot 4", "write lock held by dead pid")->repaired);
  EXPECT_EQ(repaired.unresolved(), 2u);  // the stuck writer and the dead producer's entry

  // The repaired payload is accepted as it is now; the reset slots are FREE.
  auto held = consumer.read_slot(0, 1s);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(text(held->data()), "aaaXaaaa");
  EXPECT_TRUE(held->verify());
  held.reset();
  EXPECT_EQ(slot_of(block.name(), 1).state, "FREE");
  EXPECT_EQ(slot_of(block.name(), 2).state, "FREE");
  EXPECT_EQ(slot_of(block.name(), 3).reader_count, 0u);
  EXPECT_EQ(diagnose(block.name()).active_consumer_count, 1u);

  // What repair reported as the rest is resolved by the commands it named.
  ValidationReport rest = validate(block.name());
  EXPECT_EQ(rest.findings.size(), 2u) << describe(rest);
  release_writer(block.name(), 4);
  cleanup_dead_consumers(block.name());
  ValidationReport clean = validate(block.name());
  EXPECT_TRUE(clean.findings.empty()) << describe(clean);
}

TEST(BlockValidateTest, DeadParticipantIsReportedWithTheCleanupCommand) {
  ScopedBlock block("deadparticipant");
  // Killed only once Consumer::open has returned: a consumer killed inside open (registered,
  // not yet counted) is another finding, and a loaded machine made the test kill it there.
  warden::testing::TempDir dir;
  const std::string opened = dir / "opened";
  Child dead = Child::fork_function([&] {
    Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 0ms});
    warden::testing::spit(opened, "1");
    return park();
  });
  ASSERT_TRUE(wait_until([&] { return !warden::testing::slurp(opened).empty(); }));
  auto d = diagnose(block.name());
  ASSERT_EQ(d.participants.size(), 1u);
  ASSERT_EQ(d.participants[0].role, "consumer");
  pid_t pid = dead.pid();
  kill_and_reap(dead);
  ValidationReport report = validate(block.name(), true);
  ASSERT_EQ(report.findings.size(), 1u) << describe(report);
  EXPECT_EQ(report.findings[0].where, "participant 0");
  EXPECT_EQ(report.findings[0].problem,
            "dead consumer (pid " + std::to_string(pid) + ") still registered");
  EXPECT_EQ(report.findings[0].action, "run 'warden block cleanup " + block.name() + "'");
  EXPECT_FALSE(report.findings[0].repaired);
}

TEST(BlockValidateTest, CorruptHeaderIsReportedAndNeverRepaired) {
  ScopedBlock block("corruptheader");
  Producer::open(block.name()).write(bytes("x"), 1s);
  auto segment = Segment::open(block.name());
  segment->header().slot_count = 3;  // covered by the header checksum
  ValidationReport report = validate(block.name(), true);
  ASSERT_EQ(report.findings.size(), 1u) << describe(report);
  const ValidationFinding& f = report.findings[0];
  EXPECT_EQ(f.where, "header");
  EXPECT_EQ(f.problem, "header checksum mismatch (header corrupted)");
  EXPECT_FALSE(f.repairable);
  EXPECT_FALSE(f.repaired);
  EXPECT_TRUE(contains(f.action, "warden block remove " + block.name())) << f.action;
  EXPECT_EQ(validate(block.name()).unresolved(), 1u);  // still there
}

// A slot whose writer is alive is never repaired: here a live writer waits (DRAINING) on a
// committed slot whose payload is corrupt, and repair leaves its checksum as it was.
// A slot whose live writer waits for its readers (DRAINING) still holds the committed payload:
// a mismatch there is reported (its readers are reading it), but repair leaves the slot to
// the writer.
TEST(BlockValidateTest, RepairReportsButLeavesASlotWithAnActiveWriterAlone) {
  ScopedBlock block("activewriter", 2, 64);
  Producer::open(block.name()).write(bytes("original"), 1s, 0);
  Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 0ms});
  auto held = consumer.read_slot(0, 1s);
  ASSERT_TRUE(held.has_value());
  Child writer = Child::fork_function([&] {
    Producer::open(block.name()).write(bytes("next"), 60s, 0);
    return 0;
  });
  ASSERT_TRUE(wait_until([&] { return slot_of(block.name(), 0).writer_waiting; }));
  auto segment = Segment::open(block.name());
  uint64_t checksum = segment->slot(0).payload_checksum.load();
  segment->payload(0)[0] = std::byte{'O'};
  ValidationReport report = validate(block.name(), true);
  size_t found = 0;
  for (const auto& f : report.findings) {
    if (f.where != "slot 0") continue;
    ++found;
    EXPECT_NE(f.problem.find("payload checksum mismatch"), std::string::npos) << describe(report);
    EXPECT_FALSE(f.repaired) << describe(report);
    EXPECT_NE(f.action.find("live writer"), std::string::npos) << describe(report);
  }
  EXPECT_EQ(found, 1u) << describe(report);
  EXPECT_EQ(report.unresolved(), 1u) << describe(report);
  EXPECT_EQ(segment->slot(0).payload_checksum.load(), checksum);
  // An impossible length there is reported the same way, not offered to --repair.
  const uint64_t length = segment->slot(0).payload_length.load();
  segment->slot(0).payload_length.store(1000);
  ValidationReport too_long = validate(block.name(), false);
  ASSERT_EQ(too_long.findings.size(), 1u) << describe(too_long);
  EXPECT_NE(too_long.findings[0].problem.find("exceeds the slot size"), std::string::npos);
  EXPECT_FALSE(too_long.findings[0].repairable) << describe(too_long);
  EXPECT_NE(too_long.findings[0].action.find("live writer"), std::string::npos);
  segment->slot(0).payload_length.store(length);
  held->release();
  EXPECT_EQ(writer.wait(30s).exit_code, 0);
}

}  // namespace
}  // namespace warden::block
