// Child processes: clone/exec into a new process group, a watchdog that kills the group if
// we die, pidfd-based waiting, and signal forwarding. The contract is include/warden/process.h.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "posix_internal.h"
#include "warden/error.h"
#include "warden/process.h"

extern char** environ;

namespace warden {

using internal::throw_errno;

namespace {

// The child side runs in our address space (clone with CLONE_VM, see start()): it must not
// leave AddressSanitizer's stack poison behind on a stack we unmap and may map again later.
#if defined(__SANITIZE_ADDRESS__)
#define WARDEN_CHILD_SIDE __attribute__((no_sanitize("address")))
#else
#define WARDEN_CHILD_SIDE
#endif

// A system call that never writes errno. The watchdog shares our memory and, since it has no
// thread of its own, our calling thread's errno: a failing libc call there could change the
// errno one of our threads is about to read.
WARDEN_CHILD_SIDE long raw_syscall(long number, long a = 0, long b = 0, long c = 0) {
#if defined(__x86_64__)
  long result;
  asm volatile("syscall"
               : "=a"(result)
               : "a"(number), "D"(a), "S"(b), "d"(c)
               : "rcx", "r11", "memory");
  return result;
#elif defined(__aarch64__)
  register long x8 asm("x8") = number;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
#else
  // Elsewhere libc's wrapper, errno and all: the race above needs a failing call in the
  // watchdog while we run, which only happens once the group it guards is gone.
  return ::syscall(number, a, b, c);
#endif
}

// What the job's side needs from start(); it lives on start()'s stack, which stays put while
// the job runs on its own (CLONE_VFORK suspends us until it has exec'ed or exited).
struct JobLaunch {
  const ChildOptions* options;
  char* const* argv;
  char* const* envp;
  pid_t parent;
  int watch_fd;    // the watchdog's pipe: the job writes its pid there first; -1 if unwatched
  int exec_errno;  // set by the job when exec fails
};

// The job's side between clone and exec: async-signal-safe calls only (another thread of ours
// may hold malloc's lock), no allocation, and nothing written outside this stack but
// launch->exec_errno.
WARDEN_CHILD_SIDE int exec_child(void* arg) {
  JobLaunch* launch = static_cast<JobLaunch*>(arg);
  const ChildOptions& options = *launch->options;
  // Every signal is blocked since before clone (start() does that). Our handlers are the
  // parent's (a SignalForwarder's would pass a signal meant for the command to whatever
  // target the parent's copy names, or swallow it): back to the default before anything can
  // be delivered, so a signal sent to the new group before exec acts on it as on the command.
  // (Without CLONE_SIGHAND the handler table is the child's own copy.)
  for (int signal = 1; signal < NSIG; ++signal) {
    struct sigaction current;
    if (signal == SIGKILL || signal == SIGSTOP) continue;
    if (::sigaction(signal, nullptr, &current) != 0) continue;
    if ((current.sa_flags & SA_SIGINFO) == 0 &&
        (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN)) {
      continue;
    }
    struct sigaction fallback = {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(signal, &fallback, nullptr);
  }
  if (options.own_process_group) ::setpgid(0, 0);
  if (options.die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died before prctl: then nobody would ever send the signal.
    if (::getppid() != launch->parent) ::_exit(137);
  }
  if (launch->watch_fd >= 0) {
    // Tell the watchdog which group to guard before anything runs: from here on a parent
    // killed at any moment leaves nothing of the command running.
    pid_t self = ::getpid();
    if (::write(launch->watch_fd, &self, sizeof self) != static_cast<ssize_t>(sizeof self)) {
      ::_exit(137);
    }
  }
  // Drop the parent's descriptors at once, not at exec: a copy of a lock fd here would keep
  // its OFD lock held. Every fd but stdio and inherit_fds is close-on-exec anyway (the POSIX
  // layer opens them so), so closing early changes nothing.
  int keep[64];
  size_t kept = 0;
  for (int fd : options.inherit_fds) {
    if (fd > 2 && kept < sizeof keep / sizeof keep[0]) keep[kept++] = fd;
  }
  for (size_t i = 1; i < kept; ++i) {  // insertion sort: no allocation here
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) {
      int moved = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = moved;
    }
  }
  unsigned next = 3;
  for (size_t i = 0; i < kept; ++i) {
    const unsigned fd = static_cast<unsigned>(keep[i]);
    if (fd > next) ::close_range(next, fd - 1, 0);
    if (fd + 1 > next) next = fd + 1;
  }
  ::close_range(next, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int fd : options.inherit_fds) ::fcntl(fd, F_SETFD, 0);
  ::execvpe(launch->argv[0], launch->argv, launch->envp);
  launch->exec_errno = errno;
  ::_exit(127);
}

// The watchdog: reads the group to guard from a pipe whose writers are the job (its pid, once)
// and us (never a byte, only our end held open), then blocks until EOF, which means we are
// gone (or let go of the job on purpose), and kills the group. It joins that group itself: a
// group id stays reserved while any member lives, so however long the watchdog waits (a
// forked copy of us can hold the pipe open long after we died and init reaped the job),
// `group` can never have been reused by an unrelated process group when it fires; if the
// group is already gone when it tries to join, it guards nothing and never signals. Killing
// the group kills the watchdog with it.
//
// It shares our memory (clone with CLONE_VM: no page tables copied, none torn down, which is
// most of what a fork costs) and touches nothing of it but its own stack: raw system calls
// only, every signal blocked since clone (a terminal's Ctrl-C must not kill it).
WARDEN_CHILD_SIDE int run_watchdog(void* arg) {
  const int read_end = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  // Keep no other fd: an inherited lock fd would keep an OFD lock alive after its release.
  if (read_end != 3) raw_syscall(SYS_dup3, read_end, 3, 0);
  raw_syscall(SYS_close_range, 0, 2, 0);
  raw_syscall(SYS_close_range, 4, ~0U, 0);
  pid_t group = 0;
  size_t got = 0;
  while (got < sizeof group) {
    long n = raw_syscall(SYS_read, 3, reinterpret_cast<long>(&group) + static_cast<long>(got),
                         static_cast<long>(sizeof group - got));
    if (n <= 0) raw_syscall(SYS_exit_group, 0);  // we are gone before the job started
    got += static_cast<size_t>(n);
  }
  if (raw_syscall(SYS_setpgid, 0, group) != 0) raw_syscall(SYS_exit_group, 0);
  char byte;
  while (raw_syscall(SYS_read, 3, reinterpret_cast<long>(&byte), 1) > 0) {
  }
  raw_syscall(SYS_kill, -group, SIGKILL);
  raw_syscall(SYS_exit_group, 0);
  return 0;
}

// An anonymous mapping for a clone child's stack. Owned by whoever holds it; the mapping must
// outlive the child that runs on it.
struct ChildStack {
  void* base = nullptr;
  size_t size = 0;

