// The one POSIX layer. Every system call warden makes on files, directories, locks and
// processes goes through these functions (src/base/), so that:
//   - every fd is opened O_CLOEXEC and owned by a UniqueFd;
//   - EINTR is retried in one place;
//   - errno is saved before any cleanup and turned into an IoError whose message names
//     the operation and the file ("open /data/locks/crsp.lock: Permission denied").
// Functions that throw throw warden::IoError (code kIo, or kDiskFull for ENOSPC/EDQUOT)
// unless their comment says otherwise. None of them is a cancellation point we rely on.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace warden {

// Owns one file descriptor; closes it on destruction. Move-only. Not thread-safe.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Gives up ownership without closing.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the current fd (errors from close are ignored: the fd is gone either way).
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// ---- Files ---------------------------------------------------------------------------

// Opens an existing file read-only. Refuses to follow a symlink in the last component when
// no_follow is true (ELOOP becomes an IoError naming the path as a symlink).
UniqueFd open_read(const std::string& path, bool no_follow = false);
// Like open_read, but returns nullopt when the file does not exist (ENOENT).
std::optional<UniqueFd> try_open_read(const std::string& path, bool no_follow = false);
// Opens for reading and writing, creating with `mode` if absent (not exclusive).
UniqueFd open_read_write(const std::string& path, mode_t mode = 0644);
// Creates a new file exclusively (O_CREAT|O_EXCL|O_WRONLY). Returns nullopt when the
// name exists (EEXIST); throws on any other failure.
std::optional<UniqueFd> create_exclusive(const std::string& path, mode_t mode = 0644);
// Opens a directory (O_DIRECTORY|O_RDONLY) for fsync or *at() calls.
UniqueFd open_directory(const std::string& path);

// Writes all of data at the fd's current offset, retrying short writes and EINTR.
void write_all(int fd, std::string_view data, const std::string& path_for_errors);
// Reads the whole file from offset 0; throws MalformedLockFileError-free IoError if it is
// larger than max_bytes (so a 10 MB garbage file cannot make us allocate without bound).
std::string read_all(int fd, const std::string& path_for_errors, size_t max_bytes = 1 << 20);
// Reads a whole file by path (see read_all). Throws IoError (ENOENT included).
std::string read_file(const std::string& path, size_t max_bytes = 64u << 20);
// fsync(2) / fdatasync(2) with the path named on failure.
void fsync_fd(int fd, const std::string& path_for_errors);
// Opens the directory and fsyncs it, so a rename/link/unlink inside it is durable.
void fsync_directory(const std::string& dir);
// Creates the directory and its parents (mode 0755); succeeds if it exists already.
void make_directories(const std::string& dir);

// Hard-links from -> to. Returns false when `to` exists (EEXIST); throws otherwise.
bool link_noreplace(const std::string& from, const std::string& to);
// rename(2) that never replaces: renameat2(RENAME_NOREPLACE). Returns false on EEXIST.
// Returns false with *source_missing=true when `from` no longer exists (ENOENT).
bool rename_noreplace(const std::string& from, const std::string& to,
                      bool* source_missing = nullptr);
// rename(2), replacing `to` atomically.
void rename_replace(const std::string& from, const std::string& to);
// rename(2) that reports a vanished source as false (someone else renamed it first).
bool try_rename(const std::string& from, const std::string& to);
// unlink(2). Returns false when the name does not exist.
bool remove_file(const std::string& path);

// What a stat says, for the questions warden asks.
struct FileInfo {
  enum class Type { kRegular, kDirectory, kSymlink, kFifo, kSocket, kOther };
  Type type = Type::kOther;
  dev_t device = 0;
  ino_t inode = 0;
  uint64_t size = 0;
  mode_t mode = 0;  // permission bits only
  uid_t owner = 0;
  std::chrono::system_clock::time_point modified;
};
// lstat(2) (does not follow a final symlink). nullopt when the path does not exist.
std::optional<FileInfo> stat_path(const std::string& path);
// fstat(2) of an open fd.
FileInfo stat_fd(int fd, const std::string& path_for_errors);

