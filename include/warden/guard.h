// The process guard for jobs that write a DuckDB file (seed 004; DESIGN.md "guard").
//
// Seed 004 protects an ingestion job in three levels: a safe wrapper (lock detection, PID
// file, cleanup on exit), a timeout (kill the job, exit 124), and a cleanup tool for stuck
// processes. The guard does all three, and better:
//   - its "PID file" is a warden FileLock (lock.h) on a name derived from the database path,
//     so the lease has an owner, a start time and a fencing token, and a crashed guard's
//     lease is recognised as stale by the kernel (OFD lock) and recovered automatically;
//   - it finds the real holder of a database even when no PID file exists: DuckDB takes a
//     classic fcntl lock on the database file and its WAL, and /proc/locks and F_GETLK name
//     the holder's pid even when it was started without warden; /proc/<pid>/fd names every
//     process that has the files open;
//   - a WAL file with no live holder is what a crash leaves behind (DuckDB replays it on the
//     next open); a WAL also exists while a healthy writer runs, so only DuckDB's lock tells
//     a live writer from a crash.
//
// Where the lease lives: "<directory of F>/.warden-guard/<basename of F>.lock" (and its
// fencing-token file beside it). It sits next to the database, not under --data-dir, so every
// guard of the same file finds the same lease whatever its working directory or data dir.
//
// Thread-safety: the functions here are called from one thread; guard_run() installs signal
// handling for its own duration and must not run concurrently with another guard_run() in
// the same process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "warden/lock.h"

namespace warden {

// ---- Paths ---------------------------------------------------------------------------

struct GuardPaths {
  std::string db;         // absolute path of the database file
  std::string wal;        // db + ".wal" (DuckDB's write-ahead log)
  std::string lock_dir;   // "<dir of db>/.warden-guard"
  std::string lock_name;  // the basename, made a valid lock name (see guard_paths)
  std::string lock_file;  // lock_dir + "/" + lock_name + ".lock"
};
// Derives the guard's paths for a database file (which need not exist yet). The path is
// made absolute against the working directory, with its parent directory resolved through
// realpath when it exists, so "./f.duckdb" and "/abs/f.duckdb" name the same lease. A
// basename with characters outside [A-Za-z0-9._-] (or a leading '.') gets them replaced by
// '_' and a short hash of the original appended, so two such names cannot share a lease.
// Throws InvalidArgumentError for an empty path or one that names a directory.
GuardPaths guard_paths(const std::string& db_path);

// The lease options every guard uses (5 min lease refreshed every 60 s, lock.h defaults),
// with writer_id "guard-<uuid>" so a lease taken by a guard is recognisable as one.
LockOptions guard_lock_options();

// "'/path with space/f.duckdb'" when the path needs quoting for a POSIX shell, else as is.
std::string shell_quote(const std::string& text);

// ---- Who holds a database (the pre-check, `guard status`) ------------------------------

// One live process that holds or uses the database.
struct DbHolder {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';                // /proc/<pid>/stat state letter
  std::string command;             // its command line ("" if unreadable)
  double elapsed_seconds = 0;      // how long it has run
  bool holds_guard_lease = false;  // a live warden guard holding F's lease
  bool holds_duckdb_lock = false;  // holds DuckDB's fcntl lock on F or F.wal
  bool has_db_open = false;        // has F or F.wal open (/proc/<pid>/fd)
  // Whether it keeps another writer out (lease or DuckDB lock). A process that only has the
  // file open (a backup tool, a DuckDB process in the instant before it locks) is reported
  // but does not block.
  bool blocks() const { return holds_guard_lease || holds_duckdb_lock; }
};

struct GuardStatus {
  GuardPaths paths;
  bool db_exists = false;
  bool wal_exists = false;
  uint64_t wal_size = 0;
  std::optional<std::chrono::system_clock::time_point> wal_modified;
  LockStatus lease;                       // the guard's lease on F (lock.h)
  std::optional<pid_t> duckdb_lock_pid;   // F_GETLK on F, then on F.wal (-1: an OFD lock)
  std::vector<DbHolder> holders;          // live processes, the caller excluded, by pid
  std::vector<std::string> corrupt_wals;  // "F.wal.corrupt.*" set aside by cleanup

