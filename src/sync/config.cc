// The config file: site settings (source, user datasets, SLOs) read from TOML.
#include <toml++/toml.h>

#include <cstdlib>

#include "warden/error.h"
#include "warden/posix.h"
#include "warden/sync.h"

namespace warden {

namespace {

// Where to look when --config is not given: WARDEN_CONFIG (must exist), else the per-user
// default (optional). Returns {path, required}.
std::pair<std::string, bool> config_location(const std::string& explicit_path) {
  if (!explicit_path.empty()) return {explicit_path, true};
  if (const char* env = std::getenv("WARDEN_CONFIG"); env && *env) return {env, true};
  const char* home = std::getenv("HOME");
  if (home && *home) return {std::string(home) + "/.config/warden/config.toml", false};
  return {"", false};
}

std::optional<std::chrono::seconds> seconds_key(const toml::table& root, const char* key,
                                                const std::string& path) {
  const toml::node* node = root.get(key);
  if (!node) return std::nullopt;
  auto value = node->value<int64_t>();
  if (!value || *value <= 0) {
    throw InvalidArgumentError("read config " + path + ": " + key +
                               " must be a positive number of seconds");
  }
  return std::chrono::seconds(*value);
}

}  // namespace

SyncConfig load_sync_config(const std::string& explicit_path) {
  auto [path, required] = config_location(explicit_path);
  SyncConfig config;
  if (path.empty() || (!required && !stat_path(path))) return config;
  if (!stat_path(path)) {
    throw InvalidArgumentError("read config " + path +
                               ": no such file (pass --config FILE or unset WARDEN_CONFIG)");
  }
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw InvalidArgumentError("read config " + path + ": " + std::string(e.description()) +
                               " at line " + std::to_string(e.source().begin.line));
  }
  for (const auto& [key, node] : root) {
    const std::string k(key.str());
    if (k != "source" && k != "datasets" && k != "full_slo_seconds" &&
        k != "incremental_slo_seconds") {
      throw InvalidArgumentError("read config " + path + ": unknown key '" + k +
                                 "' (expected source, datasets, full_slo_seconds, "
                                 "incremental_slo_seconds)");
    }
    if ((k == "source" || k == "datasets") && !node.is_string()) {
      throw InvalidArgumentError("read config " + path + ": " + k + " must be a string");
    }
  }
  config.path = path;
  config.source = root["source"].value_or(std::string());
  config.datasets_file = root["datasets"].value_or(std::string());
  if (!config.datasets_file.empty() && config.datasets_file[0] != '/') {
    config.datasets_file = parent_directory(path) + "/" + config.datasets_file;
  }
  config.full_slo = seconds_key(root, "full_slo_seconds", path);
  config.incremental_slo = seconds_key(root, "incremental_slo_seconds", path);
  return config;
}

}  // namespace warden
