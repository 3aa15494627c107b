// Seed 001's test_lock_contention.py, cases 12-14, plus the counter and recovery storms:
// real processes racing for one lock.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "lock_test_support.h"
#include "warden/events.h"
#include "warden/failpoint.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::Child;
using testing::ChildResult;
using testing::slurp;
using testing::spit;
using testing::TempDir;
using testing::wait_until;

// Each worker takes the lock `rounds` times; under the lock it claims an occupancy marker
// (O_EXCL: fails if another worker is inside), increments the counter file, and leaves.
// Exits 0, or 10 if it ever found the marker taken (two holders at once).
int count_under_lock(const std::string& dir, const std::string& go, int rounds) {
  while (!stat_path(go)) std::this_thread::sleep_for(std::chrono::microseconds(200));
  FileLock lock(dir, "counter");
  int overlaps = 0;
  for (int i = 0; i < rounds; ++i) {
    LockToken token = lock.acquire(120s);
    auto marker = create_exclusive(dir + "/inside", 0644);
    if (!marker) ++overlaps;
    const std::string counter = dir + "/count";
    const std::string text = slurp(counter);
    const long value = text.empty() ? 0 : std::stol(text);
    spit(counter, std::to_string(value + 1));
    if (marker) remove_file(dir + "/inside");
    lock.release(token);
  }
  return overlaps == 0 ? 0 : 10;
}

void run_counter(int processes, int rounds) {
  TempDir dir;
  const std::string go = dir / "go";
  std::vector<Child> workers;
  for (int p = 0; p < processes; ++p) {
    workers.push_back(
        Child::fork_function([&] { return count_under_lock(dir.path(), go, rounds); }));
  }
  spit(go, "");
  for (auto& worker : workers) {
    ChildResult result = worker.wait(280s);
    EXPECT_TRUE(result.exited);
    EXPECT_EQ(result.exit_code, 0) << "10 means two workers were inside at once";
  }
  EXPECT_EQ(slurp(dir / "count"), std::to_string(processes * rounds));
  EXPECT_EQ(last_fencing_token(dir.path(), "counter"), static_cast<uint64_t>(processes * rounds));
  EXPECT_EQ(inspect_file_lock(dir.path(), "counter").verdict, LockVerdict::kFree);
}

TEST(TestLockContention, Case12_ContentionBetweenTwoProcesses) { run_counter(2, 200); }

TEST(TestLockContention, EightProcessesCountToFourThousandWithoutOverlap) { run_counter(8, 500); }

// Every recoverer writes "won <token>" or "lost" to its own file, and appends its events.
int recover_once(const std::string& dir, const std::string& go, int id) {
  EventSinkOptions sinks;
  sinks.stderr_format = EventSinkOptions::StderrFormat::kNone;
  sinks.log_file = dir + "/events.jsonl";
  configure_events(sinks);
  while (!stat_path(go)) std::this_thread::sleep_for(std::chrono::microseconds(100));
  FileLock lock(dir, "crsp");
  auto token = lock.try_acquire();
  // Published whole (the parent reads it as soon as the name exists).
  const std::string result = dir + "/result." + std::to_string(id);
  spit(result + ".tmp", token ? "won " + std::to_string(token->token) : std::string("lost"));
  rename_replace(result + ".tmp", result);
  if (token) {
    for (;;) ::pause();  // hold it: a later try by a slower recoverer must see it held
  }
  return 0;
}

int count_events(const std::string& path, const std::string& event) {
  int n = 0;
  std::string text = slurp(path);
  size_t at = 0;
  while ((at = text.find("\"event\":\"" + event + "\"", at)) != std::string::npos) {
    ++n;
    ++at;
  }
  return n;
}

TEST(TestLockContention, Case13_ConcurrentStaleRecoveryHasExactlyOneWinner) {
  for (int trial = 0; trial < 5; ++trial) {
    TempDir dir;
    plant(dir.path(), forged_record("crsp", dead_pid(), 70));
    const std::string go = dir / "go";
    std::vector<Child> recoverers;
    for (int id = 0; id < 8; ++id) {
      recoverers.push_back(
          Child::fork_function([&, id] { return recover_once(dir.path(), go, id); }));
    }
    spit(go, "");
    int done = 0;
    ASSERT_TRUE(wait_until(
        [&] {
          done = 0;
          for (int id = 0; id < 8; ++id)
            done += stat_path(dir / ("result." + std::to_string(id))) ? 1 : 0;
          return done == 8;
        },
        60s));
    int winners = 0;
    for (int id = 0; id < 8; ++id) {
      std::string result = slurp(dir / ("result." + std::to_string(id)));
      if (result.rfind("won ", 0) == 0) {
        ++winners;
        EXPECT_EQ(result, "won 71");
      } else {
        EXPECT_EQ(result, "lost");
      }
    }
    EXPECT_EQ(winners, 1) << "trial " << trial;
    EXPECT_EQ(count_events(dir / "events.jsonl", "lock.recovered"), 1) << "trial " << trial;
    EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kHeld);
  }
}

TEST(TestLockContention, Case14_SplitBrainRecoveryKeepsOneWriter) {
  // Recoverer A moves the stale lock aside and stalls before checking what it moved; B takes
  // the free name meanwhile. When A resumes it must neither remove B's lock nor hold the lock
  // alongside B: it finds B's live lock and waits for it like anyone else.
  // A is held at that moment until B holds the lock (a sleep there raced B on a slow machine).
  TempDir dir;
  plant(dir.path(), forged_record("crsp", dead_pid(), 20));
  const std::string a_done = dir / "a.done";
  const std::string b_holds = dir / "b.holds";
  Child a = Child::fork_function([&] {
    ::setenv("WARDEN_FAILPOINTS", ("lock.recover.after_rename=wait:" + b_holds).c_str(), 1);
    failpoints_reload();
    FileLock lock(dir.path(), "crsp");
    auto token = lock.try_acquire();
    spit(a_done, token ? "won " + std::to_string(token->token) : std::string("lost"));
    return 0;
  });
  // Wait until A has moved the stale record aside (the name is free), then take it.
  ASSERT_TRUE(wait_until([&] { return !stat_path(lock_path(dir.path(), "crsp")); }, 20s));
  FileLock b(dir.path(), "crsp");
  auto b_token = b.try_acquire();
  spit(b_holds, "");
  ASSERT_TRUE(b_token.has_value());
  EXPECT_GT(b_token->token, 20u);
  ChildResult a_result = a.wait(30s);
  EXPECT_EQ(a_result.exit_code, 0);
  EXPECT_EQ(slurp(a_done), "lost");
  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kHeld);
  EXPECT_EQ(status.record->token, b_token->token);
  EXPECT_EQ(status.record->pid, ::getpid());
  b.release(*b_token);
  // A's stale record is gone and the next token is above B's.
  FileLock c(dir.path(), "crsp");
  auto c_token = c.try_acquire();
  ASSERT_TRUE(c_token.has_value());
  EXPECT_GT(c_token->token, b_token->token);
}

}  // namespace
}  // namespace warden
