// The notifier: one shell command at the end of a guarded run, told the outcome through its
// environment (seed 004's Discord/n8n hook). Its failure is reported, never propagated.
#include "notify.h"

#include <cmath>
#include <cstdio>

#include "warden/events.h"
#include "warden/process.h"

namespace warden::guard_internal {

std::map<std::string, std::string> notify_environment(const GuardRunOptions& options,
                                                      const GuardRunResult& result) {
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.3f",
                std::chrono::duration<double>(result.duration).count());
  std::string command;
  for (const std::string& arg : options.argv) {
    command += (command.empty() ? "" : " ") + shell_quote(arg);
  }
  return {
      {"WARDEN_GUARD_STATUS", guard_outcome_name(result.outcome)},
      {"WARDEN_GUARD_EXIT_CODE", std::to_string(result.exit_code)},
      {"WARDEN_GUARD_DURATION_SECONDS", duration},
      {"WARDEN_GUARD_DB", options.db},
      {"WARDEN_GUARD_COMMAND", command},
      {"WARDEN_GUARD_SIGNAL", result.job_signal ? signal_name(result.job_signal) : ""},
      {"WARDEN_GUARD_KILLED", result.killed ? "1" : "0"},
      {"WARDEN_GUARD_MESSAGE", result.message},
  };
}

void run_notifier(const GuardRunOptions& options, const GuardRunResult& result,
                  const std::function<void(const std::string&)>& say) {
  if (options.notify_command.empty()) return;
  ChildOptions child_options;
  child_options.argv = {"/bin/sh", "-c", options.notify_command};
  child_options.env = notify_environment(options, result);
  std::string problem;
  try {
    ChildProcess notifier = ChildProcess::start(child_options);
    auto status = notifier.wait_for(options.notify_timeout);
    if (!status) {
      notifier.terminate_group(std::chrono::seconds(2));
      problem = "did not finish within " +
                format_elapsed(std::chrono::duration<double>(options.notify_timeout).count()) +
                " and was stopped";
    } else if (status->shell_code() != 0) {
      problem = "exited with " + std::to_string(status->shell_code());
    }
  } catch (const std::exception& e) {
    problem = std::string("could not start: ") + e.what();
  }
  if (problem.empty()) return;
  say("notifier " + problem + " (the exit code is unchanged)");
  emit_event(EventLevel::kWarning, "guard.notify.failed",
             "the --notify-cmd of the guard for " + options.db + " " + problem,
             {{"db", options.db}, {"notify_cmd", options.notify_command}});
}

}  // namespace warden::guard_internal