  // A live process keeps writers out: the lease is held by a live guard, or DuckDB's lock
  // is held.
  bool held() const;
  // The lease's holder is gone (dead, pid reused, or expired): recoverable.
  bool stale_lease() const { return is_stale(lease.verdict); }
  // A WAL exists and nobody holds DuckDB's lock: a crash left it.
  bool crash_wal() const { return wal_exists && !duckdb_lock_pid; }
  // "free", "held", or "crashed" (a stale lease or a crash WAL, nothing live).
  const char* state_name() const;
};

// Looks at everything the pre-check of guard_run() sees, without changing anything.
// Processes with pid `ignore_pid` (default: the caller) are left out of `holders`. Reading
// /proc entries of other users' processes may be denied: those are skipped. Does not block.
// Throws MalformedLockFileError-free: a malformed lease shows as verdict kMalformed.
// With scan_open_files false, processes that merely have F open are not looked for (that
// scans every process's fds, the one costly step); the lease, DuckDB's lock, their holders
// and the WAL are still seen, so held(), stale_lease() and crash_wal() are the same.
GuardStatus inspect_guard(const std::string& db_path, pid_t ignore_pid = 0,
                          bool scan_open_files = true);

// `warden guard status --json`: every field above, stable names.
nlohmann::json guard_status_json(const GuardStatus& status);
// `warden guard status`: readable lines, ending with what to do next.
std::string format_guard_status(const GuardStatus& status);
// The refusal guard_run() prints when a live process holds F: one message that names each
// blocking holder (pid, command line, how long it has run, what it holds) and the exact
// commands that resolve it.
std::string blocked_message(const GuardStatus& status);
// "4h52m13s", "3.2s".
std::string format_elapsed(double seconds);

// ---- Opening the database (WAL replay) -------------------------------------------------

struct WalReplayResult {
  enum class Outcome {
    kNoWal,            // there was no WAL: opened and checkpointed anyway
    kReplayed,         // DuckDB replayed the WAL and CHECKPOINT merged it; the WAL is gone
    kCorruptKept,      // DuckDB cannot replay it; left in place (allow_set_aside was false)
    kCorruptSetAside,  // cannot replay: moved to `set_aside_path`, the db opened without it
    kOpenFailed,       // the database itself does not open (not a WAL problem); nothing moved
  };
  Outcome outcome = Outcome::kNoWal;
  std::string set_aside_path;  // "F.wal.corrupt.<UTC stamp>" when set aside
  std::string error;           // DuckDB's error when it could not replay or open
};
const char* wal_outcome_name(WalReplayResult::Outcome outcome);

// Opens the database with DuckDB once, so that a WAL left behind is replayed, runs
// CHECKPOINT, and closes it. The caller must have made sure nobody holds F (DuckDB refuses
// a second writer anyway, which is reported as kOpenFailed). A WAL that DuckDB cannot replay
// is never deleted: with allow_set_aside it is renamed (never replacing) to
// "F.wal.corrupt.<stamp>" and the database is opened without it, so the transactions in it
// are NOT in the database; without, it is left where it is. Blocks for the replay. Throws
// IoError only when the set-aside rename itself fails.
WalReplayResult replay_wal(const GuardPaths& paths, bool allow_set_aside);

// ---- `warden guard cleanup` -----------------------------------------------------------

struct GuardCleanupOptions {
  std::string db;
  bool yes = false;  // stop holders and set aside a corrupt WAL unasked
  int signal = 15;   // first signal to each holder (SIGTERM)
  std::chrono::milliseconds grace{std::chrono::seconds(10)};  // then SIGKILL
  // Asks the operator a yes/no question (a terminal prompt). Empty: every question is "no".
  std::function<bool(const std::string& question)> confirm;
  // Receives each progress line as it happens (holders found, signals sent, ...).
  std::function<void(const std::string& line)> say;
};

struct GuardCleanupReport {
  GuardStatus before;
  std::vector<pid_t> stopped;          // holders that are gone now
  std::vector<pid_t> killed;           // of those, the ones that needed SIGKILL
  std::vector<pid_t> left_running;     // declined, or would not die
  bool lease_removed = false;          // a stale (or now stale) lease was removed
  std::optional<WalReplayResult> wal;  // when a WAL was left and F was free to open
  GuardStatus after;
  // True when F ends with no holder, no stale lease and no WAL left in place.
  bool clean() const;
};

// Shows each holder, asks (or --yes), stops blocking holders (signal, then SIGKILL after
// grace), removes the stale lease, and, when nobody holds F any more and a WAL is left,
// replays it (replay_wal; a corrupt WAL is set aside only when `yes` or confirmed). Never
// stops a process that only has F open without a lock. Blocks while holders stop. Throws
// IoError when the system refuses (a signal not permitted, a rename failing).
GuardCleanupReport guard_cleanup(const GuardCleanupOptions& options);

// ---- `warden guard run` ---------------------------------------------------------------

// Exit codes of a guarded job (coreutils timeout; DESIGN.md "Exit codes"), besides the job's
// own code and 128+N.
inline constexpr int kExitBlocked = 1;  // a live process holds F (seed 004)
inline constexpr int kExitTimedOut = 124;
inline constexpr int kExitGuardFailed = 125;
inline constexpr int kExitCannotRun = 126;
inline constexpr int kExitNotFound = 127;
inline constexpr int kExitKilled = 137;  // 128 + SIGKILL

struct GuardRunOptions {
  std::string db;
  std::vector<std::string> argv;                     // the job; argv[0] is looked up in PATH
  std::optional<std::chrono::milliseconds> timeout;  // none: no limit
  std::chrono::milliseconds kill_after{std::chrono::seconds(30)};  // TERM -> KILL grace
  std::string notify_command;  // run with /bin/sh -c at the end ("" = none)
  std::chrono::milliseconds notify_timeout{std::chrono::seconds(30)};
  bool preserve_status = false;  // on timeout, exit with the job's status, not 124/137
  // Receives the guard's own lines (never the job's output, which goes straight through).
  std::function<void(const std::string& line)> say;
};

enum class GuardOutcome {
  kSucceeded,    // the job exited 0
  kFailed,       // the job exited non-zero
  kSignaled,     // the job died of a signal the guard did not send
  kTimedOut,     // the timeout fired; the group was stopped
  kInterrupted,  // the guard got SIGINT/SIGTERM/SIGHUP and stopped the group
  kBlocked,      // a live process holds F; nothing was run
  kCannotRun,    // the job exists but cannot be executed
  kNotFound,     // the job was not found
  kGuardFailed,  // the guard itself failed (lease, fork, ...)
};
// "succeeded", "failed", "signaled", "timed_out", "interrupted", "blocked", "cannot_run",
// "not_found", "guard_failed": the value of WARDEN_GUARD_STATUS for the notifier.
const char* guard_outcome_name(GuardOutcome outcome);

struct GuardRunResult {
  GuardOutcome outcome = GuardOutcome::kGuardFailed;
  int exit_code = kExitGuardFailed;  // what `warden guard run` exits with
  int job_exit_code = -1;            // the job's own code when it exited
  int job_signal = 0;                // the signal that ended the job, if one did
  int guard_signal = 0;              // the signal the guard received (kInterrupted)
  bool killed = false;               // SIGKILL was needed
  std::chrono::milliseconds duration{0};
  uint64_t fencing_token = 0;          // the lease's token while the job ran
  std::vector<std::string> recovered;  // what was recovered before the run
  std::string message;                 // the refusal or failure, for kBlocked / kGuardFailed
};

// Runs the job under the guard (see the file comment): pre-check and lease, the job in its
// own process group with output unchanged, SIGINT/SIGTERM/SIGHUP forwarded to the group,
// timeout -> TERM to the group, KILL after kill_after, every descendant stopped before
// return (the guard is a child subreaper), the lease released on every path, then the
// notifier. Blocks until all of that is done. Does not throw: failures are outcomes
// (kGuardFailed with message). Events: guard.blocked, guard.recovered, guard.timeout,
// guard.finished.
GuardRunResult guard_run(const GuardRunOptions& options);

}  // namespace warden
