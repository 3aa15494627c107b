// `warden pipeline work|reprocess-failed`: the worker half of seed 002's pipeline (its Step
// Functions + Glue job): claim pending manifests, convert them to Parquet, record the outcome.
//
// Any number of `work` processes, on one host or several sharing a PostgreSQL store, may run
// at once: each claim is exclusive and fenced, a dead worker's claim expires and is taken over.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli.h"
#include "warden/error.h"
#include "warden/pipeline.h"
#include "warden/pipeline_worker.h"
#include "warden/process.h"

namespace warden::cli {

namespace {

using Json = nlohmann::json;
using pipeline::Pipeline;
using pipeline::PipelineWorker;
using pipeline::WorkResult;

struct WorkArgs {
  std::string store;
  bool once = false;
  bool loop = false;
  int max_attempts = 3;
  std::string claim_lease = "60s";
  std::string poll = "2s";
  int threads = 0;
  bool json = false;
  std::string id;
};

std::chrono::milliseconds duration_option(const std::string& text) {
  return std::chrono::milliseconds(static_cast<int64_t>(parse_duration_seconds(text) * 1000.0));
}

pipeline::PipelineOptions pipeline_options(const RunContext& context, const WorkArgs& args) {
  pipeline::PipelineOptions options;
  options.data_dir = context.globals.data_dir;
  options.store = args.store;
  return options;
}

void add_store_option(CLI::App* command, WorkArgs& args) {
  command
      ->add_option("--store", args.store,
                   "State store: sqlite:PATH or postgresql://... (default: WARDEN_STORE, "
                   "then <data-dir>/pipeline/state.sqlite)")
      ->envname("WARDEN_STORE");
}

Json result_json(const WorkResult& r) {
  Json out = {{"id", r.id}, {"status", r.status}, {"attempts", r.attempts}, {"seconds", r.seconds}};
  if (r.status == pipeline::kManifestCompleted) {
    out["output"] = r.output;
    out["rows"] = r.rows;
    out["bytes"] = r.bytes;
    out["sha256"] = r.checksum;
  } else {
    out["error"] = r.error;
  }
  return out;
}

void print_result(const WorkResult& r) {
  if (r.status == pipeline::kManifestCompleted) {
    std::printf("completed  %s  %llu rows -> %s (%.2fs)\n", r.id.c_str(),
                static_cast<unsigned long long>(r.rows), r.output.c_str(), r.seconds);
  } else {
    std::printf("%-9s  %s  attempt %lld: %s\n", r.status.c_str(), r.id.c_str(),
                static_cast<long long>(r.attempts), r.error.c_str());
  }
  std::fflush(stdout);
}

void add_work(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<WorkArgs>();
  CLI::App* command = group.add_subcommand(
      "work", "Claim pending manifests and convert each into one Parquet file");
  auto* once = command->add_flag("--once", args->once,
                                 "Work until no manifest is claimable, then exit (default)");
  command->add_flag("--loop", args->loop, "Keep working, polling for new manifests")
      ->excludes(once);
  command
      ->add_option("--max-attempts", args->max_attempts,
                   "Attempts per manifest before it is failed (default 3)")
      ->check(CLI::Range(1, 1000000));
  command->add_option("--claim-lease", args->claim_lease,
                      "How long a claim lasts without a heartbeat (default 60s)");
  command->add_option("--poll", args->poll, "With --loop: wait between polls (default 2s)");
  command->add_option("--threads", args->threads, "DuckDB threads (default: one per core)")
      ->check(CLI::Range(0, 1024));
  add_store_option(command, *args);
  command->add_flag("--json", args->json,
                    "Print results as JSON (--once: one object; --loop: one line per manifest)");
  command->footer(
      "Example:\n"
      "  warden pipeline work --once\n"
      "  warden pipeline work --loop --store postgresql://pipeline@db/warden\n"
      "Each manifest is claimed exclusively (pending, or processing with an expired claim),\n"
      "its inputs verified against the manifest, converted into\n"
      "<data-dir>/pipeline/parquet/<date>/<id>.parquet and marked completed under the claim's\n"
      "fencing token. A failing conversion goes back to pending until --max-attempts, then\n"
      "failed; fix the cause and run 'warden pipeline reprocess-failed'. --loop stops after\n"
      "the current manifest on SIGINT/SIGTERM.\n"
      "Exit codes: 0 every manifest handled completed, 1 one failed for good (or error).");
  command->callback([args, &context] {
    // --loop: SIGINT/SIGTERM are caught, not acted on, from the start (opening the store and
    // DuckDB takes a while): the loop ends between manifests, never mid-publication.
    std::optional<SignalForwarder> signals;
    if (args->loop) signals.emplace();
    pipeline::WorkerOptions options;
    options.max_attempts = args->max_attempts;
    options.claim_lease = duration_option(args->claim_lease);
    options.threads = args->threads;
    Pipeline pipeline(pipeline_options(context, *args));
    PipelineWorker worker(pipeline, options);
    bool any_failed = false;
    auto note = [&](const WorkResult& r) {
      any_failed = any_failed || r.status == pipeline::kManifestFailed;
      if (!args->json) {
        print_result(r);
      } else if (args->loop) {
        std::cout << result_json(r).dump() << std::endl;
      }
    };
    if (args->loop) {
      worker.work_loop([&signals] { return signals->last_forwarded() != 0; },
                       duration_option(args->poll), note);
    } else {
      std::vector<WorkResult> results = worker.work_until_idle(note);
      if (args->json) {
        Json list = Json::array();
        std::map<std::string, int> counts;
        for (const WorkResult& r : results) {
          list.push_back(result_json(r));
          ++counts[r.status];
        }
        std::cout
            << Json{{"writer", worker.writer_id()}, {"results", list}, {"counts", counts}}.dump(2)
            << std::endl;
      } else if (results.empty()) {
        std::printf("no manifest to work on\n");
      }
    }
    context.exit_code = any_failed ? kExitError : kExitOk;
  });
}

void add_reprocess_failed(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<WorkArgs>();
  CLI::App* command = group.add_subcommand(
      "reprocess-failed", "Put failed manifests back to pending (after fixing their inputs)");
  command->add_option("--id", args->id, "Only this manifest (default: every failed one)");
  add_store_option(command, *args);
  command->add_flag("--json", args->json, "Print the result as JSON");
  command->footer(
      "Example:\n"
      "  warden pipeline reprocess-failed --id 2026-01-15-0123456789abcdef\n"
      "  warden pipeline work --once\n"
      "Each input is read again: a file fixed since it was registered gets its new size and\n"
      "checksum in the manifest file and in its record. Attempts restart at 0.");
  command->callback([args, &context] {
    Pipeline pipeline(pipeline_options(context, *args));
    PipelineWorker worker(pipeline);
    std::vector<pipeline::Reprocessed> done =
        worker.reprocess_failed(args->id.empty() ? std::nullopt : std::optional(args->id));
    if (args->json) {
      Json list = Json::array();
      for (const auto& r : done) {
        list.push_back(
            {{"id", r.id}, {"manifest", r.manifest_path}, {"changed_files", r.changed_files}});
      }
      std::cout << Json{{"reprocessed", list}}.dump(2) << std::endl;
    } else {
      for (const auto& r : done) {
        std::printf("%s back to pending (%zu fixed input(s) re-recorded)\n", r.id.c_str(),
                    r.changed_files.size());
      }
      std::printf("%zu manifest(s) back to pending%s\n", done.size(),
                  done.empty() ? "" : "; run 'warden pipeline work --once' to convert them");
    }
    context.exit_code = kExitOk;
  });
}

}  // namespace

void add_pipeline_work_commands(CLI::App& group, RunContext& context) {
  add_work(group, context);
  add_reprocess_failed(group, context);
}

}  // namespace warden::cli
