// warden's entry point: the command table, global options, and the one place errors become
// exit codes.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli.h"
#include "warden/error.h"
#include "warden/events.h"

namespace warden::cli {
namespace {

// The command table (STYLE.md: the CLI is a table). Each group lives in its own file.
const CommandGroup kCommandGroups[] = {
    {"sync", "Sync datasets into crash-safe, verified Parquet", add_sync_commands},
    {"source", "Check the source (WRDS/PostgreSQL) and describe its tables", add_source_commands},
    {"sample", "Create the embedded demo source (synthetic CRSP/Compustat/Fama-French)",
     add_sample_commands},
    {"lock", "Show, run under, and recover single-writer locks", add_lock_commands},
    {"guard", "Run a DuckDB job safely: holder detection, timeout, cleanup", add_guard_commands},
    {"block", "Shared-memory DataBlocks: create, diagnose, recover, validate", add_block_commands},
    {"pipeline", "Batch landed NDJSON files into Parquet under lease locks", add_pipeline_commands},
};

void configure_logging(const GlobalOptions& globals) {
  EventSinkOptions sinks;
  if (globals.log_json) sinks.stderr_format = EventSinkOptions::StderrFormat::kJson;
  sinks.log_file = globals.log_file;
  configure_events(sinks);
}

// The command group a command line names: its first word that is neither one of `app`'s own
// options nor an option's value ("guard" in `warden --data-dir D guard run ...`); nullptr when
// that word is no group (or there is none), and then every group is built, so usage errors are
// CLI11's as ever. Building only the named group's commands matters: building and freeing
// every command's options cost more than many commands' own work (warden guard run -- true:
// about 45% of its user time, measured with perf; bench/README.md).
const CommandGroup* named_group(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return nullptr;
    if (!word.empty() && word[0] == '-') {
      const CLI::Option* option = app.get_option_no_throw(word);
      if (option && option->get_type_size() > 0) ++i;  // its value ("--x=y" is one word)
      continue;
    }
    for (const CommandGroup& group : kCommandGroups) {
      if (word == group.name) return &group;
    }
    return nullptr;
  }
  return nullptr;
}

int run(int argc, char** argv) {
  // Both live until the process ends, never freed: freeing the command tree costs as much as
  // building it, on the path from a guarded job's end to our exit. Static, so that leak
  // checkers see them reachable.
  static RunContext context;
  const char* env_dir = std::getenv("WARDEN_DATA_DIR");
  context.globals.data_dir = env_dir && *env_dir ? env_dir : "./data";

  static CLI::App& app = *new CLI::App{"warden: keeps data pipelines safe from their own crashes"};
  app.name("warden");
  app.require_subcommand(1);
  app.set_version_flag("--version", "warden 0.1.0");
  app.option_defaults()->always_capture_default();
  app.add_option("--data-dir", context.globals.data_dir,
                 "Data directory (default ./data, or WARDEN_DATA_DIR)");
  app.add_option("--log-file", context.globals.log_file, "Append events as JSON lines here");
  app.add_flag("--log-json", context.globals.log_json, "Events on stderr as JSON lines");
  app.footer(
      "Exit codes: 0 ok, 1 error, 2 lock held, 3 verification found problems, 64 usage.\n"
      "Run 'warden COMMAND --help' for a command's options and an example.");
  app.parse_complete_callback([&] { configure_logging(context.globals); });

  const CommandGroup* named = named_group(app, argc, argv);
  for (const CommandGroup& group : kCommandGroups) {
    CLI::App* sub = app.add_subcommand(group.name, group.summary);
    sub->require_subcommand(1);
    if (!named || named == &group) group.add(*sub, context);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  } catch (const Error& e) {
    std::fprintf(stderr, "warden: %s\n", e.what());
    return exit_code_for(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warden: internal error: %s\n", e.what());
    return kExitError;
  }
  return context.exit_code;
}

}  // namespace
}  // namespace warden::cli

int main(int argc, char** argv) { return warden::cli::run(argc, argv); }
