// Child processes: fork/exec into a new process group, a watchdog that kills the group if
// we die, pidfd-based waiting, and signal forwarding. The contract is include/warden/process.h.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#include "posix_internal.h"
#include "warden/error.h"
#include "warden/process.h"

extern char** environ;

namespace warden {

using internal::throw_errno;

namespace {

// The child's side between fork and exec: async-signal-safe calls only (the parent may have
// threads holding malloc's lock).
[[noreturn]] void exec_child(const ChildOptions& options, char* const* argv, char* const* envp,
                             pid_t parent, int error_pipe, int go_pipe) {
  // Every signal is blocked since before fork (start() does that). Our handlers are the
  // parent's (a SignalForwarder's would pass a signal meant for the command to whatever
  // target the parent's copy names, or swallow it): back to the default before anything can
  // be delivered, so a signal sent to the new group before exec acts on it as on the command.
  for (int signal = 1; signal < NSIG; ++signal) {
    struct sigaction current;
    if (signal == SIGKILL || signal == SIGSTOP) continue;
    if (::sigaction(signal, nullptr, &current) != 0) continue;
    if ((current.sa_flags & SA_SIGINFO) == 0 &&
        (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN)) {
      continue;
    }
    struct sigaction fallback;
    std::memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(signal, &fallback, nullptr);
  }
  // Drop the parent's descriptors at once, not at exec: until exec (which waits for the
  // watchdog) a copy of a lock fd here would keep its OFD lock held, so a holder killed in
  // that window would look alive. Every fd but stdio, our pipes and inherit_fds is
  // close-on-exec anyway (the POSIX layer opens them so), so closing early changes nothing.
  int keep[64];
  size_t kept = 0;
  for (int fd : {error_pipe, go_pipe}) {
    if (fd > 2) keep[kept++] = fd;
  }
  for (int fd : options.inherit_fds) {
    if (fd > 2 && kept < sizeof keep / sizeof keep[0]) keep[kept++] = fd;
  }
  for (size_t i = 1; i < kept; ++i) {  // insertion sort: no allocation after fork
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  }
  unsigned next = 3;
  for (size_t i = 0; i < kept; ++i) {
    if (static_cast<unsigned>(keep[i]) > next) ::close_range(next, keep[i] - 1, 0);
    next = std::max(next, static_cast<unsigned>(keep[i]) + 1);
  }
  ::close_range(next, ~0U, 0);
  if (options.own_process_group) ::setpgid(0, 0);
  if (options.die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died before prctl: then nobody would ever send the signal.
    if (::getppid() != parent) ::_exit(137);
  }
  if (go_pipe >= 0) {
    // Run nothing until the watchdog exists: a parent killed in between would otherwise
    // leave a command (and whatever it starts) running with no one to stop it.
    char go = 0;
    ssize_t n;
    do {
      n = ::read(go_pipe, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(137);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int fd : options.inherit_fds) ::fcntl(fd, F_SETFD, 0);
  ::execvpe(argv[0], argv, envp);
  int saved = errno;
  ssize_t ignored = ::write(error_pipe, &saved, sizeof saved);
  (void)ignored;
  ::_exit(127);
}

// The watchdog: blocks on a pipe whose only writer is the parent; EOF means the parent is
// gone (or let go of the child on purpose), so the child's group is killed. It is a member
// of that group itself: a group id stays reserved while any member lives, so however long
// the watchdog waits (a forked copy of the parent can hold the pipe open long after the
// parent died and init reaped the child), `group` can never have been reused by an
// unrelated process group when it fires. Killing the group kills the watchdog with it.
[[noreturn]] void run_watchdog(int read_end, pid_t group) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);  // a terminal's Ctrl-C must not kill the watchdog
  ::setpgid(0, group);                        // the parent does it too: no race either way
  // Keep no other fd: an inherited lock fd would keep an OFD lock alive after its release.
  if (read_end != 3) {
    ::dup2(read_end, 3);
  }
  ::close_range(0, 2, 0);
  ::close_range(4, ~0U, 0);
  char byte;
  while (::read(3, &byte, 1) != 0) {
    if (errno != EINTR && errno != EAGAIN) break;
  }
  ::kill(-group, SIGKILL);
  ::_exit(0);
}

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
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) throw_errno("create pipe for", command, errno);
  int go_pipe[2] = {-1, -1};
  if (watched && ::pipe2(go_pipe, O_CLOEXEC) != 0) {
    int saved = errno;
    ::close(error_pipe[0]);
    ::close(error_pipe[1]);
    throw_errno("create pipe for", command, saved);
  }
  const pid_t parent = ::getpid();
  // Signals stay blocked across both forks (restored in the parent once they are done): the
  // child resets its inherited handlers before it unblocks (see exec_child), and the
  // watchdog never runs a handler of ours.
  std::optional<BlockAllSignals> blocked;
  blocked.emplace();
  pid_t pid = ::fork();
  if (pid < 0) {
    int saved = errno;
    for (int fd : {error_pipe[0], error_pipe[1], go_pipe[0], go_pipe[1]}) {
      if (fd >= 0) ::close(fd);
    }
    throw_errno("fork for", command, saved);
  }
  if (pid == 0) {
    ::close(error_pipe[0]);
    if (go_pipe[1] >= 0) ::close(go_pipe[1]);
    exec_child(options, argv.data(), envp.data(), parent, error_pipe[1], go_pipe[0]);
  }
  ::close(error_pipe[1]);
  if (go_pipe[0] >= 0) ::close(go_pipe[0]);
  ChildProcess child;
  child.pid_ = pid;
  child.own_group_ = options.own_process_group;
  if (options.own_process_group) ::setpgid(pid, pid);  // both sides set it: no race on signals

