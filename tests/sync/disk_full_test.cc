// Seed 001 "on ENOSPC quarantine the temp file and stop cleanly", on a real full disk: the
// data directory is a small tmpfs, the watermark probe is told the disk is empty (so the
// sync really runs into ENOSPC instead of stopping at the 95% watermark), and the test
// checks what a reader and the next sync see.
#include <sys/mount.h>

#include <cstdlib>

#include "sync_fixture.h"
#include "warden/events.h"
#include "warden/storage.h"

namespace warden::testing {
namespace {

bool has_event(const std::vector<nlohmann::json>& events, const std::string& name) {
  for (const auto& e : events) {
    if (e["event"] == name) return true;
  }
  return false;
}

class RealDiskFullTest : public SyncFixture {
 protected:
  void SetUp() override {
    // Runs as root here and in CI (DESIGN.md: sessions and CI run as root).
    ASSERT_EQ(::mount("tmpfs", disk.path().c_str(), "tmpfs", 0, "size=192k"), 0)
        << "mounting a small tmpfs at " << disk.path() << " failed (" << std::strerror(errno)
        << "): this test needs root to fill a real file system";
    mounted = true;
  }
  void TearDown() override {
    if (mounted) ::umount2(disk.path().c_str(), MNT_DETACH);
  }
  void grow_disk() {
    ASSERT_EQ(::mount("tmpfs", disk.path().c_str(), "tmpfs", MS_REMOUNT, "size=16m"), 0)
        << std::strerror(errno);
  }
  SyncOptions on_disk() const {
    SyncOptions o = options();
    o.data_dir = disk.path() + "/data";
    o.disk = DiskMonitor([](const std::string&) { return DiskUsage{1 << 30, 1 << 30}; });
    return o;
  }

  TempDir disk;
  bool mounted = false;
};

TEST_F(RealDiskFullTest, EnospcMidSyncStopsCleanlyPublishesNothingPartialAndResumesWithSpace) {
  const std::string crsp = disk.path() + "/data/wrds/crsp/daily";
  start_event_capture();
  try {
    manager(on_disk())->full_sync("crsp", 2000, 2024, token_for("crsp"));
    FAIL() << "25 years cannot fit in 192 KiB";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDiskFull) << e.what();
    const std::string message = e.what();
    EXPECT_NE(message.find("sync crsp year "), std::string::npos) << message;
    EXPECT_NE(message.find("Free space and rerun the same sync"), std::string::npos) << message;
    EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
  }
  auto events = stop_event_capture();
  EXPECT_TRUE(has_event(events, "sync.disk.blocked"));

  // Whatever the manifest names is complete and verified; nothing else is visible.
  DataLayout layout(disk.path() + "/data");
  auto manifest = load_manifest(layout, "crsp");
  size_t committed = manifest ? manifest->files.size() : 0;
  EXPECT_LT(committed, 25u);
  std::vector<std::string> visible;
  for (const auto& name : list_names(crsp)) {
    if (name.size() > 8 && name.substr(name.size() - 8) == ".parquet" && name[0] != '.') {
      visible.push_back(name);
    }
  }
  EXPECT_EQ(visible.size(), committed) << "only the committed years are visible";
  for (const auto& name : list_names(crsp)) {
    EXPECT_NE(name[0], '.') << "a temp file was left among the data: " << name;
  }
  if (committed > 0) {
    EXPECT_TRUE(manager(on_disk())->verify_integrity("crsp", token_for("crsp")).clean());
  }

  // With room again, the same command finishes the job: every row, once.
  grow_disk();
  SyncResult resumed = manager(on_disk())->full_sync("crsp", 2000, 2024, token_for("crsp", 2));
  EXPECT_EQ(resumed.years_written.size() + resumed.years_skipped.size(), 25u);
  EXPECT_TRUE(manager(on_disk())->verify_integrity("crsp", token_for("crsp", 2)).clean());
  EXPECT_EQ(rows_differing("SELECT * FROM crsp.dsf", crsp + "/*.parquet"), 0);
}

}  // namespace
}  // namespace warden::testing
