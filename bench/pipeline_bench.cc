// The pipeline's conversion side by side with DuckDB itself (driven by bench/pipeline_bench.sh).
//   pipeline_bench generate DIR FILES BYTES DATES   NDJSON event files DIR/<date>/events-N.ndjson
//   pipeline_bench duckdb-copy DIR OUT [options]    the peer: one COPY of every file -> OUT
//   pipeline_bench convert DIR OUTDIR [options]     warden's convert_ndjson_to_parquet, one call
//                                                   per batch of --batch files of one date
// options: --threads N (DuckDB threads, default: cores), --batch N (10), --shard I/N (this
// process converts batches I, I+N, ...), --compression C (zstd), --no-union (peer only).
// A plain program (not Google Benchmark): hyperfine times whole processes in the script.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "warden/duckdb.h"
#include "warden/pipeline_worker.h"
#include "warden/posix.h"

namespace {

namespace fs = std::filesystem;
using warden::duckdb::quote_literal;

struct Options {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  size_t batch = 10;
  size_t shard = 0, shards = 1;
  std::string compression = "zstd";
  bool union_by_name = true;
};

Options parse_options(int argc, char** argv, int first) {
  Options options;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::string value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--threads") {
      options.threads = std::stoi(value), ++i;
    } else if (arg == "--batch") {
      options.batch = std::stoul(value), ++i;
    } else if (arg == "--shard") {
      options.shard = std::stoul(value.substr(0, value.find('/')));
      options.shards = std::stoul(value.substr(value.find('/') + 1)), ++i;
    } else if (arg == "--compression") {
      options.compression = value, ++i;
    } else if (arg == "--no-union") {
      options.union_by_name = false;
    } else {
      std::fprintf(stderr, "unknown option %s\n", arg.c_str());
      std::exit(64);
    }
  }
  return options;
}

// Realistic event records: ids, timestamps, strings of varied length, numbers, a nested object
// two levels deep, an array; a few optional keys so files do not all share one schema.
void generate(const std::string& dir, size_t files, size_t bytes, size_t dates) {
  static const char* kTypes[] = {"page_view", "click", "purchase", "signup", "search", "logout"};
  static const char* kOs[] = {"ios", "android", "windows", "macos", "linux"};
  static const char* kCities[] = {"Boston", "Berlin", "Lagos", "Osaka", "Lima", "Pune"};
  std::mt19937_64 random(42);
  for (size_t f = 0; f < files; ++f) {
    const size_t day = 1 + f % dates;
    char date[32];
    std::snprintf(date, sizeof date, "2026-01-%02zu", day);
    const std::string date_dir = dir + "/" + date;
    fs::create_directories(date_dir);
    char name[64];
    std::snprintf(name, sizeof name, "/events-%05zu.ndjson", f);
    std::string text;
    text.reserve(bytes + 1024);
    for (size_t r = 0; text.size() < bytes; ++r) {
      const uint64_t x = random();
      char line[1024];
      int n = std::snprintf(
          line, sizeof line,
          "{\"event_id\":\"%016llx-%04zx\",\"ts\":\"%sT%02d:%02d:%02d.%03dZ\",\"user_id\":%llu,"
          "\"session_id\":\"s-%08llx\",\"event_type\":\"%s\",\"amount\":%.2f,\"quantity\":%d,"
          "\"device\":{\"os\":\"%s\",\"version\":\"%d.%d\",\"screen\":{\"w\":%d,\"h\":%d}},"
          "\"geo\":{\"country\":\"%c%c\",\"city\":\"%s\",\"lat\":%.4f,\"lon\":%.4f},"
          "\"tags\":[\"t%d\",\"t%d\"],\"page\":\"/products/%llu?ref=campaign-%d\"",
          static_cast<unsigned long long>(x), r, date, static_cast<int>(x % 24),
          static_cast<int>(x / 24 % 60), static_cast<int>(x / 1440 % 60),
          static_cast<int>(x / 7 % 1000), static_cast<unsigned long long>(x % 1000000),
          static_cast<unsigned long long>(x >> 32), kTypes[x % 6], (x % 100000) / 100.0,
          static_cast<int>(x % 9), kOs[x % 5], static_cast<int>(x % 17),
          static_cast<int>(x / 17 % 10), 320 + static_cast<int>(x % 1600),
          480 + static_cast<int>(x % 2000), 'A' + static_cast<char>(x % 26),
          'A' + static_cast<char>(x / 26 % 26), kCities[x % 6], (x % 18000) / 100.0 - 90,
          (x % 36000) / 100.0 - 180, static_cast<int>(x % 50), static_cast<int>(x / 50 % 50),
          static_cast<unsigned long long>(x % 100000), static_cast<int>(x % 40));
      text.append(line, n);
      if (x % 7 == 0) text += ",\"coupon\":\"SAVE" + std::to_string(x % 30) + "\"";
      if (x % 5 == 0) text += ",\"error\":null";
      text += "}\n";
    }
    warden::atomic_write_file(date_dir + name, text);
  }
}

