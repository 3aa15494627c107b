#include <gtest/gtest.h>

#include "helpers/test_support.h"
#include "warden/checksum.h"
#include "warden/events.h"

namespace warden {
namespace {

TEST(Checksum, Sha256KnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Checksum, StreamingFileMatchesOneShot) {
  testing::TempDir dir;
  std::string data(3 * 1024 * 1024 + 17, 'q');
  testing::spit(dir / "big", data);
  EXPECT_EQ(sha256_file(dir / "big"), sha256_hex(data));
}

TEST(Events, RecordHasStableFields) {
  start_event_capture();
  emit_event(EventLevel::kWarning, "sync.disk.warning", "disk 81% full", {{"percent", 81}});
  auto events = stop_event_capture();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["event"], "sync.disk.warning");
  EXPECT_EQ(events[0]["level"], "warning");
  EXPECT_EQ(events[0]["msg"], "disk 81% full");
  EXPECT_EQ(events[0]["percent"], 81);
  EXPECT_TRUE(events[0]["ts"].is_string());
}

}  // namespace
}  // namespace warden
