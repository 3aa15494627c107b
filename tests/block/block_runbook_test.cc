// docs/runbooks/datablock-recovery.md: every `warden` command in its bash blocks is run here,
// section by section, against a block with exactly the failure that section describes; after
// the section's commands the failure must be gone. A section with commands but no setup here
// fails the test, so the runbook cannot grow an untested command.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <sstream>

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
using warden::testing::slurp;

struct Section {
  std::string title;
  std::vector<std::string> commands;
};

// The `warden ...` lines of every ```bash block, grouped by the heading above them.
std::vector<Section> runbook_sections() {
  std::string text = slurp(std::string(WARDEN_SOURCE_DIR) + "/docs/runbooks/datablock-recovery.md");
  EXPECT_FALSE(text.empty());
  std::vector<Section> sections;
  std::istringstream lines(text);
  std::string line;
  bool in_bash = false;
  while (std::getline(lines, line)) {
    if (line.rfind("```", 0) == 0) {
      in_bash = !in_bash && line == "```bash";
      continue;
    }
    if (!in_bash && line.rfind("## ", 0) == 0) {
      sections.push_back({line.substr(3), {}});
    } else if (in_bash && line.rfind("warden ", 0) == 0) {
      sections.back().commands.push_back(line);
    }
  }
  return sections;
}

std::vector<std::string> arguments(const std::string& command, const std::string& name) {
  std::vector<std::string> args;
  std::istringstream words(command.substr(std::string("warden ").size()));
  std::string word;
  while (words >> word) args.push_back(word == "my_datablock" ? name : word);
  return args;
}

// One failure to stage and the check that the section's commands removed it.
struct Drill {
  std::function<void(const std::string& name, std::vector<Child>& children)> stage;
  std::function<void(const std::string& name, std::vector<Child>& children)> check;
};

Child writer_killed_in_slot(const std::string& name, uint32_t slot) {
  Child child = Child::fork_function([name, slot] {
    Producer producer = Producer::open(name);
    WriteSlot held = producer.acquire(5s, slot);
    return park();
  });
  EXPECT_TRUE(wait_until([&] { return slot_of(name, slot).write_lock.has_value(); }));
  kill_and_reap(child);
  return child;
}

Child reader_on_slot(const std::string& name, uint32_t slot, uint32_t holds_expected) {
  Child child = Child::fork_function([name, slot] {
    Consumer consumer = Consumer::open(name, {.heartbeat_interval = 100ms});
    auto held = consumer.read_slot(slot, 5s);
    return held ? park() : 2;
  });
  EXPECT_TRUE(wait_until([&] { return slot_of(name, slot).reader_count == holds_expected; }));
  return child;
}

