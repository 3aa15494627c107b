// The DataBlock itself: creating and opening it, writing, committing and reading slots, the
// header checks, and waiting that wakes promptly (futex) across processes.
#include <gtest/gtest.h>

#include <cstring>

#include "../../src/block/layout.h"
#include "block_test_support.h"
#include "warden/error.h"
#include "warden/posix.h"
#include "warden/shm.h"

namespace warden::block {
namespace {

using namespace std::chrono_literals;
using testing::bytes;
using testing::Child;
using testing::park;
using testing::ScopedBlock;
using testing::slot_of;
using testing::text;
using testing::unique_block_name;
using testing::wait_until;

TEST(BlockCoreTest, WrittenPayloadIsReadBackWithItsSequenceAndValidChecksum) {
  ScopedBlock block("roundtrip");
  Producer producer = Producer::open(block.name());
  EXPECT_EQ(producer.slot_count(), 4u);
  EXPECT_EQ(producer.slot_size(), 256u);
  uint64_t first = producer.write(bytes("first payload"), 1s);
  uint64_t second = producer.write(bytes("second"), 1s);
  EXPECT_EQ(first, 1u);
  EXPECT_EQ(second, 2u);

  Consumer consumer = Consumer::open(block.name());
  auto held = consumer.read_newest(1s);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->sequence(), 2u);
  EXPECT_EQ(text(held->data()), "second");
  EXPECT_TRUE(held->verify());
  EXPECT_TRUE(held->still_held());
  uint32_t newest_slot = held->index();
  held->release();
  EXPECT_FALSE(held->still_held());

  // A given slot, and "newer than" filtering.
  auto older = consumer.read_slot(newest_slot == 0 ? 1 : 0, 1s);
  ASSERT_TRUE(older.has_value());
  EXPECT_EQ(text(older->data()), "first payload");
  EXPECT_FALSE(consumer.read_newest(10ms, 2).has_value());
}

TEST(BlockCoreTest, ProducerWritesInPlaceThroughTheSlotBuffer) {
  ScopedBlock block("inplace", 2, 64);
  Producer producer = Producer::open(block.name());
  WriteSlot slot = producer.acquire(1s, 1);
  EXPECT_EQ(slot.index(), 1u);
  ASSERT_EQ(slot.buffer().size(), 64u);
  std::memcpy(slot.buffer().data(), "in place", 8);
  EXPECT_THROW(slot.commit(65), InvalidArgumentError);
  EXPECT_EQ(slot.commit(8), 1u);
  EXPECT_THROW(slot.commit(8), InvalidArgumentError);
  EXPECT_EQ(slot_of(block.name(), 1).state, "COMMITTED");
  EXPECT_EQ(slot_of(block.name(), 1).payload_length, 8u);
}

TEST(BlockCoreTest, WriteSlotDroppedWithoutCommitLeavesTheSlotFreeAndUnlocked) {
  ScopedBlock block("abort", 2, 64);
  Producer producer = Producer::open(block.name());
  {
    WriteSlot slot = producer.acquire(1s, 0);
    EXPECT_EQ(slot_of(block.name(), 0).state, "WRITING");
    EXPECT_EQ(slot_of(block.name(), 0).write_lock->pid, self_identity().pid);
  }
  SlotDiagnosis after = slot_of(block.name(), 0);
  EXPECT_EQ(after.state, "FREE");
  EXPECT_FALSE(after.write_lock.has_value());
  EXPECT_TRUE(producer.try_acquire(10ms, 0).has_value());
}

TEST(BlockCoreTest, PayloadLargerThanTheSlotIsRefused) {
  ScopedBlock block("toolarge", 2, 8);
  Producer producer = Producer::open(block.name());
  EXPECT_THROW(producer.write(bytes("123456789"), 1s), InvalidArgumentError);
  EXPECT_THROW(producer.try_acquire(10ms, 2), InvalidArgumentError);
}

TEST(BlockCoreTest, CreatingAnExistingBlockIsLockHeldAndNamesTheRemoveCommand) {
  ScopedBlock block("exists");
  try {
    create_block(block.name(), {});
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLockHeld);
    EXPECT_NE(std::string(e.what()).find("warden block remove " + block.name()), std::string::npos);
  }
}

TEST(BlockCoreTest, BadNamesAndGeometryAreInvalidArguments) {
  EXPECT_THROW(create_block("bad/name", {}), InvalidArgumentError);
  EXPECT_THROW(create_block("", {}), InvalidArgumentError);
  EXPECT_THROW(create_block("..", {}), InvalidArgumentError);
  std::string name = unique_block_name("geometry");
  EXPECT_THROW(create_block(name, {.slot_count = 0}), InvalidArgumentError);
  EXPECT_THROW(create_block(name, {.slot_count = kMaxSlots + 1}), InvalidArgumentError);
  EXPECT_THROW(create_block(name, {.slot_size = 0}), InvalidArgumentError);
  EXPECT_FALSE(remove_block(name));  // nothing was created
}