  if (watched) {
    // The watchdog first, then the go: the child execs only once someone will stop its group
    // if we die (closing go_pipe without a byte, by our death, makes it exit unexec'ed).
    int watch_pipe[2];
    if (::pipe2(watch_pipe, O_CLOEXEC) != 0) {
      int saved = errno;
      ::close(go_pipe[1]);
      ::close(error_pipe[0]);
      throw_errno("create pipe for", command, saved);
    }
    pid_t watchdog = ::fork();
    if (watchdog < 0) {
      int saved = errno;
      ::close(watch_pipe[0]);
      ::close(watch_pipe[1]);
      ::close(go_pipe[1]);
      ::close(error_pipe[0]);
      throw_errno("fork watchdog for", command, saved);
    }
    if (watchdog == 0) {
      ::close(watch_pipe[1]);
      run_watchdog(watch_pipe[0], pid);
    }
    ::close(watch_pipe[0]);
    ::setpgid(watchdog, pid);  // in the child's group before start() returns (see run_watchdog)
    child.watchdog_pid_ = watchdog;
    child.watchdog_pipe_ = watch_pipe[1];
    const char go = 1;
    ssize_t ignored = ::write(go_pipe[1], &go, 1);
    (void)ignored;
    ::close(go_pipe[1]);
  }
  blocked.reset();

  // exec succeeded iff the close-on-exec pipe closes without a word.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
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
      own_group_(other.own_group_),
      status_(other.status_) {
  other.pid_ = -1;
  other.watchdog_pid_ = -1;
  other.pidfd_ = -1;
  other.watchdog_pipe_ = -1;
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
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (finished()) return status_;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    struct pollfd entry {
      pidfd_, POLLIN, 0
    };
    int n = ::poll(&entry, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (n < 0 && errno != EINTR) throw_errno("poll child", std::to_string(pid_), errno);
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
  g_forwarder_active.store(false);
}

int SignalForwarder::last_forwarded() const { return g_last_forwarded.load(); }

std::string signal_name(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  if (abbrev) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal);
}

}  // namespace warden
