// Private to src/guard/: the end-of-run notifier.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "warden/guard.h"

namespace warden::guard_internal {

// The notifier's environment: WARDEN_GUARD_STATUS (guard_outcome_name), _EXIT_CODE,
// _DURATION_SECONDS, _DB, _COMMAND, _SIGNAL ("SIGTERM" or ""), _KILLED ("0"/"1"), _MESSAGE.
std::map<std::string, std::string> notify_environment(const GuardRunOptions& options,
                                                      const GuardRunResult& result);

// Runs options.notify_command (if any) with /bin/sh -c and that environment, waiting up to
// options.notify_timeout. A failure is said and emitted (guard.notify.failed), never thrown.
void run_notifier(const GuardRunOptions& options, const GuardRunResult& result,
                  const std::function<void(const std::string&)>& say);

}  // namespace warden::guard_internal
