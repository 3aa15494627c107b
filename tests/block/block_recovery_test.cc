// Seed 003's scenarios 1-3, by crashing real processes: a stuck writer, stuck readers and
// dead consumers, each diagnosed and recovered through warden::block's recovery API.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "../../src/block/layout.h"
#include "block_test_support.h"
#include "warden/error.h"
#include "warden/failpoint.h"
#include "warden/posix.h"

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

// A child that write-locks `slot`, writes half a payload and parks there.
Child producer_parked_in_slot(const std::string& name, uint32_t slot) {
  return Child::fork_function([name, slot] {
    Producer producer = Producer::open(name);
    WriteSlot target = producer.acquire(5s, slot);
    std::memcpy(target.buffer().data(), "half-writ", 9);
    return park();
  });
}

// A child that takes a read hold on `slot` and parks there.
Child consumer_parked_on_slot(const std::string& name, uint32_t slot) {
  return Child::fork_function([name, slot] {
    Consumer consumer = Consumer::open(name, {.heartbeat_interval = 0ms});
    auto held = consumer.read_slot(slot, 5s);
    if (!held) return 2;
    return park();
  });
}

bool write_locked_by(const std::string& name, uint32_t slot, pid_t pid) {
  auto d = slot_of(name, slot);
  return d.write_lock && d.write_lock->pid == pid;
}

// ---- Scenario 1: stuck writer ---------------------------------------------------------

TEST(BlockRecoveryTest, ProducerKilledHoldingTheWriteLockIsStuckUntilReleaseWriter) {
  ScopedBlock block("stuckwriter");
  Child dead = producer_parked_in_slot(block.name(), 0);
  // Killed once it is writing: the lock is visible a moment before the state says WRITING
  // (DRAINING in between), and a slow machine killed it there.
  ASSERT_TRUE(wait_until([&] {
    return write_locked_by(block.name(), 0, dead.pid()) &&
           slot_of(block.name(), 0).state == "WRITING";
  }));
  pid_t pid = dead.pid();
  kill_and_reap(dead);

  SlotDiagnosis stuck = slot_of(block.name(), 0);
  EXPECT_EQ(stuck.state, "WRITING");
  ASSERT_TRUE(stuck.write_lock.has_value());
  EXPECT_EQ(stuck.write_lock->pid, pid);
  EXPECT_FALSE(stuck.write_lock->alive);
  EXPECT_TRUE(stuck.is_stuck);
  EXPECT_TRUE(contains(stuck.stuck_reason, "writer pid " + std::to_string(pid) + " is dead"))
      << stuck.stuck_reason;
  EXPECT_TRUE(contains(stuck.stuck_reason, "warden block recover " + block.name() +
                                               " --slot 0 --action release_writer"));
  EXPECT_FALSE(is_process_alive(pid));

  // Nobody can write the slot until the lock is released.
  Producer next = Producer::open(block.name());
  EXPECT_FALSE(next.try_acquire(20ms, 0).has_value());

  auto released = release_writer(block.name(), 0);
  ASSERT_TRUE(released.has_value());
  EXPECT_EQ(released->action, "release_writer");
  EXPECT_TRUE(contains(released->detail, "dead pid " + std::to_string(pid))) << released->detail;
  EXPECT_TRUE(contains(released->detail, "half-written payload discarded"));
  SlotDiagnosis freed = slot_of(block.name(), 0);
  EXPECT_EQ(freed.state, "FREE");
  EXPECT_FALSE(freed.write_lock.has_value());
  EXPECT_FALSE(freed.is_stuck);
  EXPECT_FALSE(release_writer(block.name(), 0).has_value());  // nothing left to release

  next.write(bytes("after recovery"), 1s, 0);
  Consumer consumer = Consumer::open(block.name());
  auto held = consumer.read_slot(0, 1s);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(text(held->data()), "after recovery");
  EXPECT_TRUE(held->verify());
}