std::map<std::string, Drill> drills() {
  std::map<std::string, Drill> d;
  d["First look"] = {[](const std::string& name, std::vector<Child>&) {
                       writer_killed_in_slot(name, 1);
                       Producer::open(name).write(bytes("v1"), 1s, 0);
                       Child reader = reader_on_slot(name, 0, 1);
                       kill_and_reap(reader);
                     },
                     [](const std::string& name, std::vector<Child>&) {
                       BlockDiagnosis after = diagnose(name);
                       for (const auto& s : after.slots) EXPECT_FALSE(s.is_stuck) << s.stuck_reason;
                       EXPECT_TRUE(after.participants.empty());
                     }};
  d["Scenario 1"] = {
      [](const std::string& name, std::vector<Child>&) { writer_killed_in_slot(name, 0); },
      [](const std::string& name, std::vector<Child>&) {
        EXPECT_FALSE(slot_of(name, 0).is_stuck);
        EXPECT_EQ(slot_of(name, 0).state, "FREE");
      }};
  d["Scenario 2"] = {[](const std::string& name, std::vector<Child>& children) {
                       Producer::open(name).write(bytes("v1"), 1s, 0);
                       Child dead = reader_on_slot(name, 0, 1);
                       children.push_back(reader_on_slot(name, 0, 2));  // alive, and hung
                       kill_and_reap(dead);
                       children.push_back(Child::fork_function([name] {
                         Producer::open(name).write(bytes("v2"), 60s, 0);
                         return 0;
                       }));
                       EXPECT_TRUE(wait_until([&] { return slot_of(name, 0).writer_waiting; }));
                     },
                     [](const std::string& name, std::vector<Child>& children) {
                       EXPECT_EQ(children[1].wait(30s).exit_code,
                                 0);  // the waiting writer proceeded
                       EXPECT_FALSE(slot_of(name, 0).is_stuck);
                       EXPECT_EQ(slot_of(name, 0).reader_count, 0u);
                     }};
  d["Scenario 3"] = {
      [](const std::string& name, std::vector<Child>& children) {
        Producer::open(name).write(bytes("v1"), 1s, 0);
        Child first = reader_on_slot(name, 0, 1);
        Child second = reader_on_slot(name, 0, 2);
        children.push_back(Child::fork_function([name] {
          Consumer consumer = Consumer::open(name, {.heartbeat_interval = 100ms});
          return park();
        }));
        kill_and_reap(first);
        kill_and_reap(second);
        EXPECT_TRUE(wait_until([&] { return diagnose(name).active_consumer_count == 3; }));
      },
      [](const std::string& name, std::vector<Child>&) {
        BlockDiagnosis after = diagnose(name);
        EXPECT_EQ(after.active_consumer_count, 1u);
        EXPECT_EQ(after.live_consumer_count, 1u);
        EXPECT_EQ(slot_of(name, 0).reader_count, 0u);
      }};
  d["Scenario 4"] = {[](const std::string& name, std::vector<Child>&) {
                       Producer::open(name).write(bytes("payload"), 1s, 2);
                       Segment::open(name)->payload(2)[0] = std::byte{'P'};
                     },
                     [](const std::string& name, std::vector<Child>&) {
                       EXPECT_TRUE(validate(name).findings.empty());
                     }};
  d["Last resort"] = {[](const std::string& name, std::vector<Child>&) {
                        Segment::open(name)->header().slot_count = 2;
                      },
                      [](const std::string& name, std::vector<Child>&) {
                        EXPECT_TRUE(validate(name).findings.empty());
                        EXPECT_EQ(diagnose(name).slot_count, 8u);
                      }};
  return d;
}

TEST(BlockRunbookTest, EveryRunbookCommandRecoversTheFailureOfItsSection) {
  auto sections = runbook_sections();
  auto known = drills();
  size_t commands_run = 0;
  for (const Section& section : sections) {
    if (section.commands.empty()) continue;
    SCOPED_TRACE(section.title);
    auto drill = std::find_if(known.begin(), known.end(), [&](const auto& entry) {
      return section.title.rfind(entry.first, 0) == 0;
    });
    ASSERT_NE(drill, known.end()) << "runbook section '" << section.title
                                  << "' has commands but no drill in this test";
    std::string name = unique_block_name("runbook");
    create_block(name, {.slot_count = 8, .slot_size = 4096});
    std::vector<Child> children;
    drill->second.stage(name, children);
    for (const std::string& command : section.commands) {
      ChildResult r = run_warden(arguments(command, name));
      // 2 (a live holder kept) and 3 (problems found) are answers the runbook explains; 1 and
      // 64 mean the command itself is wrong.
      EXPECT_TRUE(r.exit_code == 0 || r.exit_code == kExitLockHeld ||
                  r.exit_code == kExitVerifyFailed)
          << command << " -> exit " << r.exit_code << "\n"
          << r.out << r.err;
      commands_run++;
    }
    drill->second.check(name, children);
    remove_block(name);
  }
  EXPECT_GE(commands_run, 14u);
}

}  // namespace
}  // namespace warden::block