TEST(BlockCoreTest, OpeningAMissingBlockIsNotFoundAndNamesTheListCommand) {
  std::string name = unique_block_name("missing");
  try {
    Producer::open(name);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("warden block list"), std::string::npos);
  }
  EXPECT_THROW(diagnose(name), IoError);
}

TEST(BlockCoreTest, SegmentIsCreatedWithMode0600UnderDevShm) {
  ScopedBlock block("mode");
  auto info = stat_path(shared_memory_path(segment_name(block.name())));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->mode & 0777, 0600u);
}

TEST(BlockCoreTest, RemovedBlockStaysUsableThroughExistingMappings) {
  std::string name = unique_block_name("removed");
  create_block(name, {.slot_count = 2, .slot_size = 16});
  Producer producer = Producer::open(name);
  EXPECT_TRUE(remove_block(name));
  EXPECT_FALSE(remove_block(name));
  EXPECT_EQ(producer.write(bytes("still"), 1s), 1u);
  EXPECT_THROW(Consumer::open(name), IoError);
}

// Header validation: a header whose checksum does not match refuses producers, consumers and
// diagnose, and says to run validate.
TEST(BlockCoreTest, CorruptHeaderIsRefusedWithAVerificationError) {
  ScopedBlock block("badheader");
  auto segment = Segment::open(block.name());
  segment->header().slot_size = 1 << 20;  // covered by the header checksum
  try {
    Producer::open(block.name());
    FAIL() << "expected VerificationError";
  } catch (const VerificationError& e) {
    EXPECT_NE(std::string(e.what()).find("header checksum mismatch"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("warden block validate " + block.name()),
              std::string::npos);
  }
  EXPECT_THROW(Consumer::open(block.name()), VerificationError);
  EXPECT_THROW(diagnose(block.name()), VerificationError);
}

TEST(BlockCoreTest, BadMagicAndVersionAreNamedAsSuch) {
  ScopedBlock block("magic");
  auto segment = Segment::open(block.name());
  segment->header().layout_version = 9;
  EXPECT_EQ(segment->header_problem(), "layout version 9, expected 1");
  segment->header().magic = 0;
  EXPECT_EQ(segment->header_problem(),
            "bad magic (not a warden DataBlock, or its header is overwritten)");
}

TEST(BlockCoreTest, ParticipantsRegisterAndUnregister) {
  ScopedBlock block("participants");
  {
    Producer producer = Producer::open(block.name());
    Consumer first = Consumer::open(block.name());
    Consumer second = Consumer::open(block.name());
    EXPECT_NE(first.id(), second.id());
    BlockDiagnosis d = diagnose(block.name());
    EXPECT_EQ(d.active_consumer_count, 2u);
    EXPECT_EQ(d.live_consumer_count, 2u);
    EXPECT_EQ(d.participants.size(), 3u);
    // Move-assigning a consumer over another unregisters the one overwritten.
    first = std::move(second);
    EXPECT_EQ(diagnose(block.name()).active_consumer_count, 1u);
  }
  BlockDiagnosis d = diagnose(block.name());
  EXPECT_EQ(d.active_consumer_count, 0u);
  EXPECT_TRUE(d.participants.empty());
}

TEST(BlockCoreTest, ReleasingAConsumerReleasesItsHolds) {
  ScopedBlock block("holds");
  Producer producer = Producer::open(block.name());
  producer.write(bytes("x"), 1s, 0);
  {
    Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 0ms});
    auto held = consumer.read_slot(0, 1s);
    ASSERT_TRUE(held.has_value());
    EXPECT_EQ(slot_of(block.name(), 0).reader_count, 1u);
    EXPECT_EQ(slot_of(block.name(), 0).state, "READING");
    held.reset();
    EXPECT_EQ(slot_of(block.name(), 0).reader_count, 0u);
    held = consumer.read_slot(0, 1s);
    ASSERT_TRUE(held.has_value());
    // The consumer goes first: its destructor frees the hold the ReadSlot still names.
    Consumer gone = std::move(consumer);
  }
  EXPECT_EQ(slot_of(block.name(), 0).reader_count, 0u);
}

// A process asleep in futex_wait is in the futex syscall (202 on x86-64, 98 on arm64).
bool sleeping_in_futex(pid_t pid) {
  std::string syscall = warden::testing::slurp("/proc/" + std::to_string(pid) + "/syscall");
#if defined(__x86_64__)
  return syscall.rfind("202 ", 0) == 0;
#elif defined(__aarch64__)
  return syscall.rfind("98 ", 0) == 0;
#else
  return !syscall.empty();
#endif
}