// Every *.ndjson under dir, sorted, grouped by date directory.
std::map<std::string, std::vector<std::string>> list_inputs(const std::string& dir) {
  std::map<std::string, std::vector<std::string>> by_date;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().extension() == ".ndjson") {
      by_date[entry.path().parent_path().filename().string()].push_back(entry.path().string());
    }
  }
  for (auto& [date, files] : by_date) std::sort(files.begin(), files.end());
  return by_date;
}

warden::duckdb::Database open_database(const Options& options) {
  return warden::duckdb::Database::in_memory({{"threads", std::to_string(options.threads)}});
}

int duckdb_copy(const std::string& dir, const std::string& out, const Options& options) {
  std::string files = "[";
  for (const auto& [date, inputs] : list_inputs(dir)) {
    for (const std::string& input : inputs)
      files += (files.size() > 1 ? ", " : "") + quote_literal(input);
  }
  files += "]";
  warden::duckdb::Database database = open_database(options);
  warden::duckdb::Connection connection = database.connect();
  warden::duckdb::Result r = connection.query(
      "COPY (SELECT * FROM read_json(" + files + ", format = 'newline_delimited'" +
      (options.union_by_name ? ", union_by_name = true" : "") + ")) TO " + quote_literal(out) +
      " (FORMAT parquet, COMPRESSION " + quote_literal(options.compression) + ")");
  std::printf("%lld rows\n", static_cast<long long>(r.get_int64(0, 0)));
  return 0;
}

int convert(const std::string& dir, const std::string& out_dir, const Options& options) {
  std::vector<std::vector<std::string>> batches;
  for (const auto& [date, inputs] : list_inputs(dir)) {
    for (size_t i = 0; i < inputs.size(); i += options.batch) {
      batches.emplace_back(inputs.begin() + i,
                           inputs.begin() + std::min(inputs.size(), i + options.batch));
    }
  }
  fs::create_directories(out_dir);
  warden::duckdb::Database database = open_database(options);
  warden::duckdb::Connection connection = database.connect();
  warden::pipeline::ConvertOptions convert_options;
  convert_options.compression = options.compression;
  uint64_t rows = 0;
  for (size_t b = options.shard; b < batches.size(); b += options.shards) {
    rows += warden::pipeline::convert_ndjson_to_parquet(
                connection, batches[b], out_dir + "/batch-" + std::to_string(b) + ".parquet",
                convert_options)
                .rows;
  }
  std::printf("%llu rows\n", static_cast<unsigned long long>(rows));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "generate" && argc == 6) {
      generate(argv[2], std::stoul(argv[3]), std::stoul(argv[4]), std::stoul(argv[5]));
      return 0;
    }
    if (command == "duckdb-copy" && argc >= 4) {
      return duckdb_copy(argv[2], argv[3], parse_options(argc, argv, 4));
    }
    if (command == "convert" && argc >= 4) {
      return convert(argv[2], argv[3], parse_options(argc, argv, 4));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline_bench %s: %s\n", command.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: pipeline_bench generate DIR FILES BYTES DATES | duckdb-copy DIR OUT "
               "[options] | convert DIR OUTDIR [options]\n");
  return 64;
}
