// Private to src/storage/: strict reading of warden's JSON state files. A field that is
// missing, has the wrong type, or is not expected makes the file malformed, with a message
// naming the file, the field, and the command that repairs it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "warden/error.h"

namespace warden::storage_internal {

class StrictObject {
 public:
  // Parses text as a JSON object. Throws MalformedLockFileError naming `path`.
  StrictObject(const std::string& text, std::string path, std::string repair);
  StrictObject(const nlohmann::json& json, std::string path, std::string repair);

  std::string string(const char* key);
  int64_t integer(const char* key);
  uint64_t unsigned_integer(const char* key);
  const nlohmann::json& array(const char* key);
  const nlohmann::json& object(const char* key);
  // Throws if the object holds keys that were never read.
  void finish();
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  const nlohmann::json& field(const char* key);
  nlohmann::json json_;
  std::string path_, repair_;
  std::set<std::string> seen_;
};

}  // namespace warden::storage_internal
