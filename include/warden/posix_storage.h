// POSIX calls the storage part needs beyond posix.h: file-system usage (statvfs) and the
// audited atomic write with failpoints named by the caller. Implemented in src/base/
// (posix_storage.cc) like everything else that makes a system call; kept in this small header
// so that posix.h, which other parts are extending, stays theirs to edit.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace warden {

// What statvfs(2) says about the file system holding a path, in bytes.
struct DiskUsage {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // available to an unprivileged writer (f_bavail)
  // Fraction used as df(1) shows it: (total - available) / total; 0 for an empty total.
  double used_fraction() const {
    return total_bytes == 0 ? 0.0
                            : static_cast<double>(total_bytes - available_bytes) /
                                  static_cast<double>(total_bytes);
  }
};
// statvfs(2) of `path` (which must exist). Throws IoError naming the path.
DiskUsage disk_usage(const std::string& path);

// atomic_write_file() (posix.h) with two more failpoints named after the caller's object, so
// a crash test can stop one particular publication: "<failpoint_prefix>.after_temp_write"
// (the complete temp file is durable, the old file still in place) and
// "<failpoint_prefix>.after_rename" (the new file is in place, its directory entry not yet
// fsynced). The generic "atomic_write.*" failpoints are hit as well. Same guarantees and
// errors as atomic_write_file.
void atomic_write_file_marked(const std::string& path, std::string_view contents,
                              std::string_view failpoint_prefix, mode_t mode = 0644);

}  // namespace warden
