// parse_utc: the one parser of every timestamp in lock files, manifests and checkpoints.
#include <gtest/gtest.h>

#include "warden/posix.h"

namespace warden {
namespace {

TEST(ParseUtc, RoundTripsFormatUtc) {
  auto now = std::chrono::system_clock::now();
  std::string text = format_utc(now);
  auto parsed = parse_utc(text);
  ASSERT_TRUE(parsed.has_value()) << text;
  EXPECT_EQ(format_utc(*parsed), text);
  EXPECT_TRUE(parse_utc("2024-02-29T23:59:59.999Z").has_value()) << "a leap day exists";
}

TEST(ParseUtc, YearsThatWouldOverflowTheClockAreRefused) {
  // Found by the lock-record fuzzer: 9999 overflowed 64-bit nanoseconds and read as 1816,
  // so a remote lease far in the future looked long expired.
  EXPECT_FALSE(parse_utc("9999-12-31T23:59:59.999Z").has_value());
  EXPECT_FALSE(parse_utc("1013-01-01T00:00:00.000Z").has_value());
  EXPECT_FALSE(parse_utc("1969-12-31T23:59:59.999Z").has_value());
}

TEST(ParseUtc, DaysTheMonthDoesNotHaveAreRefusedNotNormalised) {
  EXPECT_FALSE(parse_utc("2026-02-31T10:00:00.000Z").has_value());
  EXPECT_FALSE(parse_utc("2025-02-29T10:00:00.000Z").has_value());
  EXPECT_FALSE(parse_utc("2026-04-31T10:00:00.000Z").has_value());
  EXPECT_FALSE(parse_utc("2026-01-15T10:30:00Z").has_value()) << "milliseconds are required";
}

}  // namespace
}  // namespace warden
