// Handoff to a queue of waiters: only the head of the wait queue sleeps on the holder's OFD
// lock; the others sleep on the queue file's exclusive OFD lock, so a release wakes one process
// and only it links a record. And the one that takes it fsyncs no record between its wake-up
// and its link: it wrote and fsynced that record while it waited (FileLock::State::prepare),
// so the handoff costs one fsync (the directory's), not two. Watched with strace on the real
// binary: each waiter is a `warden lock run` that blocks on the held lock first.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "lock_test_support.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::Child;
using testing::ChildResult;
using testing::TempDir;
using testing::warden_binary;

struct TraceCounts {
  int record_fsyncs = 0;  // fsyncs of a lock record (unnamed, or a ".crsp.lock.tmp." file)
  int record_fsyncs_after_wake = -1;  // between the last look at the holder and the winning link
  int links_won = 0;                  // links onto crsp.lock that succeeded
  int links_lost = 0;                 // links onto crsp.lock refused because the name was taken
  bool waited = false;                // blocked on the holder's OFD lock at least once
  bool queued = false;                // blocked on the wait queue's OFD lock at least once
};

TraceCounts count(const std::string& trace) {
  // strace -y names an O_TMPFILE file "<dir>/#<inode>>(deleted)" until it is linked.
  static const std::regex record_fsync(
      "^f(data)?sync\\(\\d+<[^>]*/(\\.crsp\\.lock\\.tmp\\.[^>]*>|#\\d+>\\(deleted\\))");
  static const std::regex link("^link(at)?\\(.*/crsp\\.lock\"[^)]*\\) = (0|-1 EEXIST)");
  static const std::regex wait("^fcntl\\(\\d+<[^>]*/crsp\\.lock>, F_OFD_SETLKW");
  static const std::regex queue("^fcntl\\(\\d+<[^>]*/\\.crsp\\.waiters>, F_OFD_SETLKW");
  // A look at the holder: the probe before blocking, or the blocking wait itself.
  static const std::regex look(
      "^fcntl\\(\\d+<[^>]*/crsp\\.lock>, F_OFD_SETLKW?, \\{l_type=F_RDLCK");
  TraceCounts counts;
  std::istringstream in(trace);
  std::smatch m;
  int since_wake = 0;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, record_fsync)) {
      ++counts.record_fsyncs;
      ++since_wake;
    }
    if (std::regex_search(line, m, link)) {
      if (m[2] == "0") {
        ++counts.links_won;
        counts.record_fsyncs_after_wake = since_wake;
      } else {
        ++counts.links_lost;
      }
    }
    if (std::regex_search(line, wait)) counts.waited = true;
    if (std::regex_search(line, queue)) counts.queued = true;
    if (std::regex_search(line, look)) since_wake = 0;
  }
  return counts;
}

TEST(LockHandoffTest, OnlyTheHeadOfTheQueueWakesAndItFsyncsNoRecordAfterWakingUp) {
  constexpr int kWaiters = 4;
  TempDir dir;
  const std::string locks = dir / "locks";
  FileLock holder(locks, "crsp");
  LockToken held = holder.acquire(1s);

  std::vector<Child> waiters;
  std::vector<std::string> traces;
  for (int i = 0; i < kWaiters; ++i) {
    traces.push_back(dir / ("trace." + std::to_string(i)));
    waiters.push_back(
        Child::spawn({"/usr/bin/strace", "-y", "-o", traces.back(), "-e",
                      "trace=fsync,fdatasync,link,linkat,fcntl", warden_binary(), "lock", "run",
                      "--dataset", "crsp", "--lock-dir", locks, "--wait", "60", "--", "true"},
                     // LeakSanitizer cannot run under ptrace (ASan builds).
                     {{"ASAN_OPTIONS", "detect_leaks=0"}}));
  }
  // Release only once every waiter sleeps (strace writes a blocked call's first half at once):
  // one on the holder's OFD lock, every other one on the queue's.
  int on_holder = 0;
  int in_queue = 0;
  ASSERT_TRUE(testing::wait_until([&] {
    on_holder = in_queue = 0;
    for (const auto& trace : traces) {
      TraceCounts counts = count(testing::slurp(trace));
      on_holder += counts.waited ? 1 : 0;
      in_queue += counts.queued ? 1 : 0;
    }
    return on_holder + in_queue == kWaiters;
  })) << on_holder
      << " waiters slept on the holder, " << in_queue << " in the queue";
  EXPECT_EQ(on_holder, 1) << "only the head of the queue should sleep on the holder";
  EXPECT_EQ(in_queue, kWaiters - 1);
  holder.release(held);

  // Each waiter takes the lock once, in turn: kWaiters handoffs.
  const std::string first_acquired =
      "acquired lock crsp (token " + std::to_string(held.token + 1) + ")";
  int first_winners = 0;
  for (size_t i = 0; i < waiters.size(); ++i) {
    ChildResult result = waiters[i].wait();
    ASSERT_TRUE(result.exited && result.exit_code == 0) << result.err;
    const std::string text = testing::slurp(traces[i]);
    TraceCounts counts = count(text);
    EXPECT_EQ(counts.links_won, 1) << text;
    EXPECT_EQ(counts.links_lost, 0) << "a waiter published a record that lost the race\n" << text;
    EXPECT_GE(counts.record_fsyncs, 1) << text;
    // The release from a holder that waited for the herd to sleep: its winner must have had
    // its record ready. (Later handoffs are between `lock run ... true` jobs that hold the
    // lock for a few milliseconds, shorter than a waiter's own record fsync may take.)
    if (result.err.find(first_acquired) != std::string::npos) {
      ++first_winners;
      EXPECT_EQ(counts.record_fsyncs_after_wake, 0)
          << "the record the first waiter published should have been written while it waited\n"
          << text;
    }
  }
  EXPECT_EQ(first_winners, 1);
  EXPECT_EQ(last_fencing_token(locks, "crsp"), held.token + kWaiters);
}

}  // namespace
}  // namespace warden