  static ChildStack map(size_t size, const std::string& command) {
    void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) throw_errno("map a stack to start", command, errno);
    return ChildStack{base, size};
  }
  // The highest address: stacks grow down on every architecture we build for.
  void* top() const { return static_cast<char*>(base) + size; }
  static void unmap(void* base, size_t size) noexcept {
    if (base == nullptr) return;
#if defined(__SANITIZE_ADDRESS__)
    __asan_unpoison_memory_region(base, size);
#endif
    ::munmap(base, size);
  }
};

constexpr size_t kJobStackBytes = 256 * 1024;  // execvpe's PATH search and script fallback
constexpr size_t kWatchdogStackBytes = 64 * 1024;

ExitStatus decode_status(int status) {
  ExitStatus result;
  if (WIFEXITED(status)) {
    result.exited = true;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

std::vector<std::string> build_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    if (extra.count(key) == 0) env.push_back(entry);
  }
  for (const auto& [key, value] : extra) env.push_back(key + "=" + value);
  return env;
}

// Blocks every signal in this thread for its lifetime.
class BlockAllSignals {
 public:
  BlockAllSignals() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous_);
  }
  ~BlockAllSignals() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  BlockAllSignals(const BlockAllSignals&) = delete;
  BlockAllSignals& operator=(const BlockAllSignals&) = delete;

 private:
  sigset_t previous_;
};

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