// The write lock names its owner by pid and start time. A writer that died and whose pid now
// belongs to a live process (here: this test, with the dead writer's other start time) is not
// taken for alive; the lock's age is a real duration (taken 250 s ago, it says so).
TEST(BlockRecoveryTest, AWriterWhosePidWasReusedIsNotAliveAndItsLockAgeIsReal) {
  ScopedBlock block("reusedpid");
  const uint64_t my_start = process_start_time(::getpid()).value();
  const uint64_t dead_writers_start = my_start + 7;  // same pid, another process
  {
    auto segment = Segment::open(block.name());
    SlotControl& slot = segment->slot(0);
    slot.write_lock_start_time.store(dead_writers_start);
    slot.write_lock_taken_ns.store(now_ns() - 250'000'000'000);
    slot.state.store(static_cast<uint32_t>(SlotState::kWriting));
    slot.write_lock.store(pack_owner(::getpid(), dead_writers_start));
  }
  SlotDiagnosis stuck = slot_of(block.name(), 0);
  ASSERT_TRUE(stuck.write_lock.has_value());
  EXPECT_EQ(stuck.write_lock->pid, ::getpid());
  EXPECT_EQ(stuck.write_lock->start_time, dead_writers_start);
  EXPECT_FALSE(stuck.write_lock->alive);
  EXPECT_TRUE(stuck.write_lock->pid_reused);
  EXPECT_GE(stuck.write_lock->held_seconds, 250.0);
  EXPECT_LT(stuck.write_lock->held_seconds, 310.0);
  EXPECT_TRUE(stuck.is_stuck);
  EXPECT_TRUE(contains(stuck.stuck_reason, "is gone (pid now reused), lock held 4m 1"))
      << stuck.stuck_reason;

  auto released = release_writer(block.name(), 0);  // the live pid does not make it refuse
  ASSERT_TRUE(released.has_value());
  EXPECT_EQ(slot_of(block.name(), 0).state, "FREE");
  Producer::open(block.name()).write(bytes("after reuse"), 1s, 0);
  Consumer consumer = Consumer::open(block.name());
  auto held = consumer.read_slot(0, 1s);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(text(held->data()), "after reuse");
}

TEST(BlockRecoveryTest, ReleaseWriterRefusesWhileTheWriterIsAlive) {
  ScopedBlock block("livewriter");
  Child writer = producer_parked_in_slot(block.name(), 1);
  ASSERT_TRUE(wait_until([&] { return write_locked_by(block.name(), 1, writer.pid()); }));
  try {
    release_writer(block.name(), 1);
    FAIL() << "expected LockRecoveryError";
  } catch (const LockRecoveryError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLockHeld);
    EXPECT_TRUE(contains(e.what(), "pid " + std::to_string(writer.pid()) + " is alive"))
        << e.what();
  }
  EXPECT_TRUE(write_locked_by(block.name(), 1, writer.pid()));
  EXPECT_FALSE(slot_of(block.name(), 1).is_stuck);  // alive, and not for 60 s yet
  EXPECT_TRUE(recover_auto(block.name(), false).empty());
  EXPECT_TRUE(write_locked_by(block.name(), 1, writer.pid()));
  EXPECT_THROW(release_writer(block.name(), 4), InvalidArgumentError);
}

// The crash comes from inside the producer at the named moment between checksum and publish.
TEST(BlockRecoveryTest, ProducerCrashingBeforePublishLeavesAStuckSlotThatAutoRecoveryFrees) {
  ScopedBlock block("crashcommit");
  Child crashing = Child::fork_function([&] {
    Producer producer = Producer::open(block.name());
    failpoint_arm("block.commit.before_publish", "crash");
    producer.write(bytes("never published"), 5s, 2);
    return 0;
  });
  auto result = crashing.wait();
  ASSERT_FALSE(result.exited);
  EXPECT_EQ(result.signal, SIGKILL);
  SlotDiagnosis stuck = slot_of(block.name(), 2);
  EXPECT_TRUE(stuck.is_stuck);
  EXPECT_EQ(stuck.write_lock->pid, crashing.pid());
  EXPECT_EQ(diagnose(block.name()).latest_sequence, 0u);  // nothing was published

  auto planned = recover_auto(block.name(), true);
  ASSERT_EQ(planned.size(), 2u);  // release the writer, remove the dead producer
  EXPECT_EQ(planned[0].action, "release_writer");
  EXPECT_EQ(planned[0].slot, 2u);
  EXPECT_TRUE(contains(planned[0].detail, "would release"));
  EXPECT_EQ(planned[1].action, "cleanup");
  EXPECT_TRUE(slot_of(block.name(), 2).is_stuck);  // a dry run changes nothing

  auto done = recover_auto(block.name(), false);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].action, "release_writer");
  EXPECT_EQ(done[1].action, "cleanup");
  EXPECT_FALSE(slot_of(block.name(), 2).is_stuck);
  EXPECT_TRUE(diagnose(block.name()).participants.empty());
  EXPECT_TRUE(recover_auto(block.name(), false).empty());
}

