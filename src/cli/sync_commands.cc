// Placeholder until the sync commands land (that work replaces this file).
#include "cli.h"
#include "warden/error.h"

namespace warden::cli {

void add_sync_commands(CLI::App& group, RunContext&) {
  group.add_subcommand("full", "Not built yet")->callback([] {
    throw Error(ErrorCode::kInternal, "sync: not built yet");
  });
}

}  // namespace warden::cli