// Parent directory of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string parent_directory(const std::string& path);

// Atomically publishes `contents` at `path`: a temp file in the same directory (O_EXCL),
// full write loop, fsync, rename over `path`, fsync of the directory. On any failure the
// temp file is removed and the old `path` (if any) is untouched. Readers see either the old
// file or the complete new one, never a mix, and after return the new one survives a crash.
// Failpoints: "atomic_write.after_temp_write", "atomic_write.after_rename".
void atomic_write_file(const std::string& path, std::string_view contents, mode_t mode = 0644);

// A unique temp name beside `path`: "<dir>/.<name>.tmp.<pid>.<random>".
std::string temp_name_beside(const std::string& path);

// ---- OFD locks (fcntl F_OFD_*) -------------------------------------------------------
// Open-file-description locks belong to the open file, not to the process: two fds of the
// same process conflict (unlike classic fcntl locks, where "fcntl(F_SETLK) does not provide
// any protection against multiple uses from the same process" and any close() of the file
// by the process drops them). They are released when the last fd of that open file closes,
// so the kernel drops a crashed holder's lock at once.

// Tries to take an exclusive (or shared) OFD lock on the whole file. Returns false when
// another open file holds a conflicting one.
bool ofd_try_lock(int fd, bool exclusive, const std::string& path_for_errors);
// Blocks until the OFD lock is taken or `timeout` passes (false). A zero timeout is a try.
// Uses F_OFD_SETLKW interrupted by a timer signal-free mechanism (a helper thread is not
// used: the wait is sliced), so it returns within ~1 ms of the lock being released.
bool ofd_lock_wait(int fd, bool exclusive, std::chrono::milliseconds timeout,
                   const std::string& path_for_errors);
// Releases an OFD lock held through fd.
void ofd_unlock(int fd, const std::string& path_for_errors);
// Whether any open file holds a lock conflicting with an exclusive lock on this fd.
bool ofd_is_locked_by_other(int fd, const std::string& path_for_errors);

// A classic POSIX (process-associated) lock seen through F_GETLK, as DuckDB takes on its
// database file. Returns the holder's pid (or -1 for an OFD holder, whose pid the kernel
// does not report), or nullopt when the file is not locked.
std::optional<pid_t> posix_lock_holder(const std::string& path);
// Every process holding a classic POSIX lock (read or write) on `path`, from /proc/locks,
// sorted. F_GETLK reports only one conflicting holder; DuckDB readers share read locks, so
// this lists them all. Empty when none, or when /proc/locks cannot be read. Waiters ("->")
// are not holders. Pids are as seen from this pid namespace.
std::vector<pid_t> posix_lock_holders(const std::string& path);

// ---- Processes -----------------------------------------------------------------------

// Who a process is, in a way that survives pid reuse: same host (hostname + boot id), same
// pid, same start time (clock ticks since boot, /proc/<pid>/stat field 22).
struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;
  std::string boot_id;
  std::string hostname;
};

// This process's identity (cached after the first call; refreshed after fork()).
const ProcessIdentity& self_identity();
// This machine's boot id (/proc/sys/kernel/random/boot_id), and hostname.
const std::string& boot_id();
const std::string& host_name();
// A process's start time in clock ticks since boot; nullopt if the pid does not exist.
std::optional<uint64_t> process_start_time(pid_t pid);
// Whether `pid` exists (kill(pid, 0); EPERM counts as existing).
bool pid_exists(pid_t pid);
// Liveness of a recorded identity on this host: the pid exists and started at start_time.
enum class Liveness { kAlive, kDead, kPidReused, kOtherHost };
Liveness check_liveness(const ProcessIdentity& who);
// A process's command line (NUL-separated argv joined by spaces), "" if unreadable.
std::string process_command_line(pid_t pid);
// A process's parent pid, state letter ('R', 'S', 'Z', ...) from /proc/<pid>/stat.
struct ProcessStat {
  pid_t ppid = 0;
  char state = '?';
  uint64_t start_time = 0;
  // Threads not yet gone. Trap: a thread-group leader shows state 'Z' as soon as it exits,
  // while its other threads may still be exiting and holding its files and fcntl locks; the
  // process is truly gone only at 'Z' with threads <= 1.
  int threads = 0;
};
std::optional<ProcessStat> process_stat(pid_t pid);
// Seconds a process has been running, from its start time and the system uptime.
std::optional<double> process_age_seconds(pid_t pid);
// Pids of processes that have `path` open (scans /proc/*/fd; unreadable entries skipped).
std::vector<pid_t> processes_with_file_open(const std::string& path);

