// Signal numbers by name, and signalling a process that is not our child.
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>

#include "posix_internal.h"
#include "warden/posix.h"

namespace warden {

namespace {

struct SignalName {
  const char* name;
  int number;
};

constexpr SignalName kSignalNames[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
};

}  // namespace

std::optional<int> signal_number(const std::string& name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.rfind("SIG", 0) == 0) upper = upper.substr(3);
  for (const SignalName& entry : kSignalNames) {
    if (upper == entry.name) return entry.number;
  }
  char* end = nullptr;
  long number = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0' && number > 0 && number < NSIG) return static_cast<int>(number);
  return std::nullopt;
}

bool signal_process(pid_t pid, uint64_t start_time, int signal) {
  if (pid <= 0) return false;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    if (errno == ESRCH) return false;
    internal::throw_errno("pin pid", std::to_string(pid), errno);
  }
  // Pinned: from here the pid cannot name another process for the pidfd. It is ours if it
  // started when we think (checked after pinning, so a reuse before it is caught too).
  auto stat = process_stat(pid);
  bool sent = false;
  int saved = 0;
  if (stat && stat->start_time == start_time) {
    sent = ::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) == 0;
    saved = errno;
  }
  ::close(pidfd);
  if (sent || !stat || stat->start_time != start_time || saved == ESRCH) return sent;
  internal::throw_errno("send signal " + std::to_string(signal) + " to pid", std::to_string(pid),
                        saved);
}

bool signal_process(pid_t pid, int signal) {
  if (pid <= 0) return false;
  if (::kill(pid, signal) == 0) return true;
  int saved = errno;
  if (saved == ESRCH) return false;
  internal::throw_errno("send signal " + std::to_string(signal) + " to pid", std::to_string(pid),
                        saved);
}

}  // namespace warden
