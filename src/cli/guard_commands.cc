// Placeholder until the guard commands land (that work replaces this file).
#include "cli.h"
#include "warden/error.h"

namespace warden::cli {

void add_guard_commands(CLI::App& group, RunContext&) {
  group.add_subcommand("run", "Not built yet")->callback([] {
    throw Error(ErrorCode::kInternal, "guard: not built yet");
  });
}

}  // namespace warden::cli
