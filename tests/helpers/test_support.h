// Fixtures shared by every test program: temporary directories, child processes (forked
// functions or the real `warden` binary), and the throw-away PostgreSQL server.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warden::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// How a child ended.
struct ChildResult {
  bool exited = false;  // true: exit_code is valid; false: signal is valid
  int exit_code = -1;
  int signal = 0;
  std::string out;  // captured stdout (when captured)
  std::string err;  // captured stderr (when captured)
};

// A child process. Killed with SIGKILL and reaped on destruction if still running.
class Child {
 public:
  // Forks and runs fn() in the child; the child exits with fn's return value (or 1 if it
  // throws). The child does not run gtest's atexit handlers (_exit).
  static Child fork_function(std::function<int()> fn);
  // Runs argv[0] (a path) with extra environment variables; stdout/stderr captured to
  // files read by wait() when capture is true, inherited otherwise.
  static Child spawn(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env = {}, bool capture = true,
                     const std::string& stdin_text = "");
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  // Waits for exit (up to timeout; then SIGKILLs and reports the kill).
  ChildResult wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Non-blocking: whether the child has ended (reaps it if so).
  bool finished();
  void kill(int signal);

 private:
  Child() = default;
  pid_t pid_ = -1;
  std::optional<ChildResult> result_;
  std::string out_path_, err_path_;
};

// Runs the warden CLI (WARDEN_CLI_PATH) to completion with args, capturing output.
ChildResult run_warden(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(120),
                       const std::string& stdin_text = "");
// Path of the built warden binary.
std::string warden_binary();

// Polls predicate every millisecond until true or timeout; returns its last value. The
// default is generous: it only bounds how long a failing test hangs, and a loaded CI machine
// can take seconds to start a process (never use it to assert that something did NOT happen).
bool wait_until(const std::function<bool()>& predicate,
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The throw-away PostgreSQL started by scripts/test: its libpq connection string from
// WARDEN_TEST_PG (e.g. "host=/tmp/x port=5432 dbname=postgres user=postgres"). Fails the
// current test (ADD_FAILURE) and returns "" when it is not set: PostgreSQL tests never skip.
std::string postgres_conninfo();
// A fresh database on that server, dropped on destruction; conninfo() connects to it.
class PostgresDatabase {
 public:
  PostgresDatabase();
  ~PostgresDatabase();
  const std::string& conninfo() const { return conninfo_; }
  const std::string& name() const { return name_; }
  // Runs SQL (several statements allowed); fails the test on error.
  void exec(const std::string& sql) const;

 private:
  std::string admin_conninfo_, conninfo_, name_;
};

// Reads a whole file ("" if missing).
std::string slurp(const std::string& path);

// The fenced ```sh blocks of a runbook page, in order, grouped by the scenario named in the
// `<!-- runbook-test: NAME -->` line right before each (runbook tests set each scenario up
// and run its blocks). An sh block without such a marker is appended to *error as
// "<path>:<line>: sh block without a marker".
std::map<std::string, std::vector<std::string>> runbook_blocks_by_scenario(const std::string& path,
                                                                           std::string* error);
// Writes a whole file (not atomically: tests use it to plant bad input).
void spit(const std::string& path, const std::string& contents);

}  // namespace warden::testing