// ---- Scenario 2: stuck readers --------------------------------------------------------

TEST(BlockRecoveryTest, ConsumersKilledWhileReadingAreReleasedAndTheWaitingWriterProceeds) {
  ScopedBlock block("stuckreaders");
  Producer::open(block.name()).write(bytes("v1"), 1s, 0);
  Child first = consumer_parked_on_slot(block.name(), 0);
  Child second = consumer_parked_on_slot(block.name(), 0);
  ASSERT_TRUE(wait_until([&] { return slot_of(block.name(), 0).reader_count == 2; }));
  std::set<pid_t> readers{first.pid(), second.pid()};
  kill_and_reap(first);
  kill_and_reap(second);

  Child writer = Child::fork_function([&] {
    Producer::open(block.name()).write(bytes("v2"), 60s, 0);
    return 0;
  });
  ASSERT_TRUE(wait_until([&] { return slot_of(block.name(), 0).writer_waiting; }));
  SlotDiagnosis stuck = slot_of(block.name(), 0);
  EXPECT_EQ(stuck.reader_count, 2u);
  EXPECT_TRUE(stuck.writer_waiting);
  EXPECT_EQ(stuck.write_lock->pid, writer.pid());
  EXPECT_TRUE(stuck.write_lock->alive);
  EXPECT_TRUE(stuck.is_stuck);
  EXPECT_TRUE(contains(stuck.stuck_reason, "2 read hold(s) of dead consumers"))
      << stuck.stuck_reason;
  for (const auto& hold : stuck.readers) {
    EXPECT_TRUE(readers.count(hold.pid)) << hold.pid;
    EXPECT_FALSE(hold.alive);
  }

  // Dead readers' holds are freed without --force, even though the writer is alive.
  ReleaseReadersResult result = release_readers(block.name(), 0);
  EXPECT_TRUE(result.kept.empty());
  ASSERT_EQ(result.released.size(), 2u);
  for (const auto& hold : result.released) EXPECT_TRUE(readers.count(hold.pid));

  EXPECT_EQ(writer.wait(30s).exit_code, 0);
  Consumer consumer = Consumer::open(block.name());
  auto held = consumer.read_slot(0, 1s);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(text(held->data()), "v2");
  EXPECT_FALSE(slot_of(block.name(), 0).is_stuck);
}

TEST(BlockRecoveryTest, LiveReadersHoldIsKeptWithoutForceAndBrokenWithForce) {
  ScopedBlock block("livereader");
  Producer::open(block.name()).write(bytes("v1"), 1s, 0);
  Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 0ms});
  auto held = consumer.read_slot(0, 1s);
  ASSERT_TRUE(held.has_value());

  ReleaseReadersResult gentle = release_readers(block.name(), 0);
  EXPECT_TRUE(gentle.released.empty());
  ASSERT_EQ(gentle.kept.size(), 1u);
  EXPECT_EQ(gentle.kept[0].pid, self_identity().pid);
  EXPECT_EQ(gentle.kept[0].consumer_id, consumer.id());
  EXPECT_TRUE(held->still_held());

  ReleaseReadersResult forced = release_readers(block.name(), 0, true);
  ASSERT_EQ(forced.released.size(), 1u);
  EXPECT_TRUE(forced.released[0].alive);
  EXPECT_FALSE(held->still_held());
  EXPECT_EQ(slot_of(block.name(), 0).reader_count, 0u);
  EXPECT_TRUE(release_readers(block.name(), 0).released.empty());
}

