// Every classic POSIX lock on a file, from /proc/locks (F_GETLK reports only one holder).
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "warden/error.h"
#include "warden/posix.h"

namespace warden {

std::vector<pid_t> posix_lock_holders(const std::string& path) {
  std::vector<pid_t> pids;
  auto target = stat_path(path);
  if (!target) return pids;
  std::string table;
  try {
    table = read_file("/proc/locks", 16u << 20);
  } catch (const Error&) {
    return pids;
  }
  // "1: POSIX  ADVISORY  WRITE 6177 fe:00:10953996 0 EOF". Lines with "->" are waiters, not
  // holders. The device is printed as hex major:minor.
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string ordinal, kind, advisory, mode, pid_text, file_id;
    fields >> ordinal >> kind;
    if (kind != "POSIX") continue;
    fields >> advisory >> mode >> pid_text >> file_id;
    unsigned major_number = 0, minor_number = 0;
    unsigned long long inode = 0;
    if (std::sscanf(file_id.c_str(), "%x:%x:%llu", &major_number, &minor_number, &inode) != 3) {
      continue;
    }
    if (inode != target->inode || major_number != major(target->device) ||
        minor_number != minor(target->device)) {
      continue;
    }
    pid_t pid = static_cast<pid_t>(std::strtol(pid_text.c_str(), nullptr, 10));
    if (pid > 0 && std::find(pids.begin(), pids.end(), pid) == pids.end()) pids.push_back(pid);
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

}  // namespace warden
