// The manifest file a batch publishes: the list of files a worker converts.
#include <set>

#include "warden/error.h"
#include "warden/pipeline.h"
#include "warden/posix.h"

namespace warden::pipeline {

namespace {

using Json = nlohmann::json;

[[noreturn]] void malformed(const std::string& path, const std::string& what) {
  throw MalformedLockFileError(
      "read pipeline manifest " + path + ": " + what +
      "; it is rebuilt from the store by 'warden pipeline flush' once removed (a manifest "
      "whose record exists is rebuilt from the records, one without a record is dropped)");
}

const Json& field(const Json& object, const char* name, Json::value_t type,
                  const std::string& path) {
  auto it = object.find(name);
  if (it == object.end()) malformed(path, std::string("missing field '") + name + "'");
  const bool ok = it->type() == type ||
                  (type == Json::value_t::number_unsigned &&
                   it->type() == Json::value_t::number_integer && it->get<int64_t>() >= 0);
  if (!ok) malformed(path, std::string("field '") + name + "' has the wrong type");
  return *it;
}

void exact_fields(const Json& object, const std::set<std::string>& names, const std::string& path) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (!names.count(it.key())) malformed(path, "unknown field '" + it.key() + "'");
  }
}

}  // namespace

std::string ManifestDocument::to_json() const {
  Json files_json = Json::array();
  for (const ManifestEntry& f : files) {
    files_json.push_back({{"key", f.key}, {"size", f.size}, {"sha256", f.sha256}});
  }
  Json out = {{"version", version},
              {"id", id},
              {"date", date},
              {"batch_token", batch_token},
              {"created_at", created_at},
              {"files", files_json}};
  return out.dump(2) + "\n";
}

ManifestDocument ManifestDocument::parse(const std::string& text, const std::string& path) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) malformed(path, "not a JSON object");
  exact_fields(json, {"version", "id", "date", "batch_token", "created_at", "files"}, path);
  ManifestDocument doc;
  doc.version = static_cast<int>(field(json, "version", Json::value_t::number_unsigned, path));
  if (doc.version != 1) malformed(path, "unsupported version " + std::to_string(doc.version));
  doc.id = field(json, "id", Json::value_t::string, path).get<std::string>();
  doc.date = field(json, "date", Json::value_t::string, path).get<std::string>();
  if (!is_date(doc.date)) malformed(path, "date '" + doc.date + "' is not YYYY-MM-DD");
  doc.batch_token = field(json, "batch_token", Json::value_t::number_unsigned, path);
  doc.created_at = field(json, "created_at", Json::value_t::string, path).get<std::string>();
  for (const Json& f : field(json, "files", Json::value_t::array, path)) {
    if (!f.is_object()) malformed(path, "a files[] entry is not an object");
    exact_fields(f, {"key", "size", "sha256"}, path);
    doc.files.push_back({field(f, "key", Json::value_t::string, path).get<std::string>(),
                         field(f, "size", Json::value_t::number_unsigned, path).get<uint64_t>(),
                         field(f, "sha256", Json::value_t::string, path).get<std::string>()});
  }
  if (doc.files.empty()) malformed(path, "it names no file");
  std::vector<std::string> keys;
  for (const ManifestEntry& f : doc.files) keys.push_back(f.key);
  if (manifest_id_for(doc.date, keys) != doc.id) {
    malformed(path, "id '" + doc.id + "' does not match its files (expected '" +
                        manifest_id_for(doc.date, keys) + "')");
  }
  return doc;
}

ManifestDocument load_manifest_document(const std::string& path) {
  return ManifestDocument::parse(read_file(path), path);
}

}  // namespace warden::pipeline
