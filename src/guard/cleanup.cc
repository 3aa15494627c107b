// `warden guard cleanup`: stop what holds a database, remove a stale lease, replay the WAL.
#include <algorithm>
#include <thread>

#include "warden/events.h"
#include "warden/guard.h"
#include "warden/process.h"

namespace warden {

bool GuardCleanupReport::clean() const {
  return left_running.empty() && !after.held() && !after.stale_lease() && !after.wal_exists &&
         after.lease.verdict != LockVerdict::kMalformed &&
         (!wal || wal->outcome != WalReplayResult::Outcome::kOpenFailed);
}

namespace {

// Whether the process we judged a holder is gone. A zombie holds no files or locks, but a
// zombie leader whose other threads are still exiting (DuckDB runs many) does: wait for
// them too. A pid with another start time is a reused pid, not our holder.
bool is_gone(pid_t pid, uint64_t start_time) {
  auto stat = process_stat(pid);
  return !stat || stat->start_time != start_time || (stat->state == 'Z' && stat->threads <= 1);
}

bool wait_gone(pid_t pid, uint64_t start_time, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!is_gone(pid, start_time)) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

GuardCleanupReport guard_cleanup(const GuardCleanupOptions& options) {
  auto say = [&](const std::string& line) {
    if (options.say) options.say(line);
  };
  auto ask = [&](const std::string& question) {
    if (options.yes) return true;
    return options.confirm ? options.confirm(question) : false;
  };
  GuardCleanupReport report;
  report.before = inspect_guard(options.db);
  const GuardPaths& paths = report.before.paths;
  say("Checking " + paths.db);
  say(format_guard_status(report.before));

  // Guards first: a guard stopped with TERM stops its own job and releases its lease.
  std::vector<DbHolder> targets;
  for (const DbHolder& holder : report.before.holders) {
    if (holder.blocks()) targets.push_back(holder);
  }
  std::stable_sort(targets.begin(), targets.end(), [](const DbHolder& a, const DbHolder& b) {
    return a.holds_guard_lease && !b.holds_guard_lease;
  });
  for (const DbHolder& holder : targets) {
    auto start = process_start_time(holder.pid);
    if (!start) continue;  // gone already (its guard stopped it)
    if (!ask("Stop pid " + std::to_string(holder.pid) + " (" + holder.command + ", running " +
             format_elapsed(holder.elapsed_seconds) + ")?")) {
      say("left running: pid " + std::to_string(holder.pid));
      report.left_running.push_back(holder.pid);
      continue;
    }
    say("sending " + signal_name(options.signal) + " to pid " + std::to_string(holder.pid));
    bool gone = !signal_process(holder.pid, *start, options.signal) ||
                wait_gone(holder.pid, *start, options.grace);
    bool killed = false;
    if (!gone) {
      say("pid " + std::to_string(holder.pid) + " still running after " +
          format_elapsed(std::chrono::duration<double>(options.grace).count()) +
          ": sending SIGKILL");
      killed = signal_process(holder.pid, *start, signal_number("KILL").value_or(9));
      gone = wait_gone(holder.pid, *start, std::chrono::seconds(10));
    }
    if (!gone) {
      say("pid " + std::to_string(holder.pid) + " would not die (state D?): left running");
      report.left_running.push_back(holder.pid);
      continue;
    }
    report.stopped.push_back(holder.pid);
    if (killed) report.killed.push_back(holder.pid);
    say("stopped pid " + std::to_string(holder.pid) + (killed ? " (SIGKILL was needed)" : ""));
    emit_event(EventLevel::kWarning, "guard.cleanup.stopped",
               "stopped pid " + std::to_string(holder.pid) + " holding " + paths.db,
               {{"db", paths.db},
                {"pid", holder.pid},
                {"command", holder.command},
                {"elapsed_seconds", holder.elapsed_seconds},
                {"killed", killed}});
  }

  GuardStatus now = inspect_guard(options.db);
  if (now.stale_lease()) {
    ForceUnlockResult removed =
        force_unlock(paths.lock_dir, paths.lock_name, false, guard_lock_options());
    report.lease_removed = removed.removed;
    say(removed.removed ? "removed the stale guard lease " + paths.lock_file
                        : "stale lease not removed: " + removed.message);
    if (removed.removed) {
      emit_event(EventLevel::kWarning, "guard.recovered",
                 "removed the stale guard lease of " + paths.db,
                 {{"db", paths.db},
                  {"what", "stale_lease"},
                  {"previous_pid", now.lease.record ? now.lease.record->pid : 0},
                  {"previous_token", now.lease.record ? now.lease.record->token : 0}});
    }
    now = inspect_guard(options.db);
  }

  if (now.wal_exists && !now.held()) {
    say("WAL " + paths.wal + " was left by a crash: opening the database once so DuckDB " +
        "replays it and CHECKPOINT merges it");
    WalReplayResult wal = replay_wal(paths, options.yes);
    if (wal.outcome == WalReplayResult::Outcome::kCorruptKept) {
      say("DuckDB cannot replay " + paths.wal + ": " + wal.error);
      if (ask("Move " + paths.wal + " aside to " + paths.wal +
              ".corrupt.<timestamp> and open the database without it? The transactions in it "
              "will NOT be in the database.")) {
        wal = replay_wal(paths, true);
      }
    }
    switch (wal.outcome) {
      case WalReplayResult::Outcome::kNoWal:
      case WalReplayResult::Outcome::kReplayed:
        say("WAL replayed and checkpointed into " + paths.db);
        emit_event(EventLevel::kInfo, "guard.recovered",
                   "replayed the WAL left by a crash into " + paths.db,
                   {{"db", paths.db}, {"what", "crash_wal"}});
        break;
      case WalReplayResult::Outcome::kCorruptKept:
        say("left in place (never deleted). To open the database without it: warden guard "
            "cleanup --db " +
            shell_quote(paths.db) +
            " --yes  (it moves the WAL aside; its transactions will NOT be in the database)");
        break;
      case WalReplayResult::Outcome::kCorruptSetAside:
        say("DuckDB could not replay the WAL (" + wal.error + ").\nIt was moved to " +
            wal.set_aside_path + " and the database was opened without it.\n" +
            "THE TRANSACTIONS IN THAT WAL ARE NOT IN THE DATABASE. Keep the file: it is the " +
            "only copy of them.");
        break;
      case WalReplayResult::Outcome::kOpenFailed:
        say("the database does not open: " + wal.error);
        break;
    }
    report.wal = wal;
  }
  report.after = inspect_guard(options.db);
  say(report.clean() ? "Cleanup complete: nothing holds " + paths.db + " and no WAL is left"
                     : "Cleanup incomplete:\n" + format_guard_status(report.after));
  return report;
}

}  // namespace warden
