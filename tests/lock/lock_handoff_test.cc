// Handoff to a herd of waiters: when a holder releases, every waiter on this host wakes, but
// only the one that takes the lock pays for a durable record (write + fsync + link). The
// others find the lock taken and go back to waiting without writing anything, so their
// fsyncs never queue on the disk ahead of the winner's. Watched with strace on the real
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
  int record_fsyncs = 0;  // fsyncs of a lock record (a ".crsp.lock.tmp." file)
  int links_won = 0;      // links onto crsp.lock that succeeded
  int links_lost = 0;     // links onto crsp.lock refused because the name was taken
  bool waited = false;    // blocked on the holder's OFD lock at least once
};

TraceCounts count(const std::string& trace) {
  static const std::regex record_fsync("^f(data)?sync\\(\\d+<[^>]*/\\.crsp\\.lock\\.tmp\\.");
  static const std::regex link("^link(at)?\\(.*/crsp\\.lock\"[^)]*\\) = (0|-1 EEXIST)");
  static const std::regex wait("^fcntl\\(\\d+<[^>]*/crsp\\.lock>, F_OFD_SETLKW");
  TraceCounts counts;
  std::istringstream in(trace);
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, record_fsync)) ++counts.record_fsyncs;
    if (std::regex_search(line, m, link)) ++(m[2] == "0" ? counts.links_won : counts.links_lost);
    if (std::regex_search(line, wait)) counts.waited = true;
  }
  return counts;
}

TEST(LockHandoffTest, OnlyTheWaiterThatTakesTheLockFsyncsARecord) {
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
  // Release only once every waiter sleeps on the holder's OFD lock (strace writes a blocked
  // call's first half at once), so that the release wakes the whole herd.
  ASSERT_TRUE(testing::wait_until([&] {
    for (const auto& trace : traces) {
      if (!count(testing::slurp(trace)).waited) return false;
    }
    return true;
  }));
  holder.release(held);

  // Each waiter takes the lock once, in turn: kWaiters handoffs.
  for (auto& waiter : waiters) {
    ChildResult result = waiter.wait();
    ASSERT_TRUE(result.exited && result.exit_code == 0) << result.err;
  }
  int total_fsyncs = 0;
  for (const auto& trace : traces) {
    const std::string text = testing::slurp(trace);
    TraceCounts counts = count(text);
    EXPECT_EQ(counts.links_won, 1) << text;
    EXPECT_EQ(counts.links_lost, 0) << "a waiter published a record that lost the race\n" << text;
    EXPECT_EQ(counts.record_fsyncs, 1)
        << "a waiter must fsync a record only for the acquisition it wins\n"
        << text;
    total_fsyncs += counts.record_fsyncs;
  }
  EXPECT_EQ(total_fsyncs, kWaiters) << "one record fsync per handoff";
  EXPECT_EQ(last_fencing_token(locks, "crsp"), held.token + kWaiters);
}

}  // namespace
}  // namespace warden
