#include "guard_test_support.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "warden/duckdb.h"
#include "warden/posix.h"

namespace warden::testing {

namespace {

constexpr const char* kModeVar = "WARDEN_GUARD_TEST_HELPER";

// Written whole, then renamed: a test that sees the file reads the pid, never an empty file.
void touch(const std::string& path) {
  if (path.empty()) return;
  spit(path + ".tmp", std::to_string(::getpid()));
  std::filesystem::rename(path + ".tmp", path);
}

// Runs before gtest's main when this program is started as a helper, and never returns.
int run_helper(const std::string& mode) {
  const char* db = std::getenv("WARDEN_HELPER_DB");
  const char* ready = std::getenv("WARDEN_HELPER_READY");
  const char* rows_text = std::getenv("WARDEN_HELPER_ROWS");
  const std::string ready_file = ready ? ready : "";
  const int rows = rows_text ? std::atoi(rows_text) : 1000;
  if (std::getenv("WARDEN_HELPER_IGNORE_TERM")) ::signal(SIGTERM, SIG_IGN);
  try {
    if (mode == "count") {
      auto database = duckdb::Database::open(db);
      auto connection = database.connect();
      auto result = connection.query("SELECT count(*), coalesce(sum(x), 0) FROM t");
      std::printf("%lld %lld\n", static_cast<long long>(result.get_int64(0, 0)),
                  static_cast<long long>(result.get_int64(1, 0)));
      return 0;
    }
    auto database = duckdb::Database::open(db);
    auto connection = database.connect();
    if (mode == "write") {
      connection.execute("PRAGMA disable_checkpoint_on_shutdown");
      connection.execute("SET wal_autocheckpoint = '10GB'");
    }
    if (mode == "write" || mode == "insert") {
      connection.execute("CREATE TABLE IF NOT EXISTS t (x BIGINT)");
      connection.execute("INSERT INTO t SELECT range FROM range(" + std::to_string(rows) + ")");
    }
    if (mode == "insert") return 0;
    touch(ready_file);
    for (;;) ::pause();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duckdb helper (%s): %s\n", mode.c_str(), e.what());
    return 3;
  }
}

const bool kRanAsHelper = [] {
  const char* mode = std::getenv(kModeVar);
  if (mode == nullptr || *mode == '\0') return false;
  std::fflush(nullptr);
  std::exit(run_helper(mode));
}();

}  // namespace

std::map<std::string, std::string> duckdb_helper_env(const std::string& mode, const std::string& db,
                                                     const std::string& ready_file, int rows,
                                                     bool ignore_term) {
  std::map<std::string, std::string> env = {{kModeVar, mode},
                                            {"WARDEN_HELPER_DB", db},
                                            {"WARDEN_HELPER_READY", ready_file},
                                            {"WARDEN_HELPER_ROWS", std::to_string(rows)}};
  if (ignore_term) env["WARDEN_HELPER_IGNORE_TERM"] = "1";
  return env;
}

std::string self_binary() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

Child start_duckdb_helper(const std::string& mode, const std::string& db,
                          const std::string& ready_file, int rows, bool ignore_term) {
  (void)kRanAsHelper;
  Child child = Child::spawn({self_binary()},
                             duckdb_helper_env(mode, db, ready_file, rows, ignore_term), true);
  bool ready = wait_until([&] { return std::filesystem::exists(ready_file) || child.finished(); },
                          std::chrono::seconds(30));
  EXPECT_TRUE(ready && std::filesystem::exists(ready_file))
      << "the DuckDB helper (" << mode << ") did not get ready";
  return child;
}

TableCount count_rows(const std::string& db) {
  TableCount count;
  Child child = Child::spawn({self_binary()}, duckdb_helper_env("count", db, ""), true);
  ChildResult result = child.wait();
  if (!result.exited || result.exit_code != 0) {
    count.error = result.err;
    return count;
  }
  count.ok = std::sscanf(result.out.c_str(), "%lld %lld", &count.rows, &count.sum) == 2;
  return count;
}

int shell_status(const std::string& script, const std::map<std::string, std::string>& env) {
  Child child = Child::spawn({"/bin/sh", "-c", script + "\necho \"status=$?\""}, env, true);
  ChildResult result = child.wait(std::chrono::seconds(60));
  auto at = result.out.rfind("status=");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no status from: " << script << "\nstdout: " << result.out
                  << "\nstderr: " << result.err;
    return -1;
  }
  return std::atoi(result.out.c_str() + at + 7);
}

bool process_alive(pid_t pid) {
  auto stat = process_stat(pid);
  return stat && stat->state != 'Z';
}

pid_t read_pid_file(const std::string& path) {
  std::string text = slurp(path);
  return text.empty() ? 0 : static_cast<pid_t>(std::atoi(text.c_str()));
}

namespace {
constexpr unsigned kPidfdSignalProcessGroup = 1u << 2;  // PIDFD_SIGNAL_PROCESS_GROUP (6.9)
}  // namespace

PinnedProcess::PinnedProcess(pid_t pid) {
  fd_ = pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1;
  EXPECT_GE(fd_, 0) << "pid " << pid << " is not running: " << std::strerror(errno);
  EXPECT_TRUE(process_alive(pid)) << "pid " << pid << " is not running";
}

PinnedProcess::~PinnedProcess() {
  if (fd_ >= 0) ::close(fd_);
}

void PinnedProcess::kill_group(int signal) {
  if (fd_ < 0) return;
  if (::syscall(SYS_pidfd_send_signal, fd_, signal, nullptr, kPidfdSignalProcessGroup) == 0) {
    return;
  }
  if (errno == EINVAL) kill(signal);  // an older kernel: the process alone
}

void PinnedProcess::kill(int signal) {
  if (fd_ >= 0) ::syscall(SYS_pidfd_send_signal, fd_, signal, nullptr, 0);
}

bool signal_taken(pid_t pid, int signal) {
  std::istringstream status(slurp("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("ShdPnd:", 0) != 0) continue;
    const unsigned long long pending = std::stoull(line.substr(7), nullptr, 16);
    return (pending & (1ull << (signal - 1))) == 0;
  }
  return true;  // gone: nothing is pending any more
}

std::string hold_until(const std::string& failpoint, const std::string& file) {
  return failpoint + "=wait:" + file;
}

}  // namespace warden::testing
