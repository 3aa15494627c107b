// Running a child command safely: its own process group, signals passed on, a deadline, and
// no child left running behind a dead parent. One facility for every part that runs a
// user's command (`warden lock run`, `warden guard run`).
//
// Typical use (a flock(1)-like runner):
//   ChildOptions options;
//   options.argv = {"sh", "-c", "make data"};
//   options.inherit_fds = {lock.held_fd()};      // the child keeps the lock alive too
//   ChildProcess child = ChildProcess::start(options);
//   SignalForwarder forward(child);              // SIGINT/SIGTERM/... go to the child's group
//   ExitStatus status = child.wait();            // or wait_for(timeout) then kill_group()
//   return status.shell_code();                  // 0..255, 128+N when killed by signal N
//
// Threads: a ChildProcess is used by one thread at a time. start() clones the child as
// posix_spawn does (CLONE_VM | CLONE_VFORK: no page tables copied); until exec the child calls
// only async-signal-safe functions, so it is safe from a threaded process. Start from a
// thread that lives as long as the child (the main thread): Linux ties "parent death" to the
// creating thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warden {

// How a child ended.
struct ExitStatus {
  bool exited = false;  // true: code is valid; false: signal is valid
  int code = 0;
  int signal = 0;
  // The shell's convention (and coreutils timeout's): the exit code, or 128+N for signal N.
  int shell_code() const { return exited ? code : 128 + signal; }
};

struct ChildOptions {
  // argv[0] is looked up in PATH when it has no '/'. Must not be empty.
  std::vector<std::string> argv;
  // Set in the child's environment (on top of ours).
  std::map<std::string, std::string> env;
  // Descriptors the child inherits (FD_CLOEXEC is cleared in the child only; every other fd
  // stays close-on-exec as the POSIX layer opens them).
  std::vector<int> inherit_fds;
  // The child leads a new process group (pgid = its pid), so signals and kill_group() reach
  // its whole tree, and a terminal's Ctrl-C reaches us, not it directly.
  bool own_process_group = true;
  // If this process dies (even by SIGKILL), the child's whole process group is SIGKILLed
  // within milliseconds: a small watchdog process (cloned into our memory, never exec'ed,
  // told the group by the child before it execs) waits for our end of a pipe to close and
  // then kills the group. The watchdog is a member of that group (it
  // blocks every signal but SIGKILL), so the group id stays reserved while it can fire and
  // its kill can never reach a group that reused the id. Needs own_process_group. The direct child
  // also gets PR_SET_PDEATHSIG(SIGKILL) as a second line. A descendant that moves itself to
  // another process group (setsid) escapes: that is its own choice.
  bool die_with_parent = true;
};

// A running (or finished, not yet destroyed) child. Move-only. The destructor SIGKILLs the
// group of a child still running and reaps it, so no child outlives its handle by accident.
class ChildProcess {
 public:
  // Starts the command (clone + exec). Throws IoError when the command cannot be run, with
  // errno_value() ENOENT (not found: a runner exits 127) or another errno such as EACCES (cannot
  // run: 126), and the message naming the command. Does not block beyond the exec.
  static ChildProcess start(const ChildOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // The watchdog process start() cloned (die_with_parent), -1 if none or already reaped. A
  // subreaper that sweeps its children must leave it alone.
  pid_t watchdog_pid() const { return watchdog_pid_; }
  // Whether the child has ended (reaps it then; non-blocking).
  bool finished();
  // Waits until the child ends. Blocks.
  ExitStatus wait();
  // Waits up to timeout; nullopt when it is still running then. Blocks (poll on a pidfd:
  // returns the moment the child ends, no polling interval).
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  // The same, but also returns nullopt early, having drained it, once `wake_fd` (a
  // non-blocking pipe's read end, such as SignalForwarder::wake_fd(); -1 for none) is
  // readable: a supervisor sleeps until the child ends, a signal comes or its own deadline,
  // instead of waking on a fixed interval. Throws IoError if poll fails.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout, int wake_fd);
  // Sends a signal to the child's process group (or the child alone without one). No-op
  // once reaped. Never throws.
  void signal_group(int signal) noexcept;
  // SIGTERM to the group, up to `grace` for it to end, then SIGKILL; returns how it ended
  // and whether SIGKILL was needed (coreutils timeout reports that as 137).
  struct Stopped {
    ExitStatus status;
    bool needed_kill = false;
  };
  Stopped terminate_group(std::chrono::milliseconds grace);

 private:
  ChildProcess() = default;
  void reap_watchdog() noexcept;
  pid_t pid_ = -1;
  pid_t watchdog_pid_ = -1;
  int pidfd_ = -1;
  int watchdog_pipe_ = -1;          // our end; closing it (or dying) fires the watchdog
  void* watchdog_stack_ = nullptr;  // the watchdog runs in our memory, on this mapping
  size_t watchdog_stack_size_ = 0;
  bool own_group_ = false;
  std::optional<ExitStatus> status_;
};

// While alive, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to this process
// are passed to the child's process group instead of acting on us (the runner outlives the
// child's reaction and reports its exit code). The previous handlers come back on
// destruction. One forwarder at a time per process (a second one throws InvalidArgumentError;
// IoError if its wake pipe cannot be made).
//
// The trap it closes: a runner that installs its handlers only after start() dies of a
// SIGTERM that arrives while the child is being started (the default action), leaving the
// child and the runner's lock behind. So create the forwarder with no target first, start
// the child, then forward_to() it: a signal caught in between is passed on then, exactly once.
class SignalForwarder {
 public:
  // Catches the signals now and passes them to `child`'s group (forward_to(child)).
  explicit SignalForwarder(const ChildProcess& child);
  // Catches the signals now and only records them (last_forwarded()) until forward_to().
  SignalForwarder();
  ~SignalForwarder();
  SignalForwarder(const SignalForwarder&) = delete;
  SignalForwarder& operator=(const SignalForwarder&) = delete;
  // From now on, signals go to `child`'s process group (or the child alone if it has none);
  // the last one caught while there was no target is passed on at once. Never throws.
  void forward_to(const ChildProcess& child) noexcept;
  // From now on, signals are only recorded (call it once the child is reaped, so no signal
  // can reach a process group whose id was reused). Never throws.
  void stop_forwarding() noexcept;
  // The last signal caught (forwarded or not), 0 if none.
  int last_forwarded() const;
  // A non-blocking pipe's read end that becomes readable whenever a signal is caught (the
  // handler writes to it), for ChildProcess::wait_for(timeout, wake_fd). Valid while the
  // forwarder lives.
  int wake_fd() const noexcept { return wake_read_; }

 private:
  int wake_read_ = -1;
  int wake_write_ = -1;
};

// Text for a signal number ("SIGTERM"), for messages.
std::string signal_name(int signal);

}  // namespace warden
