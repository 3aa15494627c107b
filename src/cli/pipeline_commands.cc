// `warden pipeline ingest|flush|trace|check-locks`: the batching half of seed 002's pipeline
// (work and reprocess-failed are in pipeline_work_commands.cc).
//
// Every command opens the store named by --store (or WARDEN_STORE; default SQLite under the
// data directory). ingest and flush take per-date leases and exit 2 when a date stayed locked;
// trace and check-locks only read (check-locks --clear-expired deletes expired rows only).
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/lease_lock.h"
#include "warden/pipeline.h"

namespace warden::cli {

namespace {

using Json = nlohmann::json;
using pipeline::Pipeline;
using pipeline::PipelineOptions;

struct PipelineArgs {
  std::string store;
  int threshold = 10;
  std::string lease = "300s";
  std::string date_pattern, date_field, today;
  bool json = false;
  bool all = false;
  bool clear_expired = false;
  std::string file;
  std::vector<std::string> paths;
};

void add_store_option(CLI::App* command, PipelineArgs& args) {
  command
      ->add_option("--store", args.store,
                   "State store: sqlite:PATH or postgresql://... (default: WARDEN_STORE, "
                   "then <data-dir>/pipeline/state.sqlite)")
      ->envname("WARDEN_STORE");
}

void add_batch_options(CLI::App* command, PipelineArgs& args) {
  command
      ->add_option("--threshold", args.threshold,
                   "Pending files of one date that make a manifest (default 10)")
      ->check(CLI::Range(1, 1000000));
  command->add_option("--lease", args.lease, "The per-date batch lease (TTL; default 300s)");
  command->add_option("--today", args.today,
                      "Treat this YYYY-MM-DD as today (default: today in UTC); older dates "
                      "are flushed below the threshold");
}

PipelineOptions options_for(const RunContext& context, const PipelineArgs& args) {
  PipelineOptions options;
  options.data_dir = context.globals.data_dir;
  options.store = args.store;
  options.threshold = args.threshold;
  options.lease =
      std::chrono::milliseconds(static_cast<int64_t>(parse_duration_seconds(args.lease) * 1000));
  if (options.lease.count() < 3) {
    throw InvalidArgumentError("pipeline: --lease must be at least 3ms, not '" + args.lease + "'");
  }
  options.date_pattern = args.date_pattern;
  options.date_field = args.date_field;
  options.today = args.today;
  return options;
}

Json batch_json(const pipeline::BatchResult& batch) {
  Json manifests = Json::array();
  for (const auto& m : batch.manifests) {
    manifests.push_back({{"id", m.id},
                         {"date", m.date},
                         {"path", m.path},
                         {"files", m.file_count},
                         {"batch_token", m.batch_token}});
  }
  return {{"manifests", manifests},
          {"dates_lock_held", batch.dates_lock_held},
          {"orphan_files_removed", batch.orphan_files_removed},
          {"pending", batch.pending_left}};
}

void print_batch(const pipeline::BatchResult& batch) {
  std::printf("created %zu manifest(s)\n", batch.manifests.size());
  for (const auto& m : batch.manifests) {
    std::printf("  %s  %zu files  %s\n", m.id.c_str(), m.file_count, m.path.c_str());
  }
  for (const std::string& path : batch.orphan_files_removed) {
    std::printf("removed orphan manifest file %s (its files stay pending)\n", path.c_str());
  }
  std::printf("%zu file(s) pending\n", batch.pending_left);
  if (!batch.dates_lock_held.empty()) {
    std::string dates;
    for (const std::string& d : batch.dates_lock_held) dates += " " + d;
    std::printf(
        "not batched, their lease stayed held:%s\n  see who holds it: warden pipeline "
        "check-locks\n",
        dates.c_str());
  }
}

int batch_exit_code(const pipeline::BatchResult& batch) {
  return batch.dates_lock_held.empty() ? kExitOk : kExitLockHeld;
}

void add_ingest(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<PipelineArgs>();
  CLI::App* command = group.add_subcommand(
      "ingest", "Register landed NDJSON files (idempotent), then batch dates that are due");
  command->add_option("paths", args->paths, "Files, or directories walked for *.ndjson|json|jsonl")
      ->required();
  add_store_option(command, *args);
  add_batch_options(command, *args);
  command->add_option("--date-pattern", args->date_pattern,
                      "Regex over the path with one capture group: the YYYY-MM-DD date "
                      "(default: the first YYYY-MM-DD in the path)");
  command->add_option("--date-field", args->date_field,
                      "Date each file by this field of its first record instead");
  command->add_flag("--json", args->json, "Print the result as JSON");
  command->footer(
      "Example:\n"
      "  warden pipeline ingest landing/ --threshold 10\n"
      "  warden pipeline ingest 'landing/x.ndjson' --date-pattern 'dt=([0-9-]{10})'\n"
      "A file already registered with the same content is counted, not added again; one\n"
      "whose content changed is refused (exit 3) and nothing is registered. Then, per date,\n"
      "the batcher takes the lease pipeline.batch.<date> and writes manifests of --threshold\n"
      "files; dates before today are flushed whole.\n"
      "Exit codes: 0 done, 2 a date's lease stayed held (see check-locks), 3 a file changed,\n"
      "1 error, 64 usage.");
  command->callback([args, &context] {
    Pipeline pipeline(options_for(context, *args));
    pipeline::IngestResult r = pipeline.ingest(args->paths);
    if (args->json) {
      Json out = batch_json(r.batch);
      out["registered"] = r.registered;
      out["already_known"] = r.already_known;
      std::cout << out.dump(2) << std::endl;
    } else {
      std::printf("registered %zu new file(s), %zu already known\n", r.registered, r.already_known);
      print_batch(r.batch);
    }
    context.exit_code = batch_exit_code(r.batch);
  });
}

void add_flush(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<PipelineArgs>();
  CLI::App* command = group.add_subcommand(
      "flush", "Force manifest creation: batch every due date now (the orphan flush)");
  add_store_option(command, *args);
  add_batch_options(command, *args);
  command->add_flag("--all", args->all, "Also flush today's dates below the threshold");
  command->add_flag("--json", args->json, "Print the result as JSON");
  command->footer(
      "Example:\n"
      "  warden pipeline check-locks --clear-expired && warden pipeline flush\n"
      "Dates with at least --threshold pending files get manifests; dates before today are\n"
      "flushed whole; --all flushes today's too. Manifest files left by a crashed batch are\n"
      "rebuilt (same id) or removed, and missing manifest files of records are rebuilt.\n"
      "Exit codes: 0 done, 2 a date's lease stayed held, 1 error.");
  command->callback([args, &context] {
    Pipeline pipeline(options_for(context, *args));
    pipeline::BatchResult r = pipeline.batch(args->all ? pipeline::FlushMode::kAllDates
                                                       : pipeline::FlushMode::kThreshold);
    if (args->json) {
      std::cout << batch_json(r).dump(2) << std::endl;
    } else {
      print_batch(r);
    }
    context.exit_code = batch_exit_code(r);
  });
}

std::string duration_text(std::chrono::milliseconds ms) {
  int64_t s = std::llabs(ms.count()) / 1000;
  char text[48];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lldh %02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%lldm %02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(text, sizeof text, "%.1fs", std::llabs(ms.count()) / 1000.0);
  }
  return text;
}

bool expired(const LockStatus& s) { return s.expires_in.count() <= 0; }

Json lease_json(const LockStatus& s) {
  Json out = {{"name", s.name},
              {"state", expired(s) ? "expired" : "active"},
              {"verdict", lock_verdict_name(s.verdict)},
              {"reason", s.reason},
              {"expires_in_ms", s.expires_in.count()},
              {"resolve_command", s.resolve_command}};
  if (s.record) {
    out["holder"] = {{"writer_id", s.record->writer_id},
                     {"hostname", s.record->hostname},
                     {"pid", s.record->pid},
                     {"token", s.record->token},
                     {"alive", s.holder_alive}};
  }
  return out;
}

void add_check_locks(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<PipelineArgs>();
  CLI::App* command = group.add_subcommand(
      "check-locks", "Show the store's leases: active or expired, for how long, held by whom");
  add_store_option(command, *args);
  command->add_flag("--clear-expired", args->clear_expired,
                    "Delete the leases that have expired (never an active one)");
  command->add_flag("--json", args->json, "Print the leases as JSON");
  command->footer(
      "Example:\n"
      "  warden pipeline check-locks\n"
      "  warden pipeline check-locks --clear-expired\n"
      "An expired lease blocks nobody (the next batch takes it over), but it says a holder\n"
      "died; --clear-expired removes it. An active lease of a dead holder blocks its date\n"
      "until it expires: wait, or use the force-unlock command shown.\n"
      "Exit codes: 0, 1 error.");
  command->callback([args, &context] {
    PipelineOptions options;
    options.data_dir = context.globals.data_dir;
    options.store = args->store;
    std::shared_ptr<sql::Database> db = pipeline::open_pipeline_store(options);
    std::vector<LockStatus> leases = lease_status(*db);
    std::vector<LockStatus> cleared;
    if (args->clear_expired) {
      cleared = clear_expired_leases(*db);
      for (const LockStatus& s : cleared) {
        emit_event(EventLevel::kInfo, "pipeline.lock.cleared",
                   "cleared the expired lease " + s.name, {{"lease", s.name}});
      }
    }
    if (args->json) {
      Json out = {{"store", db->location()}, {"leases", Json::array()}, {"cleared", Json::array()}};
      for (const LockStatus& s : leases) out["leases"].push_back(lease_json(s));
      for (const LockStatus& s : cleared) out["cleared"].push_back(s.name);
      std::cout << out.dump(2) << std::endl;
      context.exit_code = kExitOk;
      return;
    }
    std::printf("store: %s\n", db->location().c_str());
    if (leases.empty()) std::printf("no leases\n");
    size_t active = 0, stuck = 0;
    for (const LockStatus& s : leases) {
      const bool is_expired = expired(s);
      (is_expired ? stuck : active) += 1;
      std::string holder = "?";
      if (s.record) {
        holder = s.record->writer_id + " on " + s.record->hostname + " pid " +
                 std::to_string(s.record->pid) + " token " + std::to_string(s.record->token) +
                 (s.holder_alive ? " (alive)" : "");
      }
      std::printf(
          "%-32s %-8s %-22s %s\n", s.name.c_str(), is_expired ? "EXPIRED" : "active",
          ((is_expired ? "stuck for " : "expires in ") + duration_text(s.expires_in)).c_str(),
          holder.c_str());
      if (!is_expired && s.verdict != LockVerdict::kHeld) {
        std::printf("  %s\n  it blocks its date until it expires; to free it now: %s\n",
                    s.reason.c_str(), s.resolve_command.c_str());
      }
    }
    if (args->clear_expired) {
      std::printf("cleared %zu expired lease(s)\n", cleared.size());
      for (const LockStatus& s : cleared) std::printf("  %s\n", s.name.c_str());
    } else if (stuck > 0) {
      std::printf(
          "%zu expired lease(s): clear them with warden pipeline check-locks "
          "--clear-expired\n",
          stuck);
    }
    (void)active;
    context.exit_code = kExitOk;
  });
}

void print_trace(const pipeline::TraceReport& r) {
  auto count = [](const std::map<std::string, int64_t>& m, const char* k) {
    auto it = m.find(k);
    return static_cast<long long>(it == m.end() ? 0 : it->second);
  };
  long long files = 0, manifests = 0;
  for (const auto& [k, v] : r.files_by_status) files += v;
  for (const auto& [k, v] : r.manifests_by_status) manifests += v;
  std::printf("store: %s\n", r.store.c_str());
  std::printf("files:            %lld (pending %lld, manifested %lld)\n", files,
              count(r.files_by_status, "pending"), count(r.files_by_status, "manifested"));
  std::printf(
      "MANIFEST records: %lld (pending %lld, processing %lld, completed %lld, failed %lld)\n",
      manifests, count(r.manifests_by_status, "pending"),
      count(r.manifests_by_status, "processing"), count(r.manifests_by_status, "completed"),
      count(r.manifests_by_status, "failed"));
  std::printf("manifest files:   %lld\nParquet outputs:  %lld\n",
              static_cast<long long>(r.manifest_files), static_cast<long long>(r.parquet_files));
  if (!r.dates.empty()) std::printf("by date:\n");
  for (const auto& d : r.dates) {
    std::printf("  %s  pending %lld  manifested %lld  manifests %lld\n", d.date.c_str(),
                static_cast<long long>(d.pending), static_cast<long long>(d.manifested),
                static_cast<long long>(d.manifests));
  }
  std::printf("leases: %zu\n", r.leases.size());
  for (const LockStatus& s : r.leases) {
    std::printf("  %s %s\n", s.name.c_str(), expired(s) ? "EXPIRED" : "active");
  }
  std::printf("correlation:\n");
  for (const auto& c : r.correlations) {
    std::printf("  %-4s %s: expected %lld, found %lld\n", c.ok() ? "ok" : "DIFF", c.name.c_str(),
                static_cast<long long>(c.expected), static_cast<long long>(c.actual));
  }
  if (r.findings.empty()) {
    std::printf("problems: none\n");
    return;
  }
  std::printf("problems: %zu\n", r.findings.size());
  for (const auto& f : r.findings) {
    std::printf("  [%s] %s\n      why: %s\n      fix: %s\n", f.kind.c_str(), f.subject.c_str(),
                f.detail.c_str(), f.fix.c_str());
  }
}

void print_file_trace(const pipeline::FileTrace& t) {
  std::printf("file: %s\n", t.key.c_str());
  if (!t.registered) {
    std::printf("  not registered: warden pipeline ingest %s\n", t.key.c_str());
    return;
  }
  std::printf("  record:   %s, date %s, %lld bytes, sha256 %s\n", t.status.c_str(), t.date.c_str(),
              static_cast<long long>(t.size), t.checksum.c_str());
  if (t.status == pipeline::kFilePending) {
    std::printf("  waiting for its batch (threshold files of %s, or the orphan flush)\n",
                t.date.c_str());
  }
  if (t.manifest_record) {
    std::printf("  manifest: %s (%s), file %s%s\n", t.manifest_id.c_str(),
                t.manifest_status.c_str(), t.manifest_path.c_str(),
                !t.manifest_file_exists     ? " MISSING"
                : t.listed_in_manifest_file ? " lists it"
                                            : " does NOT list it");
    std::printf("  output:   %s%s\n", t.output.c_str(), t.output_exists ? "" : " (not written)");
  }
  for (const std::string& p : t.problems) std::printf("  problem: %s\n", p.c_str());
}

void add_trace(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<PipelineArgs>();
  CLI::App* command = group.add_subcommand(
      "trace", "Pipeline health: counts, correlation, and what looks wrong and why");
  add_store_option(command, *args);
  command->add_option("--threshold", args->threshold, "The batch threshold in use (default 10)")
      ->check(CLI::Range(1, 1000000));
  command->add_option("--today", args->today, "Treat this YYYY-MM-DD as today");
  command->add_option("--file", args->file, "Follow one file end to end instead");
  command->add_flag("--json", args->json, "Print the report as JSON");
  command->footer(
      "Example:\n"
      "  warden pipeline trace\n"
      "  warden pipeline trace --file landing/2024-01-15/a.ndjson --json\n"
      "Reads the store and the files under <data-dir>/pipeline; changes nothing. Each problem\n"
      "names its cause and the command that resolves it.\n"
      "Exit codes: 0 clean, 3 problems found, 1 error.");
  command->callback([args, &context] {
    Pipeline pipeline(options_for(context, *args));
    if (!args->file.empty()) {
      pipeline::FileTrace t = pipeline.trace_file(args->file);
      if (args->json) {
        std::cout << t.to_json().dump(2) << std::endl;
      } else {
        print_file_trace(t);
      }
      context.exit_code = t.registered && t.problems.empty() ? kExitOk : kExitVerifyFailed;
      return;
    }
    pipeline::TraceReport report = pipeline.trace();
    if (args->json) {
      std::cout << report.to_json().dump(2) << std::endl;
    } else {
      print_trace(report);
    }
    context.exit_code = report.clean() ? kExitOk : kExitVerifyFailed;
  });
}

}  // namespace

void add_pipeline_commands(CLI::App& group, RunContext& context) {
  add_ingest(group, context);
  add_flush(group, context);
  add_trace(group, context);
  add_check_locks(group, context);
  add_pipeline_work_commands(group, context);
}

}  // namespace warden::cli
