// Files and directories: the POSIX calls behind include/warden/posix.h.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "posix_internal.h"
#include "warden/failpoint.h"
#include "warden/posix.h"

namespace warden {
namespace internal {

void throw_errno(const std::string& operation, const std::string& path, int saved_errno) {
  std::string message = operation + " " + path + ": " + errno_text(saved_errno);
  ErrorCode code = ErrorCode::kIo;
  if (saved_errno == ENOSPC || saved_errno == EDQUOT) {
    code = ErrorCode::kDiskFull;
    message += " (free space, then rerun; nothing half-written was published)";
  } else if (saved_errno == ENOENT) {
    code = ErrorCode::kNotFound;
  }
  throw IoError(message, saved_errno, code);
}

}  // namespace internal

using internal::retry_eintr;
using internal::throw_errno;

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);  // close() is not retried on EINTR: the fd is gone on Linux
  fd_ = fd;
}

namespace {

int open_flags_read(bool no_follow) { return O_RDONLY | O_CLOEXEC | (no_follow ? O_NOFOLLOW : 0); }

}  // namespace

std::optional<UniqueFd> try_open_read(const std::string& path, bool no_follow) {
  int fd = retry_eintr([&] { return ::open(path.c_str(), open_flags_read(no_follow)); });
  if (fd < 0) {
    int saved = errno;
    if (saved == ENOENT) return std::nullopt;
    if (saved == ELOOP && no_follow) {
      throw IoError("open " + path + ": is a symbolic link (refusing to follow it)", saved,
                    ErrorCode::kMalformed);
    }
    throw_errno("open", path, saved);
  }
  return UniqueFd(fd);
}

UniqueFd open_read(const std::string& path, bool no_follow) {
  auto fd = try_open_read(path, no_follow);
  if (!fd) throw_errno("open", path, ENOENT);
  return std::move(*fd);
}

UniqueFd open_read_write(const std::string& path, mode_t mode) {
  int fd = retry_eintr([&] { return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode); });
  if (fd < 0) throw_errno("open", path, errno);
  return UniqueFd(fd);
}

std::optional<UniqueFd> create_exclusive(const std::string& path, mode_t mode) {
  int fd = retry_eintr(
      [&] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode); });
  if (fd < 0) {
    int saved = errno;
    if (saved == EEXIST) return std::nullopt;
    throw_errno("create", path, saved);
  }
  return UniqueFd(fd);
}

UniqueFd open_directory(const std::string& path) {
  int fd = retry_eintr([&] { return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd < 0) throw_errno("open directory", path, errno);
  return UniqueFd(fd);
}

void write_all(int fd, std::string_view data, const std::string& path_for_errors) {
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write", path_for_errors, errno);
    }
    written += static_cast<size_t>(n);
  }
}

std::string read_all(int fd, const std::string& path_for_errors, size_t max_bytes) {
  std::string out;
  char buffer[65536];
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read", path_for_errors, errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      throw IoError(
          "read " + path_for_errors + ": larger than " + std::to_string(max_bytes) + " bytes",
          EFBIG, ErrorCode::kMalformed);
    }
    out.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

std::string read_file(const std::string& path, size_t max_bytes) {
  UniqueFd fd = open_read(path);
  return read_all(fd.get(), path, max_bytes);
}

void fsync_fd(int fd, const std::string& path_for_errors) {
  if (retry_eintr([&] { return ::fsync(fd); }) != 0) throw_errno("fsync", path_for_errors, errno);
}

void fsync_directory(const std::string& dir) {
  UniqueFd fd = open_directory(dir);
  fsync_fd(fd.get(), dir);
}

void make_directories(const std::string& dir) {
  if (dir.empty()) return;
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      throw_errno("create directory", partial, errno);
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) throw_errno("stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) throw_errno("create directory", dir, ENOTDIR);
}

bool link_noreplace(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return true;
  int saved = errno;
  if (saved == EEXIST) return false;
  throw_errno("link " + from + " to", to, saved);
}

bool rename_noreplace(const std::string& from, const std::string& to, bool* source_missing) {
  if (source_missing) *source_missing = false;
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  int saved = errno;
  if (saved == EEXIST) return false;
  if (saved == ENOENT && source_missing) {
    *source_missing = true;
    return false;
  }
  throw_errno("rename " + from + " to", to, saved);
}

void rename_replace(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) throw_errno("rename " + from + " to", to, errno);
}

bool try_rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) == 0) return true;
  int saved = errno;
  if (saved == ENOENT) return false;
  throw_errno("rename " + from + " to", to, saved);
}

bool remove_file(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return true;
  int saved = errno;
  if (saved == ENOENT) return false;
  throw_errno("remove", path, saved);
}

namespace {

FileInfo to_file_info(const struct stat& st) {
  FileInfo info;
  if (S_ISREG(st.st_mode))
    info.type = FileInfo::Type::kRegular;
  else if (S_ISDIR(st.st_mode))
    info.type = FileInfo::Type::kDirectory;
  else if (S_ISLNK(st.st_mode))
    info.type = FileInfo::Type::kSymlink;
  else if (S_ISFIFO(st.st_mode))
    info.type = FileInfo::Type::kFifo;
  else if (S_ISSOCK(st.st_mode))
    info.type = FileInfo::Type::kSocket;
  info.device = st.st_dev;
  info.inode = st.st_ino;
  info.size = static_cast<uint64_t>(st.st_size);
  info.mode = st.st_mode & 07777;
  info.owner = st.st_uid;
  info.modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  return info;
}

}  // namespace

std::optional<FileInfo> stat_path(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    int saved = errno;
    if (saved == ENOENT) return std::nullopt;
    throw_errno("stat", path, saved);
  }
  return to_file_info(st);
}

FileInfo stat_fd(int fd, const std::string& path_for_errors) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_errno("stat", path_for_errors, errno);
  return to_file_info(st);
}

std::string parent_directory(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string temp_name_beside(const std::string& path) {
  std::string dir = parent_directory(path);
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, ".tmp.%d.%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(random_u64()));
  return dir + "/." + base + suffix;
}

void atomic_write_file(const std::string& path, std::string_view contents, mode_t mode) {
  const std::string temp = temp_name_beside(path);
  auto fd = create_exclusive(temp, mode);
  if (!fd) throw_errno("create", temp, EEXIST);
  try {
    write_all(fd->get(), contents, temp);
    fsync_fd(fd->get(), temp);
    fd->reset();
    WARDEN_FAILPOINT("atomic_write.after_temp_write");
    rename_replace(temp, path);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  WARDEN_FAILPOINT("atomic_write.after_rename");
  // The rename is only durable once the directory entry is: without this fsync a crash can
  // bring back the old file (or no file) even though we returned success.
  fsync_directory(parent_directory(path));
}

}  // namespace warden
