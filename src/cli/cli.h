// The CLI's shared pieces: global options, the command-group table entry, output helpers.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace warden::cli {

// Options every command sees (set before any command callback runs).
struct GlobalOptions {
  std::string data_dir;   // --data-dir, WARDEN_DATA_DIR, default ./data
  std::string log_file;   // --log-file
  bool log_json = false;  // --log-json
  std::string lock_dir() const { return data_dir + "/locks"; }
};

// A command's callback stores its exit code here; main() returns it.
struct RunContext {
  GlobalOptions globals;
  int exit_code = 0;
};

// One row of the command table: a group ("lock", "sync", ...) with its subcommands.
struct CommandGroup {
  const char* name;
  const char* summary;
  void (*add)(CLI::App& group, RunContext& context);
};

// Command groups, each in its own file (lock_commands.cc, ...).
void add_sync_commands(CLI::App& group, RunContext& context);      // sync_commands.cc
void add_sample_commands(CLI::App& group, RunContext& context);    // sample_commands.cc
void add_lock_commands(CLI::App& group, RunContext& context);      // lock_commands.cc
void add_guard_commands(CLI::App& group, RunContext& context);     // guard_commands.cc
void add_block_commands(CLI::App& group, RunContext& context);     // block_commands.cc
void add_source_commands(CLI::App& group, RunContext& context);    // source_commands.cc
void add_pipeline_commands(CLI::App& group, RunContext& context);  // pipeline_commands.cc
// `pipeline work` and `pipeline reprocess-failed`, added by add_pipeline_commands.
void add_pipeline_work_commands(CLI::App& group, RunContext& context);  // pipeline_work_commands.cc

// Whether stdin and stdout are a terminal (for prompts and progress bars).
bool stdin_is_terminal();
bool stdout_is_terminal();
// Asks "question [y/N]" on the terminal; false when not a terminal or not "y"/"yes".
bool confirm(const std::string& question);
// A duration like "120m", "30s", "2h", "500ms", or plain seconds "90". Throws
// InvalidArgumentError.
double parse_duration_seconds(const std::string& text);

}  // namespace warden::cli
