// Placeholder until the sample commands land (that work replaces this file).
#include "cli.h"
#include "warden/error.h"

namespace warden::cli {

void add_sample_commands(CLI::App& group, RunContext&) {
  group.add_subcommand("create", "Not built yet")->callback([] {
    throw Error(ErrorCode::kInternal, "sample: not built yet");
  });
}

}  // namespace warden::cli
