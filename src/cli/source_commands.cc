// `warden source check|describe`: is the source reachable, fast enough and readable, and
// what does a table look like there (seed 001's WRDSClient.test_connection/get_table_info).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/posix.h"
#include "warden/postgres.h"
#include "warden/postgres_source.h"
#include "warden/storage.h"
#include "warden/sync.h"

namespace warden::cli {

namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

struct CheckArgs {
  std::string source;
  std::string config;
  std::string datasets_file;
  int late_hour = -1;
  bool json = false;
};

std::string today_utc() { return format_utc(std::chrono::system_clock::now()).substr(0, 10); }

// Who may use a pgpass file that libpq silently ignores: say so before anything fails.
std::optional<std::string> pgpass_problem() {
  const char* passfile = std::getenv("PGPASSFILE");
  const char* home = std::getenv("HOME");
  std::string path = passfile && *passfile ? passfile : std::string(home ? home : "") + "/.pgpass";
  auto info = stat_path(path);
  if (!info || (info->mode & 077) == 0) return std::nullopt;
  return path + " is readable by others, so libpq ignores it: run 'chmod 0600 " + path + "'";
}

// The reason a dataset's query cannot be read, from the server's SQLSTATE.
std::string dataset_problem(const pg::PostgresError& e) {
  if (e.sqlstate() == "42501") {
    return "permission denied: your account lacks SELECT on it (WRDS: subscribe to the "
           "product or ask your WRDS representative)";
  }
  if (e.sqlstate() == "42P01" || e.sqlstate() == "3F000") {
    return "not found on this server (check the schema and table name)";
  }
  return e.what();
}

// sync.data.late: a dataset whose manifest was last committed before today's deadline hour,
// once that hour has passed. Returns the late datasets.
std::vector<std::string> late_datasets(const std::string& data_dir,
                                       const std::vector<std::string>& names, int late_hour) {
  std::vector<std::string> late;
  if (late_hour < 0) return late;
  auto now = std::chrono::system_clock::now();
  std::string now_text = format_utc(now);
  char deadline[32];
  std::snprintf(deadline, sizeof deadline, "%sT%02d:00:00", now_text.substr(0, 10).c_str(),
                late_hour);
  if (now_text < deadline) return late;  // the deadline has not come yet today
  DataLayout layout(data_dir);
  for (const std::string& name : names) {
    auto manifest = load_manifest(layout, name);
    if (!manifest || manifest->committed_at >= deadline) continue;
    late.push_back(name);
    emit_event(EventLevel::kWarning, "sync.data.late",
               "dataset " + name + " was last synced at " + manifest->committed_at +
                   ", before today's deadline " + std::string(deadline) +
                   "Z: run 'warden sync incremental --dataset " + name + "'",
               {{"dataset", name},
                {"committed_at", manifest->committed_at},
                {"deadline", std::string(deadline) + "Z"}});
  }
  return late;
}

int check_postgres(const std::string& spec, const DatasetCatalog& catalog, const CheckArgs& args,
                   const std::string& data_dir) {
  pg::Settings settings = postgres_settings_for(spec);
  Json report = {{"source", "postgresql:" + pg::redact_conninfo(settings.conninfo)}};
  std::vector<std::string> problems;
  if (auto problem = pgpass_problem()) problems.push_back(*problem);
  if (auto days = pg::check_credential_expiry(settings, today_utc())) {
    report["credential_days_left"] = *days;
    if (*days < 30) {
      problems.push_back("the password expires in " + std::to_string(*days) + " days (" +
                         settings.credential_expires + "): rotate it");
    }
  }
  auto started = SteadyClock::now();
  std::unique_ptr<pg::Connection> connection;
  try {
    connection = std::make_unique<pg::Connection>(settings);
  } catch (const pg::PostgresError& e) {
    report["connected"] = false;
    report["error"] = e.what();
    problems.insert(problems.begin(), e.what());
    report["problems"] = problems;
    if (args.json) {
      std::cout << report.dump(2) << "\n";
    } else {
      std::printf("source:     %s\nconnected:  no\n", report["source"].get<std::string>().c_str());
      for (const auto& p : problems) std::printf("problem:    %s\n", p.c_str());
    }
    return kExitError;
  }
  double connect_ms =
      std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
  std::vector<double> round_trips;
  for (int i = 0; i < 5; ++i) {
    auto t0 = SteadyClock::now();
    connection->query_text("SELECT 1");
    round_trips.push_back(
        std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
  }
  std::sort(round_trips.begin(), round_trips.end());
  report["connected"] = true;
  report["server_version"] = connection->server_version();
  report["connect_ms"] = connect_ms;
  report["latency_ms"] = round_trips[round_trips.size() / 2];
  Json datasets = Json::object();
  bool unreadable = false;
  for (const std::string& name : catalog.names()) {
    const DatasetSpec& spec = catalog.get(name);
    Json entry = {{"query", spec.query}};
    try {
      auto columns = connection->describe(spec.query);
      entry["readable"] = true;
      entry["columns"] = columns.size();
    } catch (const pg::PostgresError& e) {
      unreadable = true;
      entry["readable"] = false;
      entry["problem"] = dataset_problem(e);
    }
    datasets[name] = entry;
  }
  report["datasets"] = datasets;
  auto late = late_datasets(data_dir, catalog.names(), args.late_hour);
  for (const auto& name : late) problems.push_back("dataset " + name + " is late (sync.data.late)");
  report["late"] = late;
  report["problems"] = problems;
  if (args.json) {
    std::cout << report.dump(2) << "\n";
  } else {
    std::printf("source:     %s\n", report["source"].get<std::string>().c_str());
    std::printf("connected:  yes, PostgreSQL %s, connect %.1f ms, round trip %.2f ms\n",
                connection->server_version().c_str(), connect_ms,
                report["latency_ms"].get<double>());
    for (const auto& [name, entry] : datasets.items()) {
      if (entry["readable"].get<bool>()) {
        std::printf("dataset:    %-12s readable (%d columns)\n", name.c_str(),
                    entry["columns"].get<int>());
      } else {
        std::printf("dataset:    %-12s NOT readable: %s\n", name.c_str(),
                    entry["problem"].get<std::string>().c_str());
      }
    }
    for (const auto& p : problems) std::printf("problem:    %s\n", p.c_str());
  }
  return unreadable || !problems.empty() ? kExitVerifyFailed : kExitOk;
}

int check_embedded(const std::string& spec, const DatasetCatalog& catalog, const CheckArgs& args) {
  std::unique_ptr<Source> source = open_source(spec);
  Json report = {{"source", source->describe()}, {"connected", true}};
  Json datasets = Json::object();
  bool unreadable = false;
  for (const std::string& name : catalog.names()) {
    Json entry;
    try {
      entry["columns"] = source->schema(catalog.get(name).query).columns.size();
      entry["readable"] = true;
    } catch (const Error& e) {
      unreadable = true;
      entry["readable"] = false;
      entry["problem"] = e.what();
    }
    datasets[name] = entry;
  }
  report["datasets"] = datasets;
  if (args.json) {
    std::cout << report.dump(2) << "\n";
  } else {
    std::printf("source:     %s\nconnected:  yes\n", source->describe().c_str());
    for (const auto& [name, entry] : datasets.items()) {
      std::printf("dataset:    %-12s %s\n", name.c_str(),
                  entry["readable"].get<bool>()
                      ? "readable"
                      : ("NOT readable: " + entry["problem"].get<std::string>()).c_str());
    }
  }
  return unreadable ? kExitVerifyFailed : kExitOk;
}

void add_check(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* check = group.add_subcommand(
      "check", "Connect to the source and report version, latency, access to each dataset");
  check->add_option("--source", args->source,
                    "wrds, postgresql://..., postgresql:service=NAME or duckdb:PATH "
                    "(default: WARDEN_SOURCE, then the config file's source)");
  check->add_option("--config", args->config,
                    "Config file (default WARDEN_CONFIG, else ~/.config/warden/config.toml)");
  check->add_option("--datasets", args->datasets_file, "Extra datasets from a TOML file");
  check
      ->add_option("--late-hour", args->late_hour,
                   "Report datasets not synced today by this UTC hour (sync.data.late); "
                   "default WARDEN_DATA_LATE_HOUR")
      ->check(CLI::Range(0, 23));
  check->add_flag("--json", args->json, "One JSON object instead of text");
  check->footer(
      "Example:\n"
      "  warden source check --source wrds\n"
      "Exit codes: 0 all good, 1 cannot connect (the message says why and how to fix it),\n"
      "3 connected but a dataset is unreadable, the password expires within 30 days, the\n"
      "pgpass file is ignored, or a dataset is late.");
  check->callback([args, &context] {
    if (args->late_hour < 0) {
      if (const char* hour = std::getenv("WARDEN_DATA_LATE_HOUR"); hour && *hour) {
        args->late_hour = std::atoi(hour);
      }
    }
    SyncConfig config = load_sync_config(args->config);
    std::string spec = resolve_source_spec(args->source, config.source);
    DatasetCatalog catalog = DatasetCatalog::builtin();
    if (!config.datasets_file.empty()) catalog.load_toml(config.datasets_file);
    if (!args->datasets_file.empty()) catalog.load_toml(args->datasets_file);
    context.exit_code = is_postgres_source_spec(spec)
                            ? check_postgres(spec, catalog, *args, context.globals.data_dir)
                            : check_embedded(spec, catalog, *args);
  });
}

void add_describe(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<CheckArgs>();
  auto table = std::make_shared<std::string>();
  CLI::App* describe = group.add_subcommand(
      "describe", "Columns, types, estimated rows and comment of a table or view");
  describe->add_option("table", *table, "SCHEMA.TABLE, e.g. crsp.dsf")->required();
  describe->add_option("--source", args->source, "as for 'source check'");
  describe->add_option("--config", args->config, "as for 'source check'");
  describe->add_flag("--json", args->json, "JSON instead of text");
  describe->footer("Example:\n  warden source describe crsp.dsf --source wrds");
  describe->callback([args, table, &context] {
    size_t dot = table->find('.');
    if (dot == std::string::npos) {
      throw InvalidArgumentError("describe '" + *table + "': expected SCHEMA.TABLE, e.g. crsp.dsf");
    }
    std::string spec = resolve_source_spec(args->source, load_sync_config(args->config).source);
    if (!is_postgres_source_spec(spec)) {
      throw InvalidArgumentError(
          "describe: --source must be a PostgreSQL source (wrds, "
          "postgresql://...); got '" +
          pg::redact_conninfo(spec) + "'");
    }
    pg::Connection connection(postgres_settings_for(spec));
    pg::TableInfo info =
        pg::get_table_info(connection, table->substr(0, dot), table->substr(dot + 1));
    if (args->json) {
      Json columns = Json::array();
      for (const auto& c : info.columns) {
        columns.push_back({{"name", c.name}, {"type", c.type}, {"nullable", c.nullable}});
      }
      Json out = {{"schema", info.schema},
                  {"table", info.table},
                  {"kind", info.kind},
                  {"comment", info.comment},
                  {"columns", columns}};
      out["estimated_rows"] = info.estimated_rows ? Json(*info.estimated_rows) : Json(nullptr);
      std::cout << out.dump(2) << "\n";
    } else {
      std::printf("%s.%s (%s)%s%s\n", info.schema.c_str(), info.table.c_str(), info.kind.c_str(),
                  info.comment.empty() ? "" : ": ", info.comment.c_str());
      if (info.estimated_rows)
        std::printf("estimated rows: %lld\n", static_cast<long long>(*info.estimated_rows));
      for (const auto& c : info.columns) {
        std::printf("  %-24s %s%s\n", c.name.c_str(), c.type.c_str(),
                    c.nullable ? "" : " NOT NULL");
      }
    }
    context.exit_code = kExitOk;
  });
}

}  // namespace

void add_source_commands(CLI::App& group, RunContext& context) {
  add_check(group, context);
  add_describe(group, context);
}

}  // namespace warden::cli
