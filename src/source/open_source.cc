// Choosing the source: the one function that turns a spec into a Source.
#include <cstdlib>

#include "warden/error.h"
#include "warden/postgres_source.h"
#include "warden/source.h"

namespace warden {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() > suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// DuckDB's own default (80% of RAM) lets its cache of the source file's blocks grow with the
// dataset; a fixed limit keeps a sync's memory the same whatever the size of the source.
DuckDbSource::Options duckdb_source_options() {
  DuckDbSource::Options options;
  const char* limit = std::getenv("WARDEN_DUCKDB_MEMORY_LIMIT");
  options.memory_limit = limit && *limit ? limit : kDuckDbSourceMemoryLimit;
  return options;
}

}  // namespace

std::unique_ptr<Source> open_source(const std::string& spec) {
  const bool prefixed = spec.rfind("duckdb:", 0) == 0;
  if (prefixed || ends_with(spec, ".duckdb") || ends_with(spec, ".db")) {
    return std::make_unique<DuckDbSource>(prefixed ? spec.substr(7) : spec,
                                          duckdb_source_options());
  }
  if (is_postgres_source_spec(spec)) {
    return std::make_unique<PostgresSource>(postgres_settings_for(spec));
  }
  // The spec may be a PostgreSQL URI with a password in it: name only its scheme.
  const std::string scheme = spec.substr(0, spec.find(':'));
  throw InvalidArgumentError("open source '" + scheme +
                             (scheme.size() < spec.size() ? ":...'" : "'") +
                             ": unknown kind of source; supported: wrds, postgresql://..., "
                             "postgresql:KEY=VALUE..., duckdb:PATH (e.g. --source "
                             "duckdb:sample.duckdb after 'warden sample create sample.duckdb')");
}

std::string resolve_source_spec(const std::string& given, const std::string& from_config) {
  if (!given.empty()) return given;
  const char* env = std::getenv("WARDEN_SOURCE");
  if (env && *env) return env;
  if (!from_config.empty()) return from_config;
  throw InvalidArgumentError(
      "no source given: pass --source wrds|postgresql://...|duckdb:PATH, set WARDEN_SOURCE, "
      "or put source = \"...\" in the config file (--config FILE or WARDEN_CONFIG)");
}

}  // namespace warden
