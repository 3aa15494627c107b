// `warden sample create`: the embedded demo source (synthetic CRSP, Compustat, Fama-French).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/source.h"

namespace warden::cli {

namespace {

struct CreateArgs {
  std::string path;
  double scale = 1.0;
  uint64_t seed = 42;
  int first_year = 2000;
  int last_year = 2024;
  bool json = false;
};

}  // namespace

void add_sample_commands(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<CreateArgs>();
  CLI::App* create = group.add_subcommand(
      "create", "Write a synthetic, deterministic WRDS-shaped DuckDB database (the demo source)");
  create->add_option("path", args->path, "The DuckDB file to create (must not exist)")->required();
  create->add_option("--scale", args->scale,
                     "Size: 1 is ~3 million crsp.dsf rows over 2000-2024; 0.01 for tests, 10 "
                     "for benchmarks");
  create->add_option("--seed", args->seed, "Same seed, same rows");
  create->add_option("--first-year", args->first_year, "First year of data")
      ->check(CLI::Range(1926, 2100));
  create->add_option("--last-year", args->last_year, "Last year of data")
      ->check(CLI::Range(1926, 2100));
  create->add_flag("--json", args->json, "Print the row counts as JSON");
  create->footer(
      "Example:\n"
      "  warden sample create sample.duckdb --scale 1 --seed 42\n"
      "  warden sync full --all --source duckdb:sample.duckdb\n"
      "Tables: crsp.dsf (daily stock file), comp.funda (fundamentals annual),\n"
      "ff.factors_daily (Fama-French daily factors with momentum). Exit codes: 0 created,\n"
      "1 could not write it, 64 bad arguments or the file already exists.");
  create->callback([args, &context] {
    if (args->first_year > args->last_year) {
      throw InvalidArgumentError("sample create: --first-year is after --last-year");
    }
    const auto started = std::chrono::steady_clock::now();
    SampleSummary summary = create_sample_database(args->path, {.scale = args->scale,
                                                                .seed = args->seed,
                                                                .first_year = args->first_year,
                                                                .last_year = args->last_year});
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json out = {{"path", args->path},
                          {"scale", args->scale},
                          {"seed", args->seed},
                          {"crsp.dsf", summary.dsf_rows},
                          {"comp.funda", summary.funda_rows},
                          {"ff.factors_daily", summary.factors_rows},
                          {"seconds", seconds}};
    emit_event(EventLevel::kInfo, "sample.created", "created sample source " + args->path, out);
    if (args->json) {
      std::cout << out.dump() << "\n";
    } else {
      std::printf(
          "created %s in %.1f s: crsp.dsf %llu rows, comp.funda %llu rows, ff.factors_daily "
          "%llu rows\nnext: warden sync full --all --source duckdb:%s\n",
          args->path.c_str(), seconds, static_cast<unsigned long long>(summary.dsf_rows),
          static_cast<unsigned long long>(summary.funda_rows),
          static_cast<unsigned long long>(summary.factors_rows), args->path.c_str());
    }
    context.exit_code = kExitOk;
  });
}

}  // namespace warden::cli