ChildProcess ChildProcess::start(const ChildOptions& options) {
  if (options.argv.empty()) throw InvalidArgumentError("run child: no command given");
  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = build_environment(options.env);
  std::vector<char*> argv = pointers(argv_strings);
  std::vector<char*> envp = pointers(env_strings);
  const std::string command = options.argv[0];
  const bool watched = options.die_with_parent && options.own_process_group;

  ChildProcess child;
  child.own_group_ = options.own_process_group;
  // Signals stay blocked across both clones (restored once they are done): the job resets
  // its inherited handlers before it unblocks (see exec_child), and the watchdog never
  // unblocks at all.
  std::optional<BlockAllSignals> blocked;
  blocked.emplace();
  int watch_pipe[2] = {-1, -1};
  if (watched) {
    // The watchdog first: the job tells it its pid before it execs, so there is no moment
    // at which the command runs and our death would leave it unguarded.
    if (::pipe2(watch_pipe, O_CLOEXEC) != 0) throw_errno("create pipe for", command, errno);
    ChildStack stack;
    try {
      stack = ChildStack::map(kWatchdogStackBytes, command);
    } catch (...) {
      ::close(watch_pipe[0]);
      ::close(watch_pipe[1]);
      throw;
    }
    pid_t watchdog = ::clone(run_watchdog, stack.top(), CLONE_VM | SIGCHLD,
                             reinterpret_cast<void*>(static_cast<intptr_t>(watch_pipe[0])));
    int saved = errno;
    ::close(watch_pipe[0]);
    if (watchdog < 0) {
      ::close(watch_pipe[1]);
      ChildStack::unmap(stack.base, stack.size);
      throw_errno("start the watchdog for", command, saved);
    }
    child.watchdog_pid_ = watchdog;
    child.watchdog_pipe_ = watch_pipe[1];
    child.watchdog_stack_ = stack.base;
    child.watchdog_stack_size_ = stack.size;
  }

  // The job: CLONE_VM | CLONE_VFORK, as posix_spawn does it: no page tables copied and none
  // copied on write afterwards, and we resume once it has exec'ed (or failed to).
  JobLaunch launch{&options, argv.data(), envp.data(), ::getpid(), child.watchdog_pipe_, 0};
  ChildStack stack = ChildStack::map(kJobStackBytes, command);  // child's destructor reaps
  pid_t pid = ::clone(exec_child, stack.top(), CLONE_VM | CLONE_VFORK | SIGCHLD, &launch);
  int saved = errno;
  ChildStack::unmap(stack.base, stack.size);
  if (pid < 0) throw_errno("start", command, saved);  // ~ChildProcess reaps the watchdog
  child.pid_ = pid;
  if (options.own_process_group) ::setpgid(pid, pid);  // both sides set it: no race on signals
  // In the job's group while we still hold its zombie, whatever the watchdog did yet.
  if (child.watchdog_pid_ > 0) ::setpgid(child.watchdog_pid_, pid);
  blocked.reset();

  if (launch.exec_errno != 0) {
    const int exec_errno = launch.exec_errno;
    child.reap_watchdog();  // before the child's pid (its group id) can be reused
    int status;
    ::waitpid(pid, &status, 0);
    child.pid_ = -1;
    std::string message = "run " + command + ": " + errno_text(exec_errno);
    throw IoError(message, exec_errno,
                  exec_errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo);
  }

  child.pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (child.pidfd_ < 0) throw_errno("watch child", command, errno);

  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_),
      watchdog_pid_(other.watchdog_pid_),
      pidfd_(other.pidfd_),
      watchdog_pipe_(other.watchdog_pipe_),
      watchdog_stack_(other.watchdog_stack_),
      watchdog_stack_size_(other.watchdog_stack_size_),
      own_group_(other.own_group_),
      status_(other.status_) {
  other.pid_ = -1;
  other.watchdog_pid_ = -1;
  other.pidfd_ = -1;
  other.watchdog_pipe_ = -1;
  other.watchdog_stack_ = nullptr;
  other.watchdog_stack_size_ = 0;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    this->~ChildProcess();
    new (this) ChildProcess(std::move(other));
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    signal_group(SIGKILL);
    wait();
  }
  reap_watchdog();
  if (pidfd_ >= 0) ::close(pidfd_);
}

void ChildProcess::reap_watchdog() noexcept {
  if (watchdog_pid_ > 0) {
    // Kill it rather than close its pipe: it must not signal a group whose id may be reused.
    ::kill(watchdog_pid_, SIGKILL);
    int status;
    while (::waitpid(watchdog_pid_, &status, 0) < 0 && errno == EINTR) {
    }
    watchdog_pid_ = -1;
  }
  if (watchdog_pipe_ >= 0) {
    ::close(watchdog_pipe_);
    watchdog_pipe_ = -1;
  }
  // Only now that it is reaped: it ran on this stack until it died.
  ChildStack::unmap(watchdog_stack_, watchdog_stack_size_);
  watchdog_stack_ = nullptr;
  watchdog_stack_size_ = 0;
}

bool ChildProcess::finished() {
  if (status_) return true;
  if (pid_ <= 0) return true;
  // Peek without reaping: while the child is a zombie its pid (and group id) stay reserved,
  // so the watchdog can be stopped before that id can be reused.
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR) return false;
    throw_errno("wait for child", std::to_string(pid_), errno);
  }
  if (info.si_pid == 0) return false;
  reap_watchdog();
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("wait for child", std::to_string(pid_), errno);
  }
  status_ = decode_status(status);
  return true;
}

std::optional<ExitStatus> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  return wait_for(timeout, -1);
}