// Prompt wake-up: a consumer waiting for a commit sleeps in the futex (not a sleep loop) and
// a commit in another process wakes it. Its read times out only after a minute, so the child
// succeeding proves the wake-up came from the commit.
TEST(BlockCoreTest, CommitWakesAConsumerSleepingInTheFutex) {
  ScopedBlock block("wakeup");
  Child reader = Child::fork_function([&] {
    Consumer consumer =
        Consumer::open(block.name(), {.heartbeat_interval = 0ms, .spin_before_sleep = 0us});
    auto held = consumer.read_newest(60s);
    if (!held) return 2;
    return text(held->data()) == "wake up" ? 0 : 3;
  });
  ASSERT_TRUE(wait_until([&] { return sleeping_in_futex(reader.pid()); }));
  Producer::open(block.name()).write(bytes("wake up"), 1s);
  auto result = reader.wait(30s);
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 0);
}

// A writer that needs a slot held by a reader sets writer_waiting, sleeps in the futex, and
// is woken when the reader releases.
TEST(BlockCoreTest, ReleasedReadHoldWakesTheWriterWaitingForTheSlot) {
  ScopedBlock block("writerwait");
  Producer producer = Producer::open(block.name());
  producer.write(bytes("old"), 1s, 0);
  Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 0ms});
  auto held = consumer.read_slot(0, 1s);
  ASSERT_TRUE(held.has_value());
  Child writer = Child::fork_function([&] {
    Producer::open(block.name()).write(bytes("new"), 60s, 0);
    return 0;
  });
  ASSERT_TRUE(wait_until(
      [&] { return slot_of(block.name(), 0).writer_waiting && sleeping_in_futex(writer.pid()); }));
  SlotDiagnosis draining = slot_of(block.name(), 0);
  EXPECT_EQ(draining.state, "DRAINING");
  EXPECT_EQ(draining.write_lock->pid, writer.pid());
  EXPECT_EQ(text(held->data()), "old");  // the writer has not touched the held payload
  held->release();
  auto result = writer.wait(30s);
  EXPECT_EQ(result.exit_code, 0);
  auto fresh = consumer.read_slot(0, 1s);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(text(fresh->data()), "new");
  EXPECT_FALSE(slot_of(block.name(), 0).writer_waiting);
}

TEST(BlockCoreTest, AcquireTimeoutNamesTheHolderAndTheDiagnoseCommand) {
  ScopedBlock block("timeout", 1, 16);
  Producer holder = Producer::open(block.name());
  WriteSlot slot = holder.acquire(1s, 0);
  Producer other = Producer::open(block.name());
  EXPECT_FALSE(other.try_acquire(20ms).has_value());
  try {
    other.acquire(20ms, 0);
    FAIL() << "expected LockAcquisitionError";
  } catch (const LockAcquisitionError& e) {
    std::string what = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kLockHeld);
    EXPECT_NE(what.find("write-locked by pid " + std::to_string(self_identity().pid) + " (alive)"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("warden block diagnose " + block.name()), std::string::npos);
  }
}

// A producer waiting for any slot wakes when another producer commits and unlocks.
TEST(BlockCoreTest, ProducerWaitingForAFreeSlotWakesWhenOneIsUnlocked) {
  ScopedBlock block("freewait", 1, 16);
  Producer holder = Producer::open(block.name());
  std::optional<WriteSlot> slot = holder.acquire(1s, 0);
  Child writer = Child::fork_function([&] {
    Producer::open(block.name()).write(bytes("second"), 60s);
    return 0;
  });
  ASSERT_TRUE(wait_until([&] { return sleeping_in_futex(writer.pid()); }));
  std::memcpy(slot->buffer().data(), "first", 5);
  slot->commit(5);
  EXPECT_EQ(writer.wait(30s).exit_code, 0);
  EXPECT_EQ(diagnose(block.name()).latest_sequence, 2u);
}

TEST(BlockCoreTest, NextFreeSlotIsPreferredAndTheOldestCommittedIsOverwrittenNext) {
  ScopedBlock block("ring", 3, 16);
  Producer producer = Producer::open(block.name());
  for (int i = 0; i < 3; ++i) producer.write(bytes("p" + std::to_string(i)), 1s);
  std::vector<uint64_t> sequences;
  for (uint32_t i = 0; i < 3; ++i) sequences.push_back(slot_of(block.name(), i).sequence);
  EXPECT_EQ(sequences, (std::vector<uint64_t>{1, 2, 3}));
  // Slot 0 holds the oldest payload, but a reader holds it: the next oldest is overwritten.
  Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 0ms});
  auto held = consumer.read_slot(0, 1s);
  producer.write(bytes("p3"), 1s);
  EXPECT_EQ(slot_of(block.name(), 0).sequence, 1u);
  EXPECT_EQ(slot_of(block.name(), 1).sequence, 4u);
}

}  // namespace
}  // namespace warden::block
