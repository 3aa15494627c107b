// Shared by the guard tests: a DuckDB process that warden did not start (this very test
// program, re-executed in a helper mode), and small conveniences.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "helpers/test_support.h"

namespace warden::testing {

// Environment for re-executing this test program as a DuckDB helper instead of the tests
// (exec'ed, not forked after opening DuckDB: DuckDB in a forked child is fragile). Modes:
//   "hold":  open the database read-write, create the ready file, sleep until killed;
//   "write": insert `rows` rows into table t (0..rows-1) with automatic checkpoints off and
//            no checkpoint on shutdown, so they live only in the WAL; create the ready file;
//            sleep until killed (a test SIGKILLs it: a crashed writer);
//   "insert": insert `rows` rows, close normally, exit 0 (a well-behaved guarded job).
// With ignore_term the helper ignores SIGTERM (a stuck process).
std::map<std::string, std::string> duckdb_helper_env(const std::string& mode, const std::string& db,
                                                     const std::string& ready_file, int rows = 1000,
                                                     bool ignore_term = false);
// This test program's path (to exec it as the helper).
std::string self_binary();
// Starts the helper and waits for its ready file; fails the test if it does not come.
Child start_duckdb_helper(const std::string& mode, const std::string& db,
                          const std::string& ready_file, int rows = 1000, bool ignore_term = false);

// Rows in table t, and their sum, read in a forked-free way: by running this program as a
// helper in "count" mode (so the test process never holds DuckDB's lock itself: closing any
// fd of a file drops this process's fcntl locks on it, and F_GETLK never reports our own).
struct TableCount {
  bool ok = false;
  long long rows = 0;
  long long sum = 0;
  std::string error;
};
TableCount count_rows(const std::string& db);

// Runs `sh -c script` and returns the status the shell would see ($?), by running it under
// another sh that prints it: "sh -c '<script>'; echo $?". A process killed by signal N reads
// as 128+N, as in a shell or an n8n Execute Command node.
int shell_status(const std::string& script, const std::map<std::string, std::string>& env = {});

// Whether pid exists and is not a zombie.
bool process_alive(pid_t pid);

// Reads a pid written by a job into a file (0 if missing).
pid_t read_pid_file(const std::string& path);

// A process that is not our child (a guard's job), pinned while we know it is the one we
// mean: signals go through a pidfd, so they can never reach another process that was given
// the same pid after this one died and was reaped by someone else.
class PinnedProcess {
 public:
  explicit PinnedProcess(pid_t pid);  // fails the test if pid is not running now
  ~PinnedProcess();
  PinnedProcess(const PinnedProcess&) = delete;
  PinnedProcess& operator=(const PinnedProcess&) = delete;
  // Signals the process and, where the kernel can (PIDFD_SIGNAL_PROCESS_GROUP, Linux 6.9),
  // its whole process group; a process already gone is not an error.
  void kill_group(int signal);
  // Signals the process alone.
  void kill(int signal);

 private:
  int fd_ = -1;
};

// Whether a signal sent to pid (kill(2), so process-directed) has been taken by one of its
// threads, i.e. is no longer pending (/proc/<pid>/status ShdPnd). A process held at a
// failpoint has then run its handler before it can see the file that lets it go on.
bool signal_taken(pid_t pid, int signal);

// WARDEN_FAILPOINTS value that holds a guard at `failpoint` until `file` exists.
std::string hold_until(const std::string& failpoint, const std::string& file);

}  // namespace warden::testing
