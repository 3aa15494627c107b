// `warden sync full|incremental|status|verify`: datasets into crash-safe, verified Parquet.
//
// Every command that writes (full, incremental, verify: it quarantines) holds the dataset's
// lock for the whole run; exit 2 when another writer holds it past --wait. status never
// takes a lock: an operator must be able to look while a sync runs.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "cli.h"
#include "warden/duckdb.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/lock.h"
#include "warden/source.h"
#include "warden/sync.h"

namespace warden::cli {

namespace {

using Json = nlohmann::json;

struct SyncArgs {
  std::string source;
  std::string config;
  std::string datasets_file;
  std::vector<std::string> datasets;
  bool all = false;
  bool json = false;
  std::string wait = "30s";
  int start_year = 0;  // 0: the dataset's own start year
  int end_year = 0;    // 0: the source's last year
  int threads = 0;     // verify workers, 0: one per core
};

// The config file, then the catalog: built-in datasets, the config's, then --datasets.
struct Setup {
  SyncConfig config;
  DatasetCatalog catalog = DatasetCatalog::builtin();
};
Setup load_setup(const SyncArgs& args) {
  Setup setup;
  setup.config = load_sync_config(args.config);
  if (!setup.config.datasets_file.empty()) setup.catalog.load_toml(setup.config.datasets_file);
  if (!args.datasets_file.empty()) setup.catalog.load_toml(args.datasets_file);
  return setup;
}

// Datasets that have a manifest in the data directory, sorted.
std::vector<std::string> manifested_datasets(const std::string& data_dir) {
  std::set<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir + "/manifests", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || entry.path().extension() != ".json") continue;
    names.insert(entry.path().stem().string());
  }
  return {names.begin(), names.end()};
}

enum class Selection { kCatalog, kManifested };