// Signals by name: "TERM", "SIGTERM", "term" or "15" -> 15; nullopt if unknown. (The other
// way round is signal_name() in process.h.)
std::optional<int> signal_number(const std::string& name);
// kill(2) of one process (which need not be our child). Returns false when it no longer
// exists (ESRCH); throws IoError for anything else (EPERM: not ours to signal).
bool signal_process(pid_t pid, int signal);
// The same, but only to the process with that pid that started at `start_time` (ProcessStat's
// start_time): the pid is pinned with a pidfd first and its start time checked through it,
// so a holder that died and whose pid went to another process is never signalled, even if
// that happens between the check and the signal. Returns false when that process is gone.
bool signal_process(pid_t pid, uint64_t start_time, int signal);

// ---- Descendants (a job's leftovers) -------------------------------------------------

// prctl(PR_SET_CHILD_SUBREAPER): while on, descendants orphaned by their parent's death are
// reparented to this process instead of to init, so it can still find and stop them.
void set_child_subreaper(bool on);
// This process's children now (a scan of /proc/*/stat), sorted; zombies included. Slow on a
// busy machine: reading another process's stat waits for its memory-map lock.
std::vector<pid_t> list_children();
// Whether this process has any child at all, zombies included (waitid(P_ALL, WNOWAIT): one
// system call, nothing reaped). Never throws.
bool has_children();
struct DescendantSweep {
  bool found = false;            // something was left to stop
  bool needed_kill = false;      // SIGTERM and the grace were not enough
  std::vector<pid_t> survivors;  // still there after SIGKILL (state D): should be empty
};
// Stops what is left of a job after its leader ended: SIGTERM to process group `pgid` and to
// every child of this process not in `keep` (a subreaper's reparented orphans, which may have
// left the group with setsid), up to `grace` for them to end, then SIGKILL, repeated until
// none is left (at most 10 s more), reaping each child. Children in `keep` (those that
// existed before the job) are never signalled or reaped. Returns at once when nothing is
// left. Blocks. Never throws.
DescendantSweep stop_descendants(pid_t pgid, std::chrono::milliseconds grace,
                                 const std::vector<pid_t>& keep);

// ---- Waiting on descriptors -----------------------------------------------------------

// Waits until fd is readable (or has hung up) or timeout passes (false). Retries EINTR.
bool wait_readable(int fd, std::chrono::milliseconds timeout);

// ---- Time ----------------------------------------------------------------------------

// UTC time as RFC 3339 with milliseconds: "2026-01-15T10:30:00.000Z".
std::string format_utc(std::chrono::system_clock::time_point time);
// Parses exactly the format above, years 1970-2200 and real calendar days only; nullopt on
// anything else (never an overflowed or normalised time).
std::optional<std::chrono::system_clock::time_point> parse_utc(std::string_view text);
// A compact UTC stamp for file names: "20260115T103000Z".
std::string utc_stamp_for_filename(std::chrono::system_clock::time_point time);
// Monotonic clock for durations.
using SteadyClock = std::chrono::steady_clock;

// A random 128-bit UUID (version 4) from random_u64().
std::string random_uuid();
// 64 random bits from a per-thread xoshiro256** generator seeded from getrandom(2) on first
// use, and again in a forked child (so parent and child never draw the same numbers). Made
// for uniqueness (temp names, nonces, ids, jitter), not secrecy: never use it for keys. A
// lock operation draws several, and a getrandom call each cost ~2 us on the VMs measured.
// Throws IoError only if seeding fails.
uint64_t random_u64();

}  // namespace warden
