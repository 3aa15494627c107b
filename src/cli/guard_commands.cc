// `warden guard run|status|cleanup`: the process guard for DuckDB jobs (seed 004).
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/guard.h"

namespace warden::cli {

namespace {

std::chrono::milliseconds to_millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000.0)));
}

struct RunArgs {
  std::string db;
  std::string timeout;
  std::string kill_after = "30s";
  std::string notify_cmd;
  bool preserve_status = false;
  std::vector<std::string> command;
};

struct StatusArgs {
  std::string db;
  bool json = false;
};

struct CleanupArgs {
  std::string db;
  bool yes = false;
  std::string signal = "TERM";
  std::string grace = "10s";
};

void add_run(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run = group.add_subcommand("run", "Run a job that writes a DuckDB file, guarded");
  run->add_option("--db", args->db, "The DuckDB database file the job writes")->required();
  run->add_option("--timeout", args->timeout,
                  "Stop the job after this long (120m, 2h, 90s); exit 124");
  run->add_option("--kill-after", args->kill_after,
                  "After SIGTERM, SIGKILL the job's group if it is still running (exit 137)");
  run->add_option("--notify-cmd", args->notify_cmd,
                  "Shell command run once at the end with WARDEN_GUARD_STATUS, "
                  "WARDEN_GUARD_EXIT_CODE, WARDEN_GUARD_DURATION_SECONDS, ... in its env");
  run->add_flag("--preserve-status", args->preserve_status,
                "On timeout, exit with the job's own status instead of 124/137");
  run->add_option("command", args->command, "The job: -- CMD ARGS...")->required();
  run->footer(
      "Example:\n"
      "  warden guard run --db data/liquidations.duckdb --timeout 120m --kill-after 30s \\\n"
      "    --notify-cmd 'curl -s -d \"$WARDEN_GUARD_STATUS\" $HOOK' -- python3 ingest.py\n"
      "Exit codes (as coreutils timeout): the job's code, 128+N if it died of signal N,\n"
      "1 blocked by a live holder, 124 timed out, 125 the guard failed, 126 cannot run,\n"
      "127 not found, 137 SIGKILL was needed.\n"
      "Output: the job's stdout and stderr pass through unchanged. warden writes to stderr\n"
      "only lines starting 'warden guard: ', and only when there is something to say\n"
      "(blocked, recovered, timeout, signal, failure). Events (guard.blocked, guard.timeout,\n"
      "guard.recovered, guard.finished) go to --log-file, or to stderr with --log-json.");
  run->callback([args, &context] {
    GuardRunOptions options;
    try {
      options.db = args->db;
      options.argv = args->command;
      if (!args->timeout.empty()) {
        options.timeout = to_millis(parse_duration_seconds(args->timeout));
      }
      options.kill_after = to_millis(parse_duration_seconds(args->kill_after));
    } catch (const Error& e) {
      std::fprintf(stderr, "warden guard: %s\n", e.what());
      context.exit_code = kExitGuardFailed;
      return;
    }
    // The job's stdout and stderr are its own (a pipeline parses them): warden adds to
    // stderr only its "warden guard: " lines, and only when something needs saying. Events
    // go to --log-file, and to stderr only when asked for with --log-json.
    EventSinkOptions sinks;
    sinks.log_file = context.globals.log_file;
    sinks.stderr_format = context.globals.log_json ? EventSinkOptions::StderrFormat::kJson
                                                   : EventSinkOptions::StderrFormat::kNone;
    configure_events(sinks);
    options.notify_command = args->notify_cmd;
    options.preserve_status = args->preserve_status;
    options.say = [](const std::string& line) {
      std::fprintf(stderr, "warden guard: %s\n", line.c_str());
      std::fflush(stderr);
    };
    GuardRunResult result = guard_run(options);
    context.exit_code = result.exit_code;
  });
}

void add_status(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* status =
      group.add_subcommand("status", "Who holds a DuckDB file: lease, DuckDB lock, WAL");
  status->add_option("--db", args->db, "The DuckDB database file")->required();
  status->add_flag("--json", args->json, "One JSON object");
  status->footer(
      "Example:\n  warden guard status --db data/liquidations.duckdb --json\n"
      "Exit codes: 0 free, 2 held by a live process, 3 a crash left a stale lease or a WAL.");
  status->callback([args, &context] {
    GuardStatus status = inspect_guard(args->db);
    if (args->json) {
      std::cout << guard_status_json(status).dump(2) << "\n";
    } else {
      std::cout << format_guard_status(status);
    }
    context.exit_code = status.held()                                  ? kExitLockHeld
                        : (status.stale_lease() || status.crash_wal()) ? kExitVerifyFailed
                                                                       : kExitOk;
  });
}

void add_cleanup(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<CleanupArgs>();
  CLI::App* cleanup = group.add_subcommand(
      "cleanup", "Stop stuck holders, remove a stale lease, replay a WAL left by a crash");
  cleanup->add_option("--db", args->db, "The DuckDB database file")->required();
  cleanup->add_flag("--yes", args->yes,
                    "Do not ask: stop every holder, and set aside a WAL DuckDB cannot replay");
  cleanup->add_option("--signal", args->signal, "First signal to each holder (then SIGKILL)");
  cleanup->add_option("--grace", args->grace, "How long to wait before SIGKILL");
  cleanup->footer(
      "Example:\n  warden guard cleanup --db data/liquidations.duckdb --yes\n"
      "Exit codes: 0 the database is free and has no WAL left, 1 something remains.");
  cleanup->callback([args, &context] {
    GuardCleanupOptions options;
    options.db = args->db;
    options.yes = args->yes;
    auto signal = signal_number(args->signal);
    if (!signal) throw InvalidArgumentError("guard cleanup --signal " + args->signal + ": unknown");
    options.signal = *signal;
    options.grace = to_millis(parse_duration_seconds(args->grace));
    options.confirm = [](const std::string& question) { return confirm(question); };
    options.say = [](const std::string& line) {
      std::string text = line;
      if (!text.empty() && text.back() == '\n') text.pop_back();
      std::cout << text << std::endl;
    };
    GuardCleanupReport report = guard_cleanup(options);
    context.exit_code = report.clean() ? kExitOk : kExitError;
  });
}

}  // namespace

void add_guard_commands(CLI::App& group, RunContext& context) {
  add_run(group, context);
  add_status(group, context);
  add_cleanup(group, context);
}

}  // namespace warden::cli