// ---- Scenario 3: dead consumers -------------------------------------------------------

TEST(BlockRecoveryTest, DeadConsumersAreRemovedByCleanupAndActiveConsumerCountIsCorrect) {
  // A heartbeat timeout far above any scheduling stall: the live consumers must never look
  // unresponsive here (with 2 s, a loaded machine could delay a 50 ms heartbeat that long).
  ScopedBlock block("deadconsumers", 4, 64, 60s);
  Producer::open(block.name()).write(bytes("v1"), 1s, 3);
  std::vector<Child> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(Child::fork_function([&] {
      Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 50ms});
      auto held = consumer.read_slot(3, 5s);  // the dead ones take a hold with them
      return park();
    }));
  }
  Consumer parent = Consumer::open(block.name(), {.heartbeat_interval = 50ms});
  ASSERT_TRUE(wait_until([&] { return slot_of(block.name(), 3).reader_count == 3; }));
  EXPECT_EQ(diagnose(block.name()).active_consumer_count, 4u);
  std::set<pid_t> dead{children[0].pid(), children[1].pid()};
  kill_and_reap(children[0]);
  kill_and_reap(children[1]);

  BlockDiagnosis before = diagnose(block.name());
  EXPECT_EQ(before.active_consumer_count, 4u);  // the table still counts the dead
  EXPECT_EQ(before.live_consumer_count, 2u);
  size_t dead_seen = 0;
  for (const auto& p : before.participants) {
    if (dead.count(p.pid)) {
      EXPECT_FALSE(p.alive);
      dead_seen++;
    }
  }
  EXPECT_EQ(dead_seen, 2u);

  CleanupResult cleaned = cleanup_dead_consumers(block.name());
  ASSERT_EQ(cleaned.removed.size(), 2u);
  for (const auto& p : cleaned.removed) {
    EXPECT_TRUE(dead.count(p.pid)) << p.pid;
    EXPECT_EQ(p.role, "consumer");
  }
  EXPECT_TRUE(cleaned.unresponsive.empty());
  EXPECT_EQ(cleaned.active_consumer_count, 2u);

  BlockDiagnosis after = diagnose(block.name());
  EXPECT_EQ(after.active_consumer_count, 2u);
  EXPECT_EQ(after.live_consumer_count, 2u);
  EXPECT_EQ(after.participants.size(), 2u);
  EXPECT_EQ(slot_of(block.name(), 3).reader_count, 1u);  // only the live child's hold is left
  EXPECT_TRUE(cleanup_dead_consumers(block.name()).removed.empty());
}

TEST(BlockRecoveryTest, LiveConsumerWithAStaleHeartbeatIsReportedButKept) {
  ScopedBlock block("staleheartbeat", 2, 64, 100ms);
  Child silent = Child::fork_function([&] {
    Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 0ms});
    return park();
  });
  ASSERT_TRUE(wait_until([&] {
    auto d = diagnose(block.name());
    return d.participants.size() == 1 && d.participants[0].heartbeat_stale;
  }));
  CleanupResult cleaned = cleanup_dead_consumers(block.name());
  EXPECT_TRUE(cleaned.removed.empty());
  ASSERT_EQ(cleaned.unresponsive.size(), 1u);
  EXPECT_EQ(cleaned.unresponsive[0].pid, silent.pid());
  EXPECT_TRUE(cleaned.unresponsive[0].alive);
  EXPECT_EQ(cleaned.active_consumer_count, 1u);
}

TEST(BlockRecoveryTest, HeartbeatThreadKeepsAnIdleConsumerFresh) {
  ScopedBlock block("heartbeatthread", 2, 64);
  Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 20ms});
  std::this_thread::sleep_for(500ms);  // idle: no calls into the consumer
  // Only the background thread can make the heartbeat younger than the idle time.
  EXPECT_TRUE(wait_until(
      [&] { return diagnose(block.name()).participants.at(0).heartbeat_age_seconds < 0.1; }));
}

}  // namespace
}  // namespace warden::block
