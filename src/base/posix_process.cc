// Processes: identity that survives pid reuse, liveness, /proc inspection; time; randomness.
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

#include "posix_internal.h"
#include "warden/posix.h"

namespace warden {

namespace {

std::string read_small_file(const std::string& path) {
  auto fd = try_open_read(path);
  if (!fd) return {};
  try {
    return read_all(fd->get(), path, 1 << 20);
  } catch (const Error&) {
    return {};
  }
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

std::optional<ProcessStat> process_stat(pid_t pid) {
  std::string text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  if (text.empty()) return std::nullopt;
  // Field 2 (comm) is in parentheses and may itself contain ") ", so parse after the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return std::nullopt;
  const char* rest = text.c_str() + close + 2;
  ProcessStat stat;
  char state = '?';
  int ppid = 0;
  int threads = 0;
  unsigned long long start = 0;
  // Fields 3 (state), 4 (ppid), 5..19 skipped, 20 (num_threads), 21 skipped, 22 (starttime).
  int matched = std::sscanf(rest,
                            "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                            "%d %*d %llu",
                            &state, &ppid, &threads, &start);
  if (matched != 4) return std::nullopt;
  stat.state = state;
  stat.ppid = ppid;
  stat.start_time = start;
  stat.threads = threads;
  return stat;
}

std::optional<uint64_t> process_start_time(pid_t pid) {
  auto stat = process_stat(pid);
  if (!stat) return std::nullopt;
  return stat->start_time;
}

bool pid_exists(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) == 0) return true;
  return errno == EPERM;
}

const std::string& boot_id() {
  static const std::string id = trim(read_small_file("/proc/sys/kernel/random/boot_id"));
  return id;
}

const std::string& host_name() {
  static const std::string name = [] {
    char buffer[256] = {0};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) return std::string("unknown");
    return std::string(buffer);
  }();
  return name;
}

const ProcessIdentity& self_identity() {
  // Cached per pid: a forked child must not report its parent's identity.
  static thread_local ProcessIdentity cached;
  pid_t pid = ::getpid();
  if (cached.pid != pid) {
    cached.pid = pid;
    cached.start_time = process_start_time(pid).value_or(0);
    cached.boot_id = boot_id();
    cached.hostname = host_name();
  }
  return cached;
}

Liveness check_liveness(const ProcessIdentity& who) {
  if (who.hostname != host_name() || who.boot_id != boot_id()) {
    // Same hostname but another boot id is this host after a reboot: every process of the
    // old boot is gone.
    if (who.hostname == host_name()) return Liveness::kDead;
    return Liveness::kOtherHost;
  }
  auto start = process_start_time(who.pid);
  if (!start) return pid_exists(who.pid) ? Liveness::kAlive : Liveness::kDead;
  if (*start != who.start_time) return Liveness::kPidReused;
  auto stat = process_stat(who.pid);
  if (stat && stat->state == 'Z') return Liveness::kDead;  // a zombie holds nothing
  return Liveness::kAlive;
}

std::string process_command_line(pid_t pid) {
  std::string raw = read_small_file("/proc/" + std::to_string(pid) + "/cmdline");
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  for (char& c : raw) {
    if (c == '\0') c = ' ';
  }
  return raw;
}

std::optional<double> process_age_seconds(pid_t pid) {
  auto start = process_start_time(pid);
  if (!start) return std::nullopt;
  std::string uptime = read_small_file("/proc/uptime");
  double up = 0;
  if (std::sscanf(uptime.c_str(), "%lf", &up) != 1) return std::nullopt;
  long ticks = ::sysconf(_SC_CLK_TCK);
  if (ticks <= 0) return std::nullopt;
  return up - static_cast<double>(*start) / static_cast<double>(ticks);
}

