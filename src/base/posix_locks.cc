// OFD locks and the F_GETLK probe of classic POSIX locks.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "posix_internal.h"
#include "warden/posix.h"

namespace warden {

using internal::throw_errno;

namespace {

struct flock whole_file(short type) {
  struct flock lock;
  std::memset(&lock, 0, sizeof lock);
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;
  lock.l_pid = 0;  // must be 0 for OFD locks
  return lock;
}

// The blocking wait is F_OFD_SETLKW, woken at the deadline by a per-thread timer signal.
// The handler does nothing; it exists so the signal interrupts fcntl with EINTR instead of
// killing the process. It is installed without SA_RESTART for that reason.
constexpr int kWakeSignalOffset = 7;

int wake_signal() { return SIGRTMIN + kWakeSignalOffset; }

void ignore_wake(int) {}

void install_wake_handler_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_handler = ignore_wake;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    ::sigaction(wake_signal(), &action, nullptr);
  });
}

// A timer that signals only the calling thread, first at `first`, then every `interval`
// (the repeat covers the race where the signal lands just before fcntl starts waiting).
class ThreadWakeTimer {
 public:
  ThreadWakeTimer(std::chrono::nanoseconds first, std::chrono::nanoseconds interval) {
    struct sigevent event;
    std::memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = wake_signal();
    event._sigev_un._tid = static_cast<pid_t>(::syscall(SYS_gettid));
    if (::timer_create(CLOCK_MONOTONIC, &event, &timer_) != 0) {
      throw_errno("create wake timer for", "lock wait", errno);
    }
    struct itimerspec spec;
    spec.it_value = to_timespec(first);
    spec.it_interval = to_timespec(interval);
    ::timer_settime(timer_, 0, &spec, nullptr);
  }
  ~ThreadWakeTimer() { ::timer_delete(timer_); }
  ThreadWakeTimer(const ThreadWakeTimer&) = delete;
  ThreadWakeTimer& operator=(const ThreadWakeTimer&) = delete;

 private:
  static struct timespec to_timespec(std::chrono::nanoseconds d) {
    if (d.count() <= 0) d = std::chrono::nanoseconds(1);
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(d.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(d.count() % 1000000000);
    return ts;
  }
  timer_t timer_{};
};

}  // namespace

bool ofd_try_lock(int fd, bool exclusive, const std::string& path_for_errors) {
  struct flock lock = whole_file(exclusive ? F_WRLCK : F_RDLCK);
  if (::fcntl(fd, F_OFD_SETLK, &lock) == 0) return true;
  int saved = errno;
  if (saved == EAGAIN || saved == EACCES) return false;
  throw_errno("lock", path_for_errors, saved);
}

bool ofd_lock_wait(int fd, bool exclusive, std::chrono::milliseconds timeout,
                   const std::string& path_for_errors) {
  if (ofd_try_lock(fd, exclusive, path_for_errors)) return true;
  if (timeout.count() <= 0) return false;
  install_wake_handler_once();
  const auto deadline = SteadyClock::now() + timeout;
  ThreadWakeTimer timer(timeout, std::chrono::milliseconds(20));
  struct flock lock = whole_file(exclusive ? F_WRLCK : F_RDLCK);
  for (;;) {
    if (::fcntl(fd, F_OFD_SETLKW, &lock) == 0) return true;
    int saved = errno;
    if (saved != EINTR) throw_errno("lock", path_for_errors, saved);
    if (SteadyClock::now() >= deadline) return ofd_try_lock(fd, exclusive, path_for_errors);
  }
}

void ofd_unlock(int fd, const std::string& path_for_errors) {
  struct flock lock = whole_file(F_UNLCK);
  if (::fcntl(fd, F_OFD_SETLK, &lock) != 0) throw_errno("unlock", path_for_errors, errno);
}

bool ofd_is_locked_by_other(int fd, const std::string& path_for_errors) {
  struct flock lock = whole_file(F_WRLCK);
  if (::fcntl(fd, F_OFD_GETLK, &lock) != 0) throw_errno("probe lock on", path_for_errors, errno);
  return lock.l_type != F_UNLCK;
}

std::optional<pid_t> posix_lock_holder(const std::string& path) {
  auto fd = try_open_read(path);
  if (!fd) return std::nullopt;
  // F_GETLK with a write-lock probe reports any conflicting lock: classic locks with their
  // owner's pid, OFD locks with pid -1.
  struct flock lock = whole_file(F_WRLCK);
  if (::fcntl(fd->get(), F_GETLK, &lock) != 0) throw_errno("probe lock on", path, errno);
  if (lock.l_type == F_UNLCK) return std::nullopt;
  return lock.l_pid;
}

}  // namespace warden
