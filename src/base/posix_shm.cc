// Shared memory and futexes: the POSIX calls behind include/warden/shm.h.
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "posix_internal.h"
#include "warden/posix.h"
#include "warden/shm.h"

namespace warden {

using internal::retry_eintr;
using internal::throw_errno;

namespace {

void check_name(const std::string& name) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos) {
    throw InvalidArgumentError("shared memory name '" + name +
                               "': must be '/' followed by a name without '/'");
  }
}

std::byte* map_fd(int fd, size_t size, bool writable, const std::string& name) {
  int protection = PROT_READ | (writable ? PROT_WRITE : 0);
  void* address = ::mmap(nullptr, size, protection, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED) throw_errno("mmap", name, errno);
  return static_cast<std::byte*>(address);
}

}  // namespace

std::optional<SharedMemory> SharedMemory::create(const std::string& name, size_t size,
                                                 mode_t mode) {
  check_name(name);
  int raw = retry_eintr(
      [&] { return ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode); });
  if (raw < 0) {
    if (errno == EEXIST) return std::nullopt;
    throw_errno("shm_open (create)", name, errno);
  }
  UniqueFd fd(raw);
  try {
    // shm_open's mode is filtered by the umask; fchmod makes the requested mode exact.
    if (::fchmod(fd.get(), mode) != 0) throw_errno("fchmod", name, errno);
    if (retry_eintr([&] { return ::ftruncate(fd.get(), static_cast<off_t>(size)); }) != 0) {
      throw_errno("ftruncate", name, errno);
    }
    std::byte* data = map_fd(fd.get(), size, true, name);
    return SharedMemory(name, data, size);
  } catch (...) {
    ::shm_unlink(name.c_str());
    throw;
  }
}

SharedMemory SharedMemory::open(const std::string& name, bool writable) {
  check_name(name);
  int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
  int raw = retry_eintr([&] { return ::shm_open(name.c_str(), flags, 0); });
  if (raw < 0) throw_errno("shm_open", name, errno);
  UniqueFd fd(raw);
  FileInfo info = stat_fd(fd.get(), name);
  if (info.size == 0) {
    throw IoError("map " + name + ": segment is empty (its creator died before sizing it)", 0,
                  ErrorCode::kMalformed);
  }
  std::byte* data = map_fd(fd.get(), info.size, writable, name);
  return SharedMemory(name, data, info.size);
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, size_);
    name_ = std::move(other.name_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  if (data_) ::munmap(data_, size_);
}

bool remove_shared_memory(const std::string& name) {
  check_name(name);
  if (::shm_unlink(name.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw_errno("shm_unlink", name, errno);
}

std::string shared_memory_path(const std::string& name) { return "/dev/shm" + name; }

std::vector<std::string> list_shared_memory(const std::string& prefix) {
  std::vector<std::string> names;
  DIR* dir = ::opendir("/dev/shm");
  if (!dir) throw_errno("opendir", "/dev/shm", errno);
  while (struct dirent* entry = ::readdir(dir)) {
    std::string file = entry->d_name;
    if (file.rfind(prefix, 0) == 0 && file != "." && file != "..") names.push_back("/" + file);
  }
  ::closedir(dir);
  return names;
}

std::vector<pid_t> processes_mapping_file(const std::string& path) {
  std::vector<pid_t> pids;
  auto target = stat_path(path);
  if (!target) return pids;
  // A mapping outlives the fd it came from, so /proc/<pid>/fd would miss most users; the
  // maps file lists "dev major:minor inode path" for every mapped file.
  DIR* proc = ::opendir("/proc");
  if (!proc) return pids;
  std::string inode_text = " " + std::to_string(target->inode) + " ";
  while (struct dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string maps;
    try {
      auto fd = try_open_read("/proc/" + std::string(entry->d_name) + "/maps");
      if (!fd) continue;
      maps = read_all(fd->get(), "maps", 64u << 20);
    } catch (const Error&) {
      continue;
    }
    size_t pos = 0;
    while ((pos = maps.find(path, pos)) != std::string::npos) {
      size_t line_start = maps.rfind('\n', pos);
      line_start = line_start == std::string::npos ? 0 : line_start + 1;
      std::string line = maps.substr(line_start, pos - line_start);
      size_t line_end = maps.find('\n', pos);
      bool exact = (line_end == std::string::npos ? maps.size() : line_end) == pos + path.size();
      if (exact && line.find(inode_text) != std::string::npos) {
        pids.push_back(static_cast<pid_t>(pid));
        break;
      }
      pos += path.size();
    }
  }
  ::closedir(proc);
  return pids;
}

bool futex_wait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return false;
  struct timespec relative;
  relative.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
  relative.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
  // std::atomic<uint32_t> is lock-free with the layout of a uint32_t (static_assert in the
  // DataBlock layout), so the kernel may compare its address.
  long rc = ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &relative,
                      nullptr, 0);
  if (rc == 0) return true;
  if (errno == ETIMEDOUT) return false;
  return true;  // EAGAIN (value changed) or EINTR: the caller re-checks its condition
}

void futex_wake(std::atomic<uint32_t>* word, int count) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
}

}  // namespace warden
