// `warden guard run`: pre-check and lease, the job in its own process group, timeout, signal
// forwarding, every descendant stopped, the lease released on every path, then the notifier.
#include <algorithm>
#include <cerrno>
#include <optional>

#include "notify.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/guard.h"
#include "warden/process.h"

namespace warden {

const char* guard_outcome_name(GuardOutcome outcome) {
  switch (outcome) {
    case GuardOutcome::kSucceeded:
      return "succeeded";
    case GuardOutcome::kFailed:
      return "failed";
    case GuardOutcome::kSignaled:
      return "signaled";
    case GuardOutcome::kTimedOut:
      return "timed_out";
    case GuardOutcome::kInterrupted:
      return "interrupted";
    case GuardOutcome::kBlocked:
      return "blocked";
    case GuardOutcome::kCannotRun:
      return "cannot_run";
    case GuardOutcome::kNotFound:
      return "not_found";
    case GuardOutcome::kGuardFailed:
      return "guard_failed";
  }
  return "unknown";
}

namespace {

using Say = std::function<void(const std::string&)>;

double seconds(std::chrono::milliseconds d) { return std::chrono::duration<double>(d).count(); }

void refuse(GuardRunResult& result, const GuardStatus& status, const Say& say) {
  result.outcome = GuardOutcome::kBlocked;
  result.exit_code = kExitBlocked;
  result.message = blocked_message(status);
  say(result.message);
  nlohmann::json holders = nlohmann::json::array();
  for (const DbHolder& h : status.holders) {
    if (h.blocks()) {
      holders.push_back({{"pid", h.pid}, {"command", h.command}, {"elapsed", h.elapsed_seconds}});
    }
  }
  emit_event(EventLevel::kWarning, "guard.blocked",
             status.paths.db + " is held by a live process; the job was not started",
             {{"db", status.paths.db}, {"holders", holders}});
}

// What the pre-check found that a crash left behind, now recovered or about to be.
void report_recovered(GuardRunResult& result, const GuardStatus& before, const GuardStatus& now,
                      const Say& say) {
  if (before.stale_lease() && before.lease.record) {
    const LockRecord& r = *before.lease.record;
    std::string line = "recovered the stale lease of pid " + std::to_string(r.pid) + " (" +
                       lock_verdict_name(before.lease.verdict) + ", token " +
                       std::to_string(r.token) + ", held since " + format_utc(r.acquired_at) +
                       "): " + before.lease.reason;
    result.recovered.push_back(line);
    say(line);
  }
  if (now.crash_wal()) {
    std::string line = "found " + now.paths.wal + " (" + std::to_string(now.wal_size) +
                       " bytes) with no live holder: a crash left it; DuckDB replays it when "
                       "the job opens the database";
    result.recovered.push_back(line);
    say(line);
  }
  if (result.recovered.empty()) return;
  emit_event(EventLevel::kWarning, "guard.recovered",
             "recovered what a crashed holder of " + now.paths.db + " left behind",
             {{"db", now.paths.db},
              {"stale_lease", before.stale_lease()},
              {"previous_pid", before.lease.record ? before.lease.record->pid : 0},
              {"crash_wal", now.crash_wal()},
              {"details", result.recovered}});
}

// SIGINT, SIGTERM, SIGHUP, SIGQUIT ask the guard to stop; SIGUSR1/2 are only passed on.
bool is_stop_signal(int signal) {
  for (const char* name : {"INT", "TERM", "HUP", "QUIT"}) {
    if (signal != 0 && signal_number(name) == signal) return true;
  }
  return false;
}

// Waits for the job; on timeout stops its group; a forwarded signal starts the kill-after
// clock too, so a job that ignores it cannot hold the guard forever. Sleeps until the job
// ends, a signal is caught or a deadline comes: no periodic wake-ups while a long job runs.
void supervise(ChildProcess& child, const SignalForwarder& forwarder,
               const GuardRunOptions& options, GuardRunResult& result, const Say& say) {
  const auto started = SteadyClock::now();
  std::optional<SteadyClock::time_point> kill_at;
  for (;;) {
    const auto now = SteadyClock::now();
    auto next = now + std::chrono::hours(24);
    if (options.timeout && !result.guard_signal) next = std::min(next, started + *options.timeout);
    if (kill_at) next = std::min(next, *kill_at);
    auto wait = std::max(std::chrono::ceil<std::chrono::milliseconds>(next - now),
                         std::chrono::milliseconds(0));
    if (auto status = child.wait_for(wait, forwarder.wake_fd())) {
      result.job_exit_code = status->exited ? status->code : -1;
      result.job_signal = status->exited ? 0 : status->signal;
      return;
    }
    if (int forwarded = forwarder.last_forwarded();
        is_stop_signal(forwarded) && !result.guard_signal) {
      result.guard_signal = forwarded;
      kill_at = SteadyClock::now() + options.kill_after;
      say("received " + signal_name(forwarded) + ": passed it to the job's process group");
    }
    if (kill_at && SteadyClock::now() >= *kill_at) {
      say("the job is still running " + format_elapsed(seconds(options.kill_after)) + " after " +
          signal_name(result.guard_signal) + ": sending SIGKILL to its group");
      auto stopped = child.terminate_group(std::chrono::milliseconds(0));
      result.killed = stopped.needed_kill;
      result.job_signal = stopped.status.exited ? 0 : stopped.status.signal;
      result.job_exit_code = stopped.status.exited ? stopped.status.code : -1;
      return;
    }
    if (options.timeout && !result.guard_signal &&
        SteadyClock::now() - started >= *options.timeout) {
      say("TIMEOUT after " + format_elapsed(seconds(*options.timeout)) +
          ": sending SIGTERM to the job's process group, SIGKILL after " +
          format_elapsed(seconds(options.kill_after)));
      emit_event(EventLevel::kError, "guard.timeout",
                 "the job on " + options.db + " ran past its timeout and was stopped",
                 {{"db", options.db},
                  {"timeout_seconds", seconds(*options.timeout)},
                  {"pid", child.pid()}});
      auto stopped = child.terminate_group(options.kill_after);
      result.outcome = GuardOutcome::kTimedOut;
      result.killed = stopped.needed_kill;
      result.job_exit_code = stopped.status.exited ? stopped.status.code : -1;
      result.job_signal = stopped.status.exited ? 0 : stopped.status.signal;
      return;
    }
  }
}

void decide_exit_code(const GuardRunOptions& options, GuardRunResult& result) {
  const int job_code = result.job_signal ? 128 + result.job_signal : result.job_exit_code;
  if (result.outcome == GuardOutcome::kTimedOut) {
    // coreutils timeout: 124, or 137 when KILL was needed; --preserve-status: the job's.
    result.exit_code = options.preserve_status ? job_code
                       : result.killed         ? kExitKilled
                                               : kExitTimedOut;
  } else if (result.guard_signal) {
    // The guard itself was told to stop: report that, whatever the job said on its way out.
    result.outcome = GuardOutcome::kInterrupted;
    result.exit_code = 128 + result.guard_signal;
  } else if (result.job_signal) {
    result.outcome = GuardOutcome::kSignaled;
    result.exit_code = job_code;
  } else {
    result.outcome = job_code == 0 ? GuardOutcome::kSucceeded : GuardOutcome::kFailed;
    result.exit_code = job_code;
  }
}

void run_job(const GuardRunOptions& options, const GuardPaths& paths, const LockToken& token,
             SignalForwarder& signals, GuardRunResult& result, const Say& say) {
  // A stop signal that came while we checked and took the lease: do not start the job.
  if (int caught = signals.last_forwarded(); is_stop_signal(caught)) {
    result.guard_signal = caught;
    result.outcome = GuardOutcome::kInterrupted;
    result.exit_code = 128 + caught;
    say("received " + signal_name(caught) + " before the job started: not starting it");
    return;
  }
  ChildOptions child_options;
  child_options.argv = options.argv;
  child_options.env = {{"WARDEN_GUARD_DB", paths.db},
                       {"WARDEN_GUARD_TOKEN", std::to_string(token.token)}};
  // Children that are not the job's (an in-process caller's own); none in the CLI, and then
  // no /proc scan is needed.
  const std::vector<pid_t> before = has_children() ? list_children() : std::vector<pid_t>{};
  std::optional<ChildProcess> child;
  try {
    child.emplace(ChildProcess::start(child_options));
  } catch (const IoError& e) {
    result.outcome = e.errno_value() == ENOENT ? GuardOutcome::kNotFound : GuardOutcome::kCannotRun;
    result.exit_code = e.errno_value() == ENOENT ? kExitNotFound : kExitCannotRun;
    result.message = e.what();
    say(result.message);
    return;
  }
  WARDEN_FAILPOINT("guard.run.before_forwarding");
  // A signal caught while the job was being started is passed on now.
  signals.forward_to(*child);
  // Our children now: the job and its watchdog. Everything else that appears later is an
  // orphaned descendant of the job.
  std::vector<pid_t> keep = before;
  if (child->watchdog_pid() > 0) keep.push_back(child->watchdog_pid());
  WARDEN_FAILPOINT("guard.run.job_started");
  supervise(*child, signals, options, result, say);
  // The job is reaped: its group id may be reused, so signals are only recorded from here.
  signals.stop_forwarding();
  decide_exit_code(options, result);
  DescendantSweep sweep = stop_descendants(child->pid(), options.kill_after, keep);
  if (sweep.found) {
    say(std::string("stopped processes the job left behind") +
        (sweep.needed_kill ? " (SIGKILL was needed)" : ""));
  }
  if (!sweep.survivors.empty()) {
    say("could not stop " + std::to_string(sweep.survivors.size()) +
        " leftover process(es) (uninterruptible?); see warden guard status --db " +
        shell_quote(paths.db));
  }
}

void guarded(const GuardRunOptions& options, SignalForwarder& signals, GuardRunResult& result,
             const Say& say) {
  if (options.argv.empty()) throw InvalidArgumentError("guard run: no command given after --");
  const GuardPaths paths = guard_paths(options.db);
  // The lease lives beside the database: creating its directory for a mistyped path would
  // scatter .warden-guard directories (and the job would fail to create F there anyway).
  const std::string directory = parent_directory(paths.db);
  if (auto info = stat_path(directory); !info || info->type != FileInfo::Type::kDirectory) {
    throw InvalidArgumentError("guard run --db " + paths.db + ": the directory " + directory +
                               " does not exist");
  }
  // The decision needs the lease, DuckDB's lock and the WAL; only a refusal needs the full
  // list of processes that have F open (it scans every process's fds).
  const GuardStatus before = inspect_guard(paths.db, 0, /*scan_open_files=*/false);
  FileLock lock(paths.lock_dir, paths.lock_name, guard_lock_options());
  std::optional<LockGuard> lease;
  try {
    lease.emplace(lock, std::chrono::milliseconds(0),
                  [db = paths.db](const LockToken& token, const std::string& reason) {
                    emit_event(EventLevel::kError, "guard.lease.lost",
                               "the guard lost its lease on " + db + ": " + reason,
                               {{"db", db}, {"token", token.token}});
                  });
  } catch (const LockAcquisitionError&) {
    refuse(result, inspect_guard(paths.db), say);
    return;
  }
  result.fencing_token = lease->token().token;
  WARDEN_FAILPOINT("guard.run.after_lease");
  // Holding the lease, nobody else can start under the guard; DuckDB's own lock tells
  // whether a process started without warden holds the file.
  GuardStatus now = inspect_guard(paths.db, 0, /*scan_open_files=*/false);
  if (now.duckdb_lock_pid) {
    lease.reset();
    refuse(result, inspect_guard(paths.db), say);
    return;
  }
  report_recovered(result, before, now, say);
  set_child_subreaper(true);
  run_job(options, paths, lease->token(), signals, result, say);
  try {
    lease->release();
  } catch (const Error& e) {
    say(std::string("the lease was no longer ours at the end: ") + e.what());
  }
}

}  // namespace

GuardRunResult guard_run(const GuardRunOptions& options) {
  const auto started = SteadyClock::now();
  Say say = [&](const std::string& line) {
    if (options.say) options.say(line);
  };
  GuardRunResult result;
  // Caught from the very start, so a SIGTERM at any moment (taking the lease, starting the
  // job, sweeping, notifying) cannot kill the guard and leave the job and the lease behind.
  std::optional<SignalForwarder> signals;
  try {
    signals.emplace();
    guarded(options, *signals, result, say);
  } catch (const std::exception& e) {
    // The lease, if taken, was released by LockGuard's destructor on the way out, and the
    // job's group was killed by ChildProcess's.
    if (signals) signals->stop_forwarding();
    result.outcome = GuardOutcome::kGuardFailed;
    result.exit_code = kExitGuardFailed;
    result.message = e.what();
    say(std::string("failed: ") + e.what());
  }
  result.duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
  if (result.outcome != GuardOutcome::kBlocked) {
    emit_event(result.exit_code == 0 ? EventLevel::kInfo : EventLevel::kError, "guard.finished",
               std::string("guarded job on ") + options.db + " " +
                   guard_outcome_name(result.outcome) + " with exit code " +
                   std::to_string(result.exit_code),
               {{"db", options.db},
                {"status", guard_outcome_name(result.outcome)},
                {"exit_code", result.exit_code},
                {"job_signal", result.job_signal},
                {"killed", result.killed},
                {"duration_seconds", seconds(result.duration)},
                {"token", result.fencing_token}});
  }
  guard_internal::run_notifier(options, result, say);
  return result;
}

}  // namespace warden
