// `warden block` driven as an operator drives it: the real binary against real blocks with
// real dead processes in them. Output reads like seed 003's datablock-admin.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

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
using testing::slot_of;
using testing::unique_block_name;
using testing::wait_until;
using warden::testing::ChildResult;
using warden::testing::run_warden;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string show(const ChildResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// A block created through the CLI, removed at the end.
class CliBlock {
 public:
  explicit CliBlock(const std::string& what, int slots = 4, int slot_size = 64)
      : name_(unique_block_name(what)) {
    ChildResult r = run_warden({"block", "create", name_, "--slots", std::to_string(slots),
                                "--slot-size", std::to_string(slot_size)});
    EXPECT_EQ(r.exit_code, 0) << show(r);
    created_ = r.out;
  }
  ~CliBlock() { remove_block(name_); }
  const std::string& name() const { return name_; }
  const std::string& created() const { return created_; }

 private:
  std::string name_, created_;
};

// A child that write-locks `slot` and parks; returns once the lock is visible.
Child park_writer(const std::string& name, uint32_t slot) {
  Child child = Child::fork_function([name, slot] {
    Producer producer = Producer::open(name);
    WriteSlot held = producer.acquire(5s, slot);
    return park();
  });
  EXPECT_TRUE(wait_until([&] {
    auto d = slot_of(name, slot);
    return d.write_lock && d.write_lock->pid == child.pid();
  }));
  return child;
}

// A child that holds a read on `slot` and parks; returns once the hold is visible.
Child park_reader(const std::string& name, uint32_t slot, uint32_t holds_expected) {
  Child child = Child::fork_function([name, slot] {
    Consumer consumer = Consumer::open(name, {.heartbeat_interval = 0ms});
    auto held = consumer.read_slot(slot, 5s);
    return held ? park() : 2;
  });
  EXPECT_TRUE(wait_until([&] { return slot_of(name, slot).reader_count == holds_expected; }));
  return child;
}

TEST(BlockCliTest, CreateWriteReadAndRemove) {
  CliBlock block("cli-roundtrip");
  EXPECT_EQ(block.created(), "created block " + block.name() +
                                 ": 4 slots x 64 bytes (/dev/shm/warden-block." + block.name() +
                                 ")\n");
  ChildResult again =
      run_warden({"block", "create", block.name(), "--slots", "2", "--slot-size", "8"});
  EXPECT_EQ(again.exit_code, kExitLockHeld) << show(again);
  EXPECT_TRUE(contains(again.err, "it exists already")) << show(again);

  ChildResult wrote =
      run_warden({"block", "write", block.name(), "--data", "hello", "--slot", "2"});
  EXPECT_EQ(wrote.exit_code, 0) << show(wrote);
  EXPECT_EQ(wrote.out, "wrote slot 2 sequence 1 (5 bytes)\n");
  ChildResult read = run_warden({"block", "read", block.name()});
  EXPECT_EQ(read.exit_code, 0) << show(read);
  EXPECT_EQ(read.out, "hello\n");
  EXPECT_TRUE(contains(read.err, "slot 2 sequence 1: checksum ok")) << show(read);

  ChildResult removed = run_warden({"block", "remove", block.name()});
  EXPECT_EQ(removed.exit_code, 0) << show(removed);
  EXPECT_EQ(removed.out, "removed block " + block.name() + "\n");
  ChildResult missing = run_warden({"block", "remove", block.name()});
  EXPECT_EQ(missing.exit_code, kExitError) << show(missing);
  EXPECT_TRUE(contains(missing.err, "no such block")) << show(missing);
  ChildResult diagnose_missing = run_warden({"block", "diagnose", block.name()});
  EXPECT_EQ(diagnose_missing.exit_code, kExitError);
  EXPECT_TRUE(contains(diagnose_missing.err, "warden block list")) << show(diagnose_missing);
}

TEST(BlockCliTest, BadArgumentsAreUsageErrors) {
  CliBlock block("cli-usage");
  EXPECT_EQ(
      run_warden({"block", "create", "bad/name", "--slots", "1", "--slot-size", "8"}).exit_code,
      kExitUsage);
  EXPECT_EQ(run_warden({"block", "recover", block.name()}).exit_code, kExitUsage);
  EXPECT_EQ(run_warden({"block", "recover", block.name(), "--slot", "0", "--action", "explode"})
                .exit_code,
            kExitUsage);
  EXPECT_EQ(run_warden({"block", "diagnose", block.name(), "--slot", "9"}).exit_code, kExitUsage);
  EXPECT_EQ(run_warden({"block", "recover", block.name(), "--auto", "--slot", "0"}).exit_code,
            kExitUsage);
}

// Seed scenario 1 through the CLI: diagnose shows is_stuck Yes with the dead writer's pid,
// recover release_writer frees it (and refuses while the writer lives).
TEST(BlockCliTest, StuckWriterIsDiagnosedAndReleased) {
  CliBlock block("cli-writer");
  Child writer = park_writer(block.name(), 0);
  pid_t pid = writer.pid();

  ChildResult refused =
      run_warden({"block", "recover", block.name(), "--slot", "0", "--action", "release_writer"});
  EXPECT_EQ(refused.exit_code, kExitLockHeld) << show(refused);
  EXPECT_TRUE(contains(refused.err, "pid " + std::to_string(pid) + " is alive")) << show(refused);
  ChildResult live = run_warden({"block", "diagnose", block.name(), "--slot", "0"});
  EXPECT_TRUE(contains(live.out, "  is_stuck:       No\n")) << show(live);

  kill_and_reap(writer);
  ChildResult stuck = run_warden({"block", "diagnose", block.name(), "--slot", "0"});
  EXPECT_EQ(stuck.exit_code, 0) << show(stuck);
  EXPECT_TRUE(contains(stuck.out, "Slot 0:\n  state:          WRITING\n")) << show(stuck);
  EXPECT_TRUE(contains(stuck.out, "  write_lock:     " + std::to_string(pid) + " (dead, held "))
      << show(stuck);
  EXPECT_TRUE(contains(stuck.out, "  reader_count:   0\n"));
  EXPECT_TRUE(contains(stuck.out, "  writer_waiting: 0\n"));
  EXPECT_TRUE(
      contains(stuck.out, "  is_stuck:       Yes (writer pid " + std::to_string(pid) + " is dead"))
      << show(stuck);
  EXPECT_FALSE(contains(stuck.out, "Slot 1:"));  // --slot shows one slot

  ChildResult json = run_warden({"block", "diagnose", block.name(), "--json"});
  EXPECT_EQ(json.exit_code, 0) << show(json);
  auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["slot_count"], 4);
  ASSERT_EQ(parsed["slots"].size(), 4u);
  EXPECT_EQ(parsed["slots"][0]["is_stuck"], true);
  EXPECT_EQ(parsed["slots"][0]["write_lock"]["pid"], pid);
  EXPECT_EQ(parsed["slots"][0]["write_lock"]["alive"], false);
  EXPECT_EQ(parsed["slots"][1]["write_lock"], nullptr);
  EXPECT_EQ(parsed["slots"][1]["is_stuck"], false);

  ChildResult released =
      run_warden({"block", "recover", block.name(), "--slot", "0", "--action", "release_writer"});
  EXPECT_EQ(released.exit_code, 0) << show(released);
  EXPECT_TRUE(
      contains(released.out, "slot 0: released write lock of dead pid " + std::to_string(pid)))
      << show(released);
  ChildResult after = run_warden({"block", "diagnose", block.name(), "--slot", "0"});
  EXPECT_TRUE(contains(after.out, "  state:          FREE\n")) << show(after);
  EXPECT_TRUE(contains(after.out, "  is_stuck:       No\n")) << show(after);
  ChildResult wrote = run_warden({"block", "write", block.name(), "--data", "new", "--slot", "0"});
  EXPECT_EQ(wrote.exit_code, 0) << show(wrote);
}

