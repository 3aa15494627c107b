// The calls behind include/warden/posix_names.h.
#include "warden/posix_names.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "posix_internal.h"

namespace warden {

using internal::retry_eintr;
using internal::throw_errno;

bool rename_exchange(const std::string& a, const std::string& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) return true;
  int saved = errno;
  if (saved == ENOENT) return false;
  throw_errno("exchange " + a + " with", b, saved);
}

std::optional<UniqueFd> create_unnamed(const std::string& dir, mode_t mode) {
  static const bool proc_fd_mounted = ::access("/proc/self/fd", X_OK) == 0;
  if (!proc_fd_mounted) return std::nullopt;
  int fd = retry_eintr([&] { return ::open(dir.c_str(), O_WRONLY | O_TMPFILE | O_CLOEXEC, mode); });
  if (fd < 0) {
    int saved = errno;
    if (saved == EOPNOTSUPP || saved == EISDIR || saved == EINVAL) return std::nullopt;
    throw_errno("create an unnamed file in", dir, saved);
  }
  return UniqueFd(fd);
}

bool link_unnamed(int fd, const std::string& path) {
  char from[32];
  std::snprintf(from, sizeof from, "/proc/self/fd/%d", fd);
  if (::linkat(AT_FDCWD, from, AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) return true;
  int saved = errno;
  if (saved == EEXIST) return false;
  throw_errno("link an unnamed file (" + std::string(from) + ") to", path, saved);
}

void replace_symlink(const std::string& target, const std::string& path) {
  const std::string temp = temp_name_beside(path);
  if (::symlink(target.c_str(), temp.c_str()) != 0) throw_errno("create symlink", temp, errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temp.c_str());
    throw_errno("rename " + temp + " to", path, saved);
  }
}

std::optional<std::string> read_symlink(const std::string& path) {
  char buffer[256];
  ssize_t n = ::readlink(path.c_str(), buffer, sizeof buffer);
  if (n < 0) {
    int saved = errno;
    if (saved == ENOENT) return std::nullopt;
    throw_errno("read symlink", path, saved);
  }
  if (static_cast<size_t>(n) == sizeof buffer) throw_errno("read symlink", path, ENAMETOOLONG);
  return std::string(buffer, static_cast<size_t>(n));
}

std::optional<UniqueFd> open_read_nonblocking(const std::string& path) {
  int fd = retry_eintr(
      [&] { return ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); });
  if (fd < 0) {
    int saved = errno;
    if (saved == ENOENT) return std::nullopt;
    if (saved == ELOOP) {
      throw IoError("open " + path + ": is a symbolic link (refusing to follow it)", saved,
                    ErrorCode::kMalformed);
    }
    throw_errno("open", path, saved);
  }
  return UniqueFd(fd);
}

}  // namespace warden
