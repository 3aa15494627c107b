// POSIX shared memory and futexes: the system calls behind the DataBlock (include/warden/block.h).
//
// Like include/warden/posix.h, these are the only places warden calls shm_open, mmap and the
// futex syscall. Functions throw warden::IoError naming the segment unless their comment says
// otherwise; a segment that does not exist is IoError with code kNotFound.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace warden {

// One mapping of a named POSIX shared-memory segment ("/name", as shm_open takes it). Owns
// the mapping and unmaps it on destruction; the segment itself outlives every mapping until
// remove_shared_memory(). Move-only. The object is not thread-safe; the memory it maps is
// shared with other processes and must be accessed through atomics.
class SharedMemory {
 public:
  // Creates a new segment of `size` bytes (zero-filled) with permission bits `mode` and maps
  // it read-write. Returns nullopt when a segment of that name exists already (EEXIST). On
  // any failure after the name was created, the name is removed again.
  static std::optional<SharedMemory> create(const std::string& name, size_t size, mode_t mode);
  // Maps an existing segment whole (its current size). Throws IoError (kNotFound when absent).
  static SharedMemory open(const std::string& name, bool writable);

  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory();

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& name() const { return name_; }

 private:
  SharedMemory(std::string name, std::byte* data, size_t size)
      : name_(std::move(name)), data_(data), size_(size) {}
  std::string name_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// shm_unlink(2). Returns false when no segment has that name. Mappings stay valid.
bool remove_shared_memory(const std::string& name);
// Names ("/name") of the segments whose name starts with `prefix` (after the '/').
std::vector<std::string> list_shared_memory(const std::string& prefix);
// The file that backs a segment on Linux ("/dev/shm/name"), for stat and /proc scans.
std::string shared_memory_path(const std::string& name);
// Pids of processes that map the file at `path` (scans /proc/*/maps; unreadable skipped).
std::vector<pid_t> processes_mapping_file(const std::string& path);

// ---- Futexes on shared memory ---------------------------------------------------------
// Process-shared (not FUTEX_PRIVATE) waits on a 32-bit word, so a waiter in one process is
// woken by a store + futex_wake in another. A futex is a hint, not a lock: a dead process
// can leave nothing locked, and every waiter re-checks its condition after waking.

// Sleeps while *word == expected, for at most `timeout`. Returns false on timeout, true when
// woken or when the value had already changed (EAGAIN) or on a signal (EINTR): callers loop.
bool futex_wait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout);
// Wakes up to `count` waiters of word (INT32_MAX for all). Never throws.
void futex_wake(std::atomic<uint32_t>* word, int count);

}  // namespace warden