std::optional<ExitStatus> ChildProcess::wait_for(std::chrono::milliseconds timeout, int wake_fd) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (finished()) return status_;
    // Rounded up: a deadline less than a millisecond away is slept to, not spun on.
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    struct pollfd entries[2] = {{pidfd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int n = ::poll(entries, wake_fd >= 0 ? 2 : 1,
                   static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (n < 0 && errno != EINTR) throw_errno("poll child", std::to_string(pid_), errno);
    if (n > 0 && wake_fd >= 0 && (entries[1].revents & POLLIN)) {
      char drained[64];
      while (::read(wake_fd, drained, sizeof drained) > 0) {
      }
      if (finished()) return status_;
      return std::nullopt;
    }
  }
}

ExitStatus ChildProcess::wait() {
  for (;;) {
    auto status = wait_for(std::chrono::hours(24));
    if (status) return *status;
  }
}

void ChildProcess::signal_group(int signal) noexcept {
  if (pid_ <= 0 || status_) return;
  ::kill(own_group_ ? -pid_ : pid_, signal);
}

ChildProcess::Stopped ChildProcess::terminate_group(std::chrono::milliseconds grace) {
  Stopped stopped;
  signal_group(SIGTERM);
  auto status = wait_for(grace);
  if (!status) {
    stopped.needed_kill = true;
    signal_group(SIGKILL);
    status = wait();
  }
  stopped.status = *status;
  return stopped;
}

// ---- Signal forwarding ----------------------------------------------------------------

namespace {

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
constexpr size_t kForwardedCount = sizeof kForwardedSignals / sizeof kForwardedSignals[0];

std::atomic<pid_t> g_forward_target{0};  // negative: a process group; 0: record only
std::atomic<int> g_last_forwarded{0};
std::atomic<int> g_pending{0};  // caught, not yet passed on
std::atomic<bool> g_forwarder_active{false};
std::atomic<int> g_wake_write{-1};  // the active forwarder's wake pipe
struct sigaction g_previous[kForwardedCount];

// Whoever takes the pending signal out of g_pending sends it: either the handler (it saw a
// target) or forward_to() (the handler ran before the target was set), never both, never
// neither.
void forward_signal(int signal) {
  int saved = errno;
  g_last_forwarded.store(signal);
  g_pending.store(signal);
  pid_t target = g_forward_target.load();
  if (target != 0) {
    if (int pending = g_pending.exchange(0)) ::kill(target, pending);
  }
  // Wakes a supervisor in wait_for(timeout, wake_fd); a full pipe already wakes it.
  if (int wake = g_wake_write.load(); wake >= 0) {
    const char byte = 1;
    [[maybe_unused]] ssize_t written = ::write(wake, &byte, 1);
  }
  errno = saved;
}

}  // namespace

SignalForwarder::SignalForwarder() {
  if (g_forwarder_active.exchange(true)) {
    throw InvalidArgumentError("forward signals: a forwarder is already active");
  }
  g_forward_target.store(0);
  g_last_forwarded.store(0);
  g_pending.store(0);
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    int saved = errno;
    g_forwarder_active.store(false);
    throw_errno("forward signals: create the wake pipe", "", saved);
  }
  wake_read_ = wake[0];
  wake_write_ = wake[1];
  g_wake_write.store(wake_write_);
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (size_t i = 0; i < kForwardedCount; ++i) {
    ::sigaction(kForwardedSignals[i], &action, &g_previous[i]);
  }
}

SignalForwarder::SignalForwarder(const ChildProcess& child) : SignalForwarder() {
  forward_to(child);
}

void SignalForwarder::forward_to(const ChildProcess& child) noexcept {
  // The child leads its own group unless told otherwise; kill(-pid) reaches the group.
  pid_t target = child.pid();
  if (target <= 0) return;
  if (::getpgid(target) == target) target = -target;
  g_forward_target.store(target);
  if (int pending = g_pending.exchange(0)) ::kill(target, pending);
}

void SignalForwarder::stop_forwarding() noexcept { g_forward_target.store(0); }

SignalForwarder::~SignalForwarder() {
  for (size_t i = 0; i < kForwardedCount; ++i) {
    ::sigaction(kForwardedSignals[i], &g_previous[i], nullptr);
  }
  g_forward_target.store(0);
  g_pending.store(0);
  g_wake_write.store(-1);
  ::close(wake_read_);
  ::close(wake_write_);
  g_forwarder_active.store(false);
}

int SignalForwarder::last_forwarded() const { return g_last_forwarded.load(); }

std::string signal_name(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  if (abbrev) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal);
}

}  // namespace warden