std::vector<pid_t> processes_with_file_open(const std::string& path) {
  std::vector<pid_t> pids;
  auto target = stat_path(path);
  if (!target) return pids;
  DIR* proc = ::opendir("/proc");
  if (!proc) return pids;
  while (struct dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string fd_dir = "/proc/" + std::string(entry->d_name) + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (!fds) continue;
    while (struct dirent* fd_entry = ::readdir(fds)) {
      if (fd_entry->d_name[0] == '.') continue;
      struct stat st;
      std::string link = fd_dir + "/" + fd_entry->d_name;
      if (::stat(link.c_str(), &st) == 0 && st.st_dev == target->device &&
          st.st_ino == target->inode) {
        pids.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
    ::closedir(fds);
  }
  ::closedir(proc);
  return pids;
}

std::string format_utc(std::chrono::system_clock::time_point time) {
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  int ms = static_cast<int>(millis % 1000);
  if (ms < 0) {
    ms += 1000;
    seconds -= 1;
  }
  struct tm tm;
  ::gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buffer;
}

std::optional<std::chrono::system_clock::time_point> parse_utc(std::string_view text) {
  // Exactly "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 chars).
  if (text.size() != 24 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != '.' || text[23] != 'Z') {
    return std::nullopt;
  }
  auto digits = [&](size_t pos, size_t count, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + count; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second, ms;
  if (!digits(0, 4, year) || !digits(5, 2, month) || !digits(8, 2, day) || !digits(11, 2, hour) ||
      !digits(14, 2, minute) || !digits(17, 2, second) || !digits(20, 3, ms)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  // system_clock counts nanoseconds in 64 bits: it spans 1677..2262, so a year outside a sane
  // window would overflow (a far-future lease read as one from 1816: found by the fuzzer).
  if (year < 1970 || year > 2200) return std::nullopt;
  // timegm would quietly turn Feb 31 into Mar 3: refuse days the month does not have.
  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDaysInMonth[month - 1] || (month == 2 && day == 29 && !leap)) return std::nullopt;
  struct tm tm;
  std::memset(&tm, 0, sizeof tm);
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::time_t seconds = ::timegm(&tm);
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds) +
                                               std::chrono::milliseconds(ms));
}

std::string utc_stamp_for_filename(std::chrono::system_clock::time_point time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  struct tm tm;
  ::gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

namespace {

void getrandom_bytes(void* buffer, size_t size) {
  char* out = static_cast<char*>(buffer);
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::getrandom(out + got, size - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      internal::throw_errno("getrandom", "", errno);
    }
    got += static_cast<size_t>(n);
  }
}

// Bumped in every forked child, so that a child reseeds instead of repeating the numbers its
// parent draws next (the same temp-name suffixes and nonces in two processes).
std::atomic<uint64_t> g_fork_generation{1};

// xoshiro256** (Blackman and Vigna), one per thread, seeded from getrandom.
struct ThreadRandom {
  uint64_t state[4] = {0, 0, 0, 0};
  uint64_t generation = 0;

  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t result = rotl(state[1] * 5, 7) * 9;
    const uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
  }
};
thread_local ThreadRandom t_random;

}  // namespace

uint64_t random_u64() {
  static std::once_flag registered;
  std::call_once(registered, [] {
    ::pthread_atfork(nullptr, nullptr,
                     [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
  });
  const uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
  if (t_random.generation != generation) {
    do {
      getrandom_bytes(t_random.state, sizeof t_random.state);
    } while ((t_random.state[0] | t_random.state[1] | t_random.state[2] | t_random.state[3]) == 0);
    t_random.generation = generation;
  }
  return t_random.next();
}

std::string random_uuid() {
  uint64_t high = random_u64();
  uint64_t low = random_u64();
  high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;    // variant 10
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(high >> 32),
                static_cast<unsigned long long>((high >> 16) & 0xffff),
                static_cast<unsigned long long>(high & 0xffff),
                static_cast<unsigned long long>(low >> 48),
                static_cast<unsigned long long>(low & 0xffffffffffffULL));
  return buffer;
}

}  // namespace warden
