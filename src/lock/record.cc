// The lock file's record (version 1): strict parsing, serialisation, names and verdicts.
#include <limits>
#include <nlohmann/json.hpp>

#include "warden/lock.h"

namespace warden {

namespace {

constexpr const char* kFields[] = {"version",     "name",         "pid",       "pid_start",
                                   "boot_id",     "hostname",     "writer_id", "token",
                                   "acquired_at", "refreshed_at", "expires_at"};

[[noreturn]] void malformed(const std::string& path, const std::string& what) {
  throw MalformedLockFileError("lock file " + path + " is malformed: " + what);
}

const nlohmann::json& field(const nlohmann::json& object, const char* key,
                            const std::string& path) {
  auto it = object.find(key);
  if (it == object.end()) malformed(path, std::string("missing field \"") + key + "\"");
  return *it;
}

std::string string_field(const nlohmann::json& object, const char* key, const std::string& path,
                         bool allow_empty) {
  const auto& value = field(object, key, path);
  if (!value.is_string()) malformed(path, std::string("field \"") + key + "\" is not a string");
  std::string text = value.get<std::string>();
  if (!allow_empty && text.empty()) malformed(path, std::string("field \"") + key + "\" is empty");
  if (text.size() > 256) malformed(path, std::string("field \"") + key + "\" is too long");
  return text;
}

uint64_t unsigned_field(const nlohmann::json& object, const char* key, const std::string& path) {
  const auto& value = field(object, key, path);
  // is_number_unsigned() is true only for non-negative integers without a fraction or exponent
  // marker ("17", not "17.0" or "-1"): a float or a negative number is a wrong type here.
  if (!value.is_number_unsigned()) {
    malformed(path, std::string("field \"") + key + "\" is not a non-negative integer");
  }
  return value.get<uint64_t>();
}

WallClock::time_point time_field(const nlohmann::json& object, const char* key,
                                 const std::string& path) {
  std::string text = string_field(object, key, path, false);
  auto parsed = parse_utc(text);
  if (!parsed) {
    malformed(path, std::string("field \"") + key + "\" is not a UTC time like " +
                        "2026-01-15T10:30:00.000Z");
  }
  return *parsed;
}

}  // namespace

LockRecord LockRecord::parse(std::string_view text, const std::string& path) {
  if (text.empty()) malformed(path, "it is empty (0 bytes)");
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    malformed(path, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!object.is_object()) malformed(path, "not a JSON object");
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool known = false;
    for (const char* name : kFields) known = known || it.key() == name;
    if (!known) malformed(path, "unknown field \"" + it.key() + "\"");
  }
  LockRecord record;
  uint64_t version = unsigned_field(object, "version", path);
  if (version != 1) malformed(path, "version " + std::to_string(version) + " (expected 1)");
  record.name = string_field(object, "name", path, false);
  try {
    validate_lock_name(record.name);
  } catch (const InvalidArgumentError&) {
    malformed(path, "field \"name\" is not a valid lock name");
  }
  uint64_t pid = unsigned_field(object, "pid", path);
  if (pid == 0 || pid > static_cast<uint64_t>(std::numeric_limits<pid_t>::max())) {
    malformed(path, "field \"pid\" is out of range");
  }
  record.pid = static_cast<pid_t>(pid);
  record.pid_start = unsigned_field(object, "pid_start", path);
  record.boot_id = string_field(object, "boot_id", path, true);
  record.hostname = string_field(object, "hostname", path, false);
  record.writer_id = string_field(object, "writer_id", path, false);
  record.token = unsigned_field(object, "token", path);
  if (record.token == 0) malformed(path, "field \"token\" is 0 (tokens start at 1)");
  record.acquired_at = time_field(object, "acquired_at", path);
  record.refreshed_at = time_field(object, "refreshed_at", path);
  record.expires_at = time_field(object, "expires_at", path);
  return record;
}

std::string LockRecord::to_json() const {
  nlohmann::ordered_json out;
  out["version"] = version;
  out["name"] = name;
  out["pid"] = pid;
  out["pid_start"] = pid_start;
  out["boot_id"] = boot_id;
  out["hostname"] = hostname;
  out["writer_id"] = writer_id;
  out["token"] = token;
  out["acquired_at"] = format_utc(acquired_at);
  out["refreshed_at"] = format_utc(refreshed_at);
  out["expires_at"] = format_utc(expires_at);
  return out.dump() + "\n";
}

void validate_lock_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && name[0] != '.';
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-';
    ok = ok && allowed;
  }
  if (!ok) {
    throw InvalidArgumentError("lock name '" + name +
                               "': use 1-128 of [A-Za-z0-9._-], not starting with '.'");
  }
}

const char* lock_verdict_name(LockVerdict verdict) {
  switch (verdict) {
    case LockVerdict::kFree:
      return "free";
    case LockVerdict::kHeld:
      return "held";
    case LockVerdict::kStaleDeadPid:
      return "stale_dead_pid";
    case LockVerdict::kStalePidReused:
      return "stale_pid_reused";
    case LockVerdict::kStaleExpired:
      return "stale_expired";
    case LockVerdict::kRemoteUnverifiable:
      return "remote_unverifiable";
    case LockVerdict::kMalformed:
      return "malformed";
  }
  return "unknown";
}

}  // namespace warden
