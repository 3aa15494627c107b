#include "strict_json.h"

namespace warden::storage_internal {

StrictObject::StrictObject(const std::string& text, std::string path, std::string repair)
    : path_(std::move(path)), repair_(std::move(repair)) {
  try {
    json_ = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!json_.is_object()) fail("not a JSON object");
}

StrictObject::StrictObject(const nlohmann::json& json, std::string path, std::string repair)
    : json_(json), path_(std::move(path)), repair_(std::move(repair)) {
  if (!json_.is_object()) fail("not a JSON object");
}

void StrictObject::fail(const std::string& problem) const {
  throw MalformedLockFileError("read " + path_ + ": " + problem +
                               (repair_.empty() ? "" : "; " + repair_));
}

const nlohmann::json& StrictObject::field(const char* key) {
  auto it = json_.find(key);
  if (it == json_.end()) fail(std::string("missing field '") + key + "'");
  seen_.insert(key);
  return *it;
}

std::string StrictObject::string(const char* key) {
  const nlohmann::json& value = field(key);
  if (!value.is_string()) fail(std::string("field '") + key + "' is not a string");
  return value.get<std::string>();
}

int64_t StrictObject::integer(const char* key) {
  const nlohmann::json& value = field(key);
  if (!value.is_number_integer()) fail(std::string("field '") + key + "' is not an integer");
  return value.get<int64_t>();
}

uint64_t StrictObject::unsigned_integer(const char* key) {
  const nlohmann::json& value = field(key);
  if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
    fail(std::string("field '") + key + "' is not a non-negative integer");
  }
  return value.get<uint64_t>();
}

const nlohmann::json& StrictObject::array(const char* key) {
  const nlohmann::json& value = field(key);
  if (!value.is_array()) fail(std::string("field '") + key + "' is not an array");
  return value;
}

const nlohmann::json& StrictObject::object(const char* key) {
  const nlohmann::json& value = field(key);
  if (!value.is_object()) fail(std::string("field '") + key + "' is not an object");
  return value;
}

void StrictObject::finish() {
  for (auto it = json_.begin(); it != json_.end(); ++it) {
    if (!seen_.count(it.key())) fail("unexpected field '" + it.key() + "'");
  }
}

}  // namespace warden::storage_internal
