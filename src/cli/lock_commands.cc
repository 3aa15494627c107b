// Placeholder until the lock commands land (the lock work replaces this file).
#include "cli.h"
#include "warden/error.h"

namespace warden::cli {

void add_lock_commands(CLI::App& group, RunContext&) {
  group.add_subcommand("status", "Show every lock")->callback([] {
    throw Error(ErrorCode::kInternal, "lock status: not built yet");
  });
}

}  // namespace warden::cli
