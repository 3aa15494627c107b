// Disk watermarks (seed 001: 80% warning, 90% critical, 95% blocked; 2x the expected write).
#include <cstdio>

#include "warden/error.h"
#include "warden/events.h"
#include "warden/storage.h"

namespace warden {

const char* disk_level_name(DiskLevel level) {
  switch (level) {
    case DiskLevel::kOk:
      return "ok";
    case DiskLevel::kWarning:
      return "warning";
    case DiskLevel::kCritical:
      return "critical";
    case DiskLevel::kBlocked:
      return "blocked";
  }
  return "unknown";
}

namespace {
std::string percent(double fraction) {
  char text[16];
  std::snprintf(text, sizeof text, "%.1f%%", fraction * 100);
  return text;
}
std::string mebibytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}
}  // namespace

DiskCheck DiskMonitor::check(const std::string& path, uint64_t expected_write_bytes) const {
  DiskCheck result;
  result.usage = probe_(path);
  result.required_bytes = 2 * expected_write_bytes;
  result.enough_space = result.usage.available_bytes >= result.required_bytes;
  const double used = result.usage.used_fraction();
  if (used >= marks_.blocked) {
    result.level = DiskLevel::kBlocked;
  } else if (used >= marks_.critical) {
    result.level = DiskLevel::kCritical;
  } else if (used >= marks_.warning) {
    result.level = DiskLevel::kWarning;
  }
  if (result.level != DiskLevel::kOk) {
    const EventLevel level = result.level == DiskLevel::kWarning    ? EventLevel::kWarning
                             : result.level == DiskLevel::kCritical ? EventLevel::kError
                                                                    : EventLevel::kCritical;
    emit_event(level, std::string("sync.disk.") + disk_level_name(result.level),
               "disk holding " + path + " is " + percent(used) + " full",
               {{"path", path},
                {"used_fraction", used},
                {"available_bytes", result.usage.available_bytes},
                {"total_bytes", result.usage.total_bytes}});
  }
  return result;
}

DiskCheck DiskMonitor::require(const std::string& path, uint64_t expected_write_bytes) const {
  DiskCheck result = check(path, expected_write_bytes);
  if (result.level == DiskLevel::kBlocked) {
    throw Error(ErrorCode::kDiskFull,
                "write under " + path + ": the disk is " + percent(result.usage.used_fraction()) +
                    " full (blocked at " + percent(marks_.blocked) +
                    "); free space (see docs/runbooks/data-storage.md, e.g. "
                    "'warden sync status' for what each dataset takes) and rerun: the sync "
                    "resumes where it stopped");
  }
  if (!result.enough_space) {
    throw Error(ErrorCode::kDiskFull,
                "write under " + path + ": " + mebibytes(result.usage.available_bytes) +
                    " free, but the next partition needs 2x its expected size (" +
                    mebibytes(result.required_bytes) +
                    "); free space and rerun: the sync resumes where it stopped");
  }
  return result;
}

}  // namespace warden
