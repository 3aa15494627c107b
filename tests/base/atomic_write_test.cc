#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "helpers/test_support.h"
#include "warden/error.h"
#include "warden/failpoint.h"
#include "warden/posix.h"
#include "warden/posix_names.h"

namespace warden {
namespace {

using testing::Child;
using testing::TempDir;

int count_entries(const std::string& dir) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++n;
  }
  return n;
}

TEST(AtomicWrite, PublishesCompleteContents) {
  TempDir dir;
  atomic_write_file(dir / "a.json", "{\"x\":1}");
  EXPECT_EQ(testing::slurp(dir / "a.json"), "{\"x\":1}");
  atomic_write_file(dir / "a.json", "second");
  EXPECT_EQ(testing::slurp(dir / "a.json"), "second");
  EXPECT_EQ(count_entries(dir.path()), 1) << "no temp file may be left behind";
}

TEST(AtomicWrite, InjectedErrorLeavesOldFileAndNoTemp) {
  TempDir dir;
  atomic_write_file(dir / "a.json", "old");
  failpoint_arm("atomic_write.after_temp_write", "error");
  EXPECT_THROW(atomic_write_file(dir / "a.json", "new"), Error);
  failpoints_clear();
  EXPECT_EQ(testing::slurp(dir / "a.json"), "old");
  EXPECT_EQ(count_entries(dir.path()), 1);
}

TEST(AtomicWrite, CrashBeforeRenameNeverShowsNewContents) {
  TempDir dir;
  atomic_write_file(dir / "a.json", "old");
  Child child = Child::fork_function([&] {
    failpoint_arm("atomic_write.after_temp_write", "crash");
    atomic_write_file(dir / "a.json", "new");
    return 0;
  });
  auto result = child.wait();
  EXPECT_FALSE(result.exited);
  EXPECT_EQ(result.signal, SIGKILL);
  EXPECT_EQ(testing::slurp(dir / "a.json"), "old");
}

TEST(AtomicWrite, MissingDirectoryNamesThePath) {
  TempDir dir;
  try {
    atomic_write_file(dir / "no/such/dir/a.json", "x");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(e.errno_value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("no/such/dir"), std::string::npos) << e.what();
  }
}

TEST(Posix, LinkNoReplaceHasOneWinner) {
  TempDir dir;
  testing::spit(dir / "a", "a");
  testing::spit(dir / "b", "b");
  EXPECT_TRUE(link_noreplace(dir / "a", dir / "target"));
  EXPECT_FALSE(link_noreplace(dir / "b", dir / "target"));
  EXPECT_EQ(testing::slurp(dir / "target"), "a");
}

// The test directories are on ext4 or tmpfs, which both have O_TMPFILE: an unnamed file
// is invisible in its directory until linked, then appears whole, and never replaces.
TEST(Posix, UnnamedFileAppearsWholeAtItsNameAndNeverReplaces) {
  TempDir dir;
  auto fd = create_unnamed(dir.path());
  ASSERT_TRUE(fd.has_value()) << "O_TMPFILE is missing on the file system under " << dir.path();
  write_all(fd->get(), "record", dir.path());
  EXPECT_EQ(count_entries(dir.path()), 0);
  testing::spit(dir / "taken", "theirs");
  EXPECT_FALSE(link_unnamed(fd->get(), dir / "taken"));
  EXPECT_EQ(testing::slurp(dir / "taken"), "theirs");
  EXPECT_TRUE(link_unnamed(fd->get(), dir / "mine"));
  EXPECT_EQ(testing::slurp(dir / "mine"), "record");
  EXPECT_THROW(link_unnamed(fd->get(), dir / "missing/x"), IoError);
  EXPECT_THROW(create_unnamed(dir / "missing"), IoError);
}

TEST(Posix, OfdLockConflictsWithinOneProcess) {
  TempDir dir;
  UniqueFd first = open_read_write(dir / "f");
  UniqueFd second = open_read_write(dir / "f");
  EXPECT_TRUE(ofd_try_lock(first.get(), true, "f"));
  EXPECT_FALSE(ofd_try_lock(second.get(), true, "f"))
      << "OFD locks must conflict between two opens in one process";
  EXPECT_TRUE(ofd_is_locked_by_other(second.get(), "f"));
  EXPECT_FALSE(ofd_lock_wait(second.get(), true, std::chrono::milliseconds(30), "f"));
  first.reset();
  EXPECT_TRUE(ofd_try_lock(second.get(), true, "f"));
}

TEST(Posix, OfdLockWaitWakesWhenHolderDies) {
  TempDir dir;
  UniqueFd fd = open_read_write(dir / "f");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  Child holder = Child::fork_function([&] {
    UniqueFd own = open_read_write(dir / "f");
    ofd_try_lock(own.get(), true, "f");
    char c = 'x';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    return 0;
  });
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_FALSE(ofd_try_lock(fd.get(), true, "f"));
  holder.kill(SIGKILL);
  EXPECT_TRUE(ofd_lock_wait(fd.get(), true, std::chrono::seconds(10), "f"));
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(Posix, IdentityDetectsPidReuse) {
  ProcessIdentity me = self_identity();
  EXPECT_EQ(check_liveness(me), Liveness::kAlive);
  ProcessIdentity reused = me;
  reused.start_time += 1;
  EXPECT_EQ(check_liveness(reused), Liveness::kPidReused);
  ProcessIdentity remote = me;
  remote.hostname = "elsewhere.example";
  EXPECT_EQ(check_liveness(remote), Liveness::kOtherHost);
}

TEST(Posix, UtcRoundTrip) {
  auto now =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  auto text = format_utc(now);
  auto parsed = parse_utc(text);
  ASSERT_TRUE(parsed.has_value()) << text;
  EXPECT_EQ(*parsed, now);
  EXPECT_FALSE(parse_utc("2026-01-15 10:30:00").has_value());
  EXPECT_FALSE(parse_utc("2026-13-15T10:30:00.000Z").has_value());
}

}  // namespace
}  // namespace warden