// Seed scenario 2: dead readers are released without --force; a live reader needs --force.
TEST(BlockCliTest, StuckReadersAreReleasedAndLiveOnesNeedForce) {
  CliBlock block("cli-readers");
  Producer::open(block.name()).write(bytes("v1"), 1s, 0);
  Child dead_reader = park_reader(block.name(), 0, 1);
  Child live_reader = park_reader(block.name(), 0, 2);
  pid_t dead_pid = dead_reader.pid();
  kill_and_reap(dead_reader);
  Child writer = Child::fork_function([&] {
    Producer::open(block.name()).write(bytes("v2"), 60s, 0);
    return 0;
  });
  ASSERT_TRUE(wait_until([&] { return slot_of(block.name(), 0).writer_waiting; }));

  ChildResult stuck = run_warden({"block", "diagnose", block.name(), "--slot", "0"});
  EXPECT_TRUE(contains(stuck.out, "  state:          DRAINING\n")) << show(stuck);
  EXPECT_TRUE(contains(stuck.out, "  reader_count:   2 [")) << show(stuck);
  EXPECT_TRUE(contains(stuck.out, "(pid " + std::to_string(dead_pid) + ", dead)")) << show(stuck);
  EXPECT_TRUE(contains(stuck.out, "  writer_waiting: 1\n")) << show(stuck);
  EXPECT_TRUE(contains(stuck.out, "  is_stuck:       Yes (1 read hold(s) of dead consumers"))
      << show(stuck);

  ChildResult gentle =
      run_warden({"block", "recover", block.name(), "--slot", "0", "--action", "release_readers"});
  EXPECT_EQ(gentle.exit_code, kExitLockHeld) << show(gentle);
  EXPECT_TRUE(contains(gentle.out, "released read hold of dead consumer")) << show(gentle);
  EXPECT_TRUE(contains(gentle.out, "kept read hold of live consumer")) << show(gentle);
  EXPECT_TRUE(contains(gentle.err, "--action release_readers --force")) << show(gentle);
  EXPECT_FALSE(writer.finished());  // the live reader still holds the slot

  ChildResult forced = run_warden(
      {"block", "recover", block.name(), "--slot", "0", "--action", "release_readers", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << show(forced);
  EXPECT_TRUE(contains(forced.out, "released read hold of live consumer")) << show(forced);
  EXPECT_EQ(writer.wait(30s).exit_code, 0);  // the waiting writer proceeded
  ChildResult read = run_warden({"block", "read", block.name(), "--slot", "0"});
  EXPECT_EQ(read.out, "v2\n") << show(read);
}

// Seed scenario 3: cleanup removes dead consumers and corrects active_consumer_count.
TEST(BlockCliTest, CleanupRemovesDeadConsumers) {
  CliBlock block("cli-cleanup");
  std::vector<Child> consumers;
  for (int i = 0; i < 3; ++i) {
    consumers.push_back(Child::fork_function([&] {
      Consumer consumer = Consumer::open(block.name(), {.heartbeat_interval = 100ms});
      return park();
    }));
  }
  ASSERT_TRUE(wait_until([&] { return diagnose(block.name()).active_consumer_count == 3; }));
  pid_t first = consumers[0].pid(), second = consumers[1].pid();
  kill_and_reap(consumers[0]);
  kill_and_reap(consumers[1]);
  ChildResult before = run_warden({"block", "diagnose", block.name()});
  EXPECT_TRUE(contains(before.out, "active_consumer_count: 3 (live consumers: 1)\n"))
      << show(before);
  EXPECT_TRUE(contains(before.out, "consumer pid " + std::to_string(first) + " DEAD"))
      << show(before);

  ChildResult cleaned = run_warden({"block", "cleanup", block.name()});
  EXPECT_EQ(cleaned.exit_code, 0) << show(cleaned);
  EXPECT_TRUE(contains(cleaned.out, "(pid " + std::to_string(first) + ", last heartbeat"))
      << show(cleaned);
  EXPECT_TRUE(contains(cleaned.out, "(pid " + std::to_string(second) + ", last heartbeat"));
  EXPECT_TRUE(contains(cleaned.out, "removed 2; active_consumer_count: 1\n")) << show(cleaned);
  ChildResult again = run_warden({"block", "cleanup", block.name()});
  EXPECT_EQ(again.out, "removed 0; active_consumer_count: 1\n") << show(again);
}

// Seed scenario 4: validate exits 3 and names each problem; --repair fixes what it can.
TEST(BlockCliTest, ValidateReportsCorruptionAndRepairFixesIt) {
  CliBlock block("cli-validate");
  ChildResult wrote =
      run_warden({"block", "write", block.name(), "--data", "payload", "--slot", "1"});
  ASSERT_EQ(wrote.exit_code, 0) << show(wrote);
  ChildResult valid = run_warden({"block", "validate", block.name()});
  EXPECT_EQ(valid.exit_code, 0) << show(valid);
  EXPECT_EQ(valid.out, block.name() + ": valid\n");

  // A stray write into the payload, and a writer that died holding slot 3.
  Segment::open(block.name())->payload(1)[0] = std::byte{'P'};
  Child writer = park_writer(block.name(), 3);
  kill_and_reap(writer);

  ChildResult found = run_warden({"block", "validate", block.name()});
  EXPECT_EQ(found.exit_code, kExitVerifyFailed) << show(found);
  EXPECT_TRUE(
      contains(found.out, "PROBLEM: slot 1: payload checksum mismatch (sequence 1, 7 bytes"))
      << show(found);
  EXPECT_TRUE(contains(found.out, "PROBLEM: slot 3: write lock held by dead pid")) << show(found);
  EXPECT_TRUE(contains(found.out, block.name() + ": 3 finding(s), 3 unresolved\n")) << show(found);

  ChildResult repaired = run_warden({"block", "validate", block.name(), "--repair"});
  EXPECT_EQ(repaired.exit_code, kExitVerifyFailed) << show(repaired);
  EXPECT_TRUE(contains(repaired.out, "REPAIRED: slot 1: payload checksum mismatch"))
      << show(repaired);
  EXPECT_TRUE(contains(repaired.out, "-> checksum recomputed: ")) << show(repaired);
  EXPECT_TRUE(contains(repaired.out, "--slot 3 --action release_writer")) << show(repaired);
  EXPECT_TRUE(contains(repaired.out, block.name() + ": 3 finding(s), 2 unresolved\n"))
      << show(repaired);

  ChildResult recovered = run_warden({"block", "recover", block.name(), "--auto"});
  EXPECT_EQ(recovered.exit_code, 0) << show(recovered);
  ChildResult json = run_warden({"block", "validate", block.name(), "--json"});
  EXPECT_EQ(json.exit_code, 0) << show(json);
  EXPECT_EQ(nlohmann::json::parse(json.out)["unresolved"], 0);
  ChildResult read = run_warden({"block", "read", block.name(), "--slot", "1"});
  EXPECT_EQ(read.exit_code, 0) << show(read);
  EXPECT_EQ(read.out, "Payload\n");
}

TEST(BlockCliTest, RecoverAutoDryRunThenRecoversEverythingSafe) {
  CliBlock block("cli-auto");
  Child writer = park_writer(block.name(), 1);
  pid_t pid = writer.pid();
  kill_and_reap(writer);

  ChildResult dry = run_warden({"block", "recover", block.name(), "--auto", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << show(dry);
  EXPECT_TRUE(contains(dry.out, "dry-run: " + block.name() +
                                    " release_writer slot 1: would release the write lock of "
                                    "dead pid " +
                                    std::to_string(pid)))
      << show(dry);
  EXPECT_TRUE(contains(dry.out, "would remove dead producer")) << show(dry);
  EXPECT_TRUE(slot_of(block.name(), 1).is_stuck);

  ChildResult done = run_warden({"block", "recover", block.name(), "--auto"});
  EXPECT_EQ(done.exit_code, 0) << show(done);
  EXPECT_TRUE(contains(done.out, "recovered: " + block.name() + " release_writer slot 1: "))
      << show(done);
  EXPECT_TRUE(contains(done.out, "recovered: " + block.name() + " cleanup: removed dead producer"))
      << show(done);
  EXPECT_FALSE(slot_of(block.name(), 1).is_stuck);
  ChildResult nothing = run_warden({"block", "recover", block.name(), "--auto"});
  EXPECT_EQ(nothing.out, block.name() + ": nothing to recover\n") << show(nothing);
}

// list shows every block, who uses it, and flags one whose every user is dead as leaked.
TEST(BlockCliTest, ListShowsUsersAndLeakedBlocks) {
  CliBlock leaked("cli-leaked");
  CliBlock used("cli-used");
  Child writer = park_writer(leaked.name(), 0);
  pid_t dead_pid = writer.pid();
  kill_and_reap(writer);
  Child user = Child::fork_function([&] {
    Consumer consumer = Consumer::open(used.name(), {.heartbeat_interval = 0ms});
    return park();
  });
  ASSERT_TRUE(wait_until([&] { return diagnose(used.name()).participants.size() == 1; }));

  ChildResult listed = run_warden({"block", "list"});
  EXPECT_EQ(listed.exit_code, 0) << show(listed);
  EXPECT_TRUE(contains(listed.out, leaked.name() +
                                       "  4 slots x 64 bytes  LEAKED (every user is dead)  dead "
                                       "users: " +
                                       std::to_string(dead_pid) + "\n"))
      << show(listed);
  EXPECT_TRUE(contains(listed.out, "  recover: warden block recover " + leaked.name() + " --auto"))
      << show(listed);
  EXPECT_TRUE(contains(listed.out, used.name() + "  4 slots x 64 bytes  in use by 1 process(es)\n"))
      << show(listed);

  ChildResult json = run_warden({"block", "list", "--json"});
  EXPECT_EQ(json.exit_code, 0) << show(json);
  bool found = false;
  for (const auto& entry : nlohmann::json::parse(json.out)) {
    if (entry["name"] == used.name()) {
      found = true;
      EXPECT_EQ(entry["users"], nlohmann::json::array({user.pid()}));
      EXPECT_EQ(entry["leaked"], false);
    }
  }
  EXPECT_TRUE(found) << show(json);
}

}  // namespace
}  // namespace warden::block