std::vector<std::string> select_datasets(const SyncArgs& args, const Setup& setup,
                                         const std::string& data_dir, Selection all_means,
                                         const std::string& command) {
  if (args.all == !args.datasets.empty()) {
    throw InvalidArgumentError(command + ": give --dataset NAME (repeatable) or --all");
  }
  if (!args.all) {
    for (const std::string& name : args.datasets) validate_dataset_name(name);
    return args.datasets;
  }
  if (all_means == Selection::kCatalog) return setup.catalog.names();
  std::vector<std::string> names = manifested_datasets(data_dir);
  if (names.empty()) {
    throw Error(ErrorCode::kNotFound, command + " --all: no dataset has a manifest under " +
                                          data_dir + "/manifests; run 'warden sync full --all'");
  }
  return names;
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1000 && unit < 4) {
    value /= 1000;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

// Per partition: a progress line on a terminal, otherwise one JSON event.
class ProgressReporter {
 public:
  explicit ProgressReporter(bool log_json) : bar_(::isatty(STDERR_FILENO) == 1 && !log_json) {}
  void operator()(const PartitionProgress& p) const {
    if (!bar_) {
      emit_event(EventLevel::kInfo, "sync.partition.committed",
                 p.dataset + " " + std::to_string(p.year) + ": " + std::to_string(p.rows) +
                     " rows (" + std::to_string(p.index) + "/" + std::to_string(p.count) + ")",
                 {{"dataset", p.dataset},
                  {"year", p.year},
                  {"index", p.index},
                  {"count", p.count},
                  {"rows", p.rows},
                  {"rows_total", p.rows_total},
                  {"rows_per_second", p.rows_per_second},
                  {"eta_seconds", p.eta_seconds}});
      return;
    }
    constexpr int kWidth = 24;
    const int filled = p.count ? static_cast<int>(kWidth * p.index / p.count) : kWidth;
    std::fprintf(stderr, "\r%-12s [%s%s] %d (%zu/%zu)  %llu rows  %.0f rows/s  ETA %.0fs\x1b[K",
                 p.dataset.c_str(), std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), p.year, p.index, p.count,
                 static_cast<unsigned long long>(p.rows_total), p.rows_per_second, p.eta_seconds);
    if (p.index == p.count) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool bar_;
};

// Runs fn(token, check_lock) for each dataset under its lock. A failure of one dataset is
// reported and the others still run; the exit code is the first failure's.
template <typename Fn>
int for_each_locked(const RunContext& context, const SyncArgs& args,
                    const std::vector<std::string>& datasets, const std::string& command, Fn fn) {
  const auto wait =
      std::chrono::milliseconds(static_cast<int64_t>(parse_duration_seconds(args.wait) * 1000.0));
  int exit_code = kExitOk;
  for (const std::string& dataset : datasets) {
    try {
      AtomicLock lock(context.globals.lock_dir(), dataset, wait);
      auto check_lock = [&lock, &dataset, &command] {
        if (lock.lost()) {
          throw LockRecoveryError(command + " " + dataset +
                                  ": the dataset lock was lost (recovered or force-unlocked by "
                                  "someone else); stopped before committing more. Check "
                                  "'warden lock status' and rerun");
        }
      };
      int code = fn(dataset, lock.token(), check_lock);
      if (exit_code == kExitOk) exit_code = code;
    } catch (const Error& e) {
      std::fprintf(stderr, "warden: %s\n", e.what());
      if (exit_code == kExitOk) exit_code = exit_code_for(e);
    }
  }
  return exit_code;
}

void add_common_options(CLI::App* command, SyncArgs& args, bool with_source) {
  command->add_option("--dataset", args.datasets, "Dataset name (repeatable): crsp, ...");
  command->add_flag("--all", args.all, "Every dataset");
  if (with_source) {
    command->add_option("--source", args.source,
                        "duckdb:PATH (default: WARDEN_SOURCE, then the config file's source)");
  }
  command->add_option("--config", args.config,
                      "Config file (TOML; default WARDEN_CONFIG, then "
                      "~/.config/warden/config.toml)");
  command->add_option("--datasets", args.datasets_file,
                      "Extra datasets from a TOML file ([datasets.NAME] query, date_column)");
  command->add_flag("--json", args.json, "Print results as JSON on stdout");
}

SyncOptions sync_options(const RunContext& context, const Setup& setup) {
  SyncOptions options;
  options.data_dir = context.globals.data_dir;
  if (setup.config.full_slo) options.full_slo = *setup.config.full_slo;
  if (setup.config.incremental_slo) options.incremental_slo = *setup.config.incremental_slo;
  options.on_progress = ProgressReporter(context.globals.log_json);
  return options;
}

Json result_json(const SyncResult& r) {
  return {{"dataset", r.dataset},
          {"operation", r.operation},
          {"years_written", r.years_written},
          {"years_skipped", r.years_skipped},
          {"rows_written", r.rows_written},
          {"bytes_written", r.bytes_written},
          {"resumed", r.resumed},
          {"seconds", r.seconds},
          {"generation", r.manifest.generation},
          {"total_rows", r.manifest.total_rows()}};
}

void print_result(const SyncResult& r, bool json) {
  if (json) {
    std::cout << result_json(r).dump() << std::endl;
    return;
  }
  std::printf("%s: %s sync wrote %zu partition(s), %llu rows, %s in %.1f s", r.dataset.c_str(),
              r.operation.c_str(), r.years_written.size(),
              static_cast<unsigned long long>(r.rows_written), human_bytes(r.bytes_written).c_str(),
              r.seconds);
  if (!r.years_skipped.empty()) {
    std::printf("; %zu %s", r.years_skipped.size(),
                r.resumed ? "already done (resumed)" : "unchanged");
  }
  std::printf("; generation %llu holds %zu files, %llu rows\n",
              static_cast<unsigned long long>(r.manifest.generation), r.manifest.files.size(),
              static_cast<unsigned long long>(r.manifest.total_rows()));
  std::fflush(stdout);
}

// full and incremental share everything but the call.
void add_sync_run(CLI::App& group, RunContext& context, bool full) {
  auto args = std::make_shared<SyncArgs>();
  CLI::App* command = group.add_subcommand(
      full ? "full" : "incremental",
      full ? "Pull every year of a dataset into Parquet (resumes an interrupted run)"
           : "Re-pull the current year, missing years, and years the source revised");
  add_common_options(command, *args, /*with_source=*/true);
  command->add_option("--wait", args->wait,
                      "Wait this long for the dataset lock (30s, 2m; 0 = fail at once: exit 2)");
  if (full) {
    command->add_option("--start-year", args->start_year, "First year (default: dataset's)")
        ->check(CLI::Range(1900, 2200));
    command->add_option("--end-year", args->end_year, "Last year (default: source's last)")
        ->check(CLI::Range(1900, 2200));
    command->footer(
        "Example:\n"
        "  warden sync full --dataset crsp --start-year 2000 --source duckdb:sample.duckdb\n"
        "  warden sync full --all\n"
        "Exit codes: 0 done, 1 failed (the message says why; rerun resumes), 2 the dataset\n"
        "lock is held, 64 usage. Progress: a bar on a terminal, else one JSON event per\n"
        "partition (sync.partition.committed) on stderr.");
  } else {
    command->footer(
        "Example:\n"
        "  warden sync incremental --all --source duckdb:sample.duckdb\n"
        "--all means every dataset with a manifest. Exit codes as for 'sync full'.");
  }
  command->callback([args, &context, full] {
    Setup setup = load_setup(*args);
    const std::string name = full ? "sync full" : "sync incremental";
    std::vector<std::string> datasets =
        select_datasets(*args, setup, context.globals.data_dir,
                        full ? Selection::kCatalog : Selection::kManifested, name);
    for (const std::string& d : datasets) setup.catalog.get(d);  // unknown names fail first
    std::unique_ptr<Source> source =
        open_source(resolve_source_spec(args->source, setup.config.source));
    context.exit_code = for_each_locked(
        context, *args, datasets, name,
        [&](const std::string& dataset, const LockToken& token, auto check_lock) {
          SyncOptions options = sync_options(context, setup);
          options.check_lock = check_lock;
          SyncManager manager(std::move(options), setup.catalog, source.get());
          SyncResult r =
              full ? manager.full_sync(
                         dataset,
                         args->start_year ? std::optional<int>(args->start_year) : std::nullopt,
                         args->end_year ? std::optional<int>(args->end_year) : std::nullopt, token)
                   : manager.incremental_sync(dataset, token);
          print_result(r, args->json);
          return kExitOk;
        });
  });
}

void add_verify(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<SyncArgs>();
  CLI::App* command = group.add_subcommand(
      "verify", "Recompute every checksum; find missing, extra and mismatched files");
  add_common_options(command, *args, /*with_source=*/false);
  command->add_option("--wait", args->wait, "Wait this long for the dataset lock");
  command->add_option("--threads", args->threads, "Checksum workers (default: one per core)")
      ->check(CLI::Range(0, 256));
  command->footer(
      "Example:\n"
      "  warden sync verify --all\n"
      "Never reads the source. Mismatched files are moved to quarantine/ (a reader must not\n"
      "read data the manifest does not promise); rerun 'sync full' for those years.\n"
      "Exit codes: 0 clean, 3 findings (sync.checksum.mismatch / sync.manifest.mismatch\n"
      "events), 1 error (no manifest, unreadable manifest), 2 lock held.");
  command->callback([args, &context] {
    Setup setup = load_setup(*args);
    std::vector<std::string> datasets = select_datasets(*args, setup, context.globals.data_dir,
                                                        Selection::kManifested, "sync verify");
    Json reports = Json::array();
    int code = for_each_locked(
        context, *args, datasets, "sync verify",
        [&](const std::string& dataset, const LockToken& token, auto) {
          SyncOptions options = sync_options(context, setup);
          options.verify_threads = args->threads;
          SyncManager manager(std::move(options), setup.catalog, nullptr);
          VerifyReport report = manager.verify_integrity(dataset, token);
          if (args->json) {
            reports.push_back(report.to_json());
          } else {
            std::printf(
                "%s: generation %llu, %zu files, %s checked in %.2f s: %s\n", dataset.c_str(),
                static_cast<unsigned long long>(report.generation), report.files_checked,
                human_bytes(report.bytes_checked).c_str(), report.seconds,
                report.clean() ? "clean"
                               : (std::to_string(report.findings.size()) + " finding(s)").c_str());
            for (const VerifyFinding& f : report.findings) {
              std::printf(
                  "  %-8s %s: %s%s\n", verify_finding_name(f.kind), f.path.c_str(),
                  f.detail.c_str(),
                  f.quarantine_dir.empty() ? "" : (" (moved to " + f.quarantine_dir + ")").c_str());
            }
          }
          return report.clean() ? kExitOk : kExitVerifyFailed;
        });
    if (args->json) std::cout << reports.dump(2) << std::endl;
    context.exit_code = code;
  });
}

void add_status(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<SyncArgs>();
  CLI::App* command =
      group.add_subcommand("status", "What each dataset holds, its last run, and its lock");
  command->add_option("--dataset", args->datasets, "Only these datasets (repeatable)");
  command->add_option("--config", args->config, "Config file (for user datasets)");
  command->add_option("--datasets", args->datasets_file, "Extra datasets from a TOML file");
  command->add_flag("--json", args->json, "One JSON object instead of text");
  command->footer(
      "Example:\n"
      "  warden sync status --json\n"
      "Takes no lock (safe during a sync). Exit codes: 0, or 3 when a manifest or\n"
      "checkpoint is unreadable (the problem names the fix).");
  command->callback([args, &context] {
    Setup setup = load_setup(*args);
    std::vector<std::string> datasets = args->datasets;
    if (datasets.empty()) {
      std::set<std::string> all;
      for (const std::string& n : setup.catalog.names()) all.insert(n);
      for (const std::string& n : manifested_datasets(context.globals.data_dir)) all.insert(n);
      datasets.assign(all.begin(), all.end());
    }
    SyncOptions options;
    options.data_dir = context.globals.data_dir;
    SyncManager manager(options, setup.catalog, nullptr);
    Json out = {{"data_dir", context.globals.data_dir}, {"datasets", Json::array()}};
    bool problems = false;
    if (!args->json) {
      std::printf("%-12s %4s %6s %11s %10s %-9s %-20s %-22s %s\n", "dataset", "gen", "files",
                  "rows", "bytes", "years", "committed", "last run", "lock");
    }
    for (const std::string& dataset : datasets) {
      validate_dataset_name(dataset);
      DatasetStatus s = manager.status(dataset);
      LockStatus lock = inspect_file_lock(context.globals.lock_dir(), dataset);
      problems = problems || !s.problem.empty();
      Json entry = s.to_json();
      entry["lock"] = {{"verdict", lock_verdict_name(lock.verdict)}, {"reason", lock.reason}};
      if (lock.record) entry["lock"]["pid"] = lock.record->pid;
      out["datasets"].push_back(entry);
      if (args->json) continue;
      std::string years = "-", committed = "never", last_run = "-";
      std::string gen = "-", files = "-", rows = "-", bytes = "-";
      if (s.manifest) {
        const Manifest& m = *s.manifest;
        gen = std::to_string(m.generation);
        files = std::to_string(m.files.size());
        rows = std::to_string(m.total_rows());
        bytes = human_bytes(m.total_bytes());
        if (!m.files.empty()) {
          years = std::to_string(m.files.front().year) + "-" + std::to_string(m.files.back().year);
        }
        committed = m.committed_at.substr(0, 19);
      }
      if (s.progress) last_run = s.progress->operation + " " + s.progress->status;
      std::printf("%-12s %4s %6s %11s %10s %-9s %-20s %-22s %s\n", dataset.c_str(), gen.c_str(),
                  files.c_str(), rows.c_str(), bytes.c_str(), years.c_str(), committed.c_str(),
                  last_run.c_str(), lock_verdict_name(lock.verdict));
      if (!s.problem.empty()) std::printf("  problem: %s\n", s.problem.c_str());
      if (s.progress && s.progress->status == "failed") {
        std::printf("  last run failed: %s\n", s.progress->error.c_str());
      }
    }
    if (args->json) std::cout << out.dump(2) << std::endl;
    context.exit_code = problems ? kExitVerifyFailed : kExitOk;
  });
}

void add_query(CLI::App& group, RunContext& context) {
  auto sql = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* command = group.add_subcommand(
      "query", "Run DuckDB SQL over the synced datasets (each a view over its manifest)");
  command->add_option("sql", *sql, "The SQL; each synced dataset is a view of its name")
      ->required();
  command->add_flag("--json", *json, "Rows as JSON objects, one per line");
  command->footer(
      "Example:\n"
      "  warden sync query \"SELECT year(date) AS y, count(*) FROM crsp GROUP BY y ORDER BY "
      "y\"\n"
      "Each view names the files of the dataset's committed manifest (not a glob), so the\n"
      "query reads one committed generation and is safe while a sync runs. Takes no lock.\n"
      "Output: tab-separated with a header line (NULL for nulls), or --json.");
  command->callback([sql, json, &context] {
    DataLayout layout(context.globals.data_dir);
    duckdb::Database db = duckdb::Database::in_memory({});
    duckdb::Connection connection = db.connect();
    for (const std::string& dataset : manifested_datasets(layout.root())) {
      std::optional<Manifest> manifest = load_manifest(layout, dataset);
      std::optional<std::string> relation =
          manifest ? manifest_relation(layout, *manifest) : std::nullopt;
      if (!relation) continue;
      connection.execute("CREATE VIEW " + duckdb::quote_identifier(dataset) + " AS SELECT * FROM " +
                         *relation);
    }
    duckdb::Result result = connection.query(*sql);
    std::vector<duckdb::Column> columns = result.columns();
    if (!*json) {
      for (size_t c = 0; c < columns.size(); ++c) {
        std::printf("%s%s", c ? "\t" : "", columns[c].name.c_str());
      }
      std::printf("\n");
    }
    for (size_t row = 0; row < result.row_count(); ++row) {
      Json object = Json::object();
      for (size_t c = 0; c < columns.size(); ++c) {
        const bool null = result.is_null(c, row);
        const std::string value = null ? "" : result.get_string(c, row);
        if (*json) {
          object[columns[c].name] = null ? Json(nullptr) : Json(value);
        } else {
          std::printf("%s%s", c ? "\t" : "", null ? "NULL" : value.c_str());
        }
      }
      if (*json) {
        std::printf("%s\n", object.dump().c_str());
      } else {
        std::printf("\n");
      }
    }
    context.exit_code = kExitOk;
  });
}

}  // namespace

void add_sync_commands(CLI::App& group, RunContext& context) {
  add_sync_run(group, context, /*full=*/true);
  add_sync_run(group, context, /*full=*/false);
  add_status(group, context);
  add_verify(group, context);
  add_query(group, context);
}

}  // namespace warden::cli
