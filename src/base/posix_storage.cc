// statvfs and the failpoint-marked atomic write (include/warden/posix_storage.h).
#include "warden/posix_storage.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include "posix_internal.h"
#include "warden/failpoint.h"
#include "warden/posix.h"

namespace warden {

DiskUsage disk_usage(const std::string& path) {
  struct statvfs info {};
  if (internal::retry_eintr([&] { return ::statvfs(path.c_str(), &info); }) != 0) {
    internal::throw_errno("statvfs", path, errno);
  }
  DiskUsage usage;
  usage.total_bytes = static_cast<uint64_t>(info.f_blocks) * info.f_frsize;
  usage.available_bytes = static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
  return usage;
}

void atomic_write_file_marked(const std::string& path, std::string_view contents,
                              std::string_view failpoint_prefix, mode_t mode) {
  const std::string prefix(failpoint_prefix);
  const std::string temp = temp_name_beside(path);
  auto fd = create_exclusive(temp, mode);
  if (!fd) internal::throw_errno("create", temp, EEXIST);
  try {
    write_all(fd->get(), contents, temp);
    fsync_fd(fd->get(), temp);
    fd->reset();
    WARDEN_FAILPOINT("atomic_write.after_temp_write");
    WARDEN_FAILPOINT(prefix + ".after_temp_write");
    rename_replace(temp, path);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  WARDEN_FAILPOINT("atomic_write.after_rename");
  WARDEN_FAILPOINT(prefix + ".after_rename");
  // The rename is only durable once the directory entry is (see atomic_write_file).
  fsync_directory(parent_directory(path));
}

}  // namespace warden
