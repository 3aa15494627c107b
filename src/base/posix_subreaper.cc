// Finding and stopping what is left of a job: a child subreaper sees every orphaned
// descendant, even one that left the job's process group.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "posix_internal.h"
#include "warden/posix.h"

namespace warden {

void set_child_subreaper(bool on) {
  if (::prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) != 0) {
    internal::throw_errno("set child subreaper for", "this process", errno);
  }
}

std::vector<pid_t> list_children() {
  // /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN, which not every kernel has:
  // scan every process's parent pid instead (a few hundred small reads).
  std::vector<pid_t> children;
  const pid_t self = ::getpid();
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    long pid = std::strtol(name.c_str(), &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    auto stat = process_stat(static_cast<pid_t>(pid));
    if (stat && stat->ppid == self) children.push_back(static_cast<pid_t>(pid));
  }
  std::sort(children.begin(), children.end());
  return children;
}

bool has_children() {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  int rc =
      internal::retry_eintr([&] { return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT); });
  return !(rc < 0 && errno == ECHILD);
}

namespace {

// Our children not in `keep`, reaping those that have ended (so a zombie is not counted).
std::vector<pid_t> live_children(const std::vector<pid_t>& keep) {
  std::vector<pid_t> live;
  for (pid_t pid : list_children()) {
    if (std::find(keep.begin(), keep.end(), pid) != keep.end()) continue;
    int status;
    if (internal::retry_eintr([&] { return ::waitpid(pid, &status, WNOHANG); }) == pid) continue;
    live.push_back(pid);
  }
  return live;
}

bool group_exists(pid_t pgid) { return pgid > 0 && (::kill(-pgid, 0) == 0 || errno == EPERM); }

void signal_all(pid_t pgid, const std::vector<pid_t>& children, int signal) {
  if (pgid > 0) ::kill(-pgid, signal);
  for (pid_t pid : children) ::kill(pid, signal);
}

}  // namespace

DescendantSweep stop_descendants(pid_t pgid, std::chrono::milliseconds grace,
                                 const std::vector<pid_t>& keep) {
  DescendantSweep sweep;
  // The common case, a job that left nothing: no /proc scan at all.
  if (!has_children() && !group_exists(pgid)) return sweep;
  std::vector<pid_t> children = live_children(keep);
  if (children.empty() && !group_exists(pgid)) return sweep;
  sweep.found = true;
  signal_all(pgid, children, SIGTERM);
  const auto deadline = SteadyClock::now() + grace;
  while (SteadyClock::now() < deadline) {
    children = live_children(keep);
    if (children.empty() && !group_exists(pgid)) return sweep;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Each death can reparent more orphans to us: repeat until none is left (bounded).
  const auto give_up = SteadyClock::now() + std::chrono::seconds(10);
  while (SteadyClock::now() < give_up) {
    children = live_children(keep);
    if (children.empty() && !group_exists(pgid)) return sweep;
    sweep.needed_kill = true;
    signal_all(pgid, children, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  sweep.survivors = live_children(keep);
  return sweep;
}

}  // namespace warden
