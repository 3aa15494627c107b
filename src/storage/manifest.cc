// The manifest: what a dataset holds, committed atomically under a fencing token.
#include <algorithm>

#include "strict_json.h"
#include "warden/error.h"
#include "warden/posix.h"
#include "warden/storage.h"

namespace warden {

using storage_internal::StrictObject;

void Manifest::upsert(const ManifestFile& file) {
  auto it = std::find_if(files.begin(), files.end(),
                         [&](const ManifestFile& f) { return f.year == file.year; });
  if (it != files.end()) {
    *it = file;
  } else {
    files.push_back(file);
  }
  std::sort(files.begin(), files.end(),
            [](const ManifestFile& a, const ManifestFile& b) { return a.year < b.year; });
}

const ManifestFile* Manifest::find_year(int year) const {
  for (const ManifestFile& f : files) {
    if (f.year == year) return &f;
  }
  return nullptr;
}

uint64_t Manifest::total_rows() const {
  uint64_t total = 0;
  for (const ManifestFile& f : files) total += f.rows;
  return total;
}

uint64_t Manifest::total_bytes() const {
  uint64_t total = 0;
  for (const ManifestFile& f : files) total += f.bytes;
  return total;
}

std::string Manifest::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const ManifestFile& f : files) {
    list.push_back({{"path", f.path},
                    {"year", f.year},
                    {"rows", f.rows},
                    {"bytes", f.bytes},
                    {"sha256", f.sha256},
                    {"min_date", f.min_date},
                    {"max_date", f.max_date},
                    {"schema_hash", f.schema_hash},
                    {"source_rows", f.source_rows},
                    {"source_fingerprint", f.source_fingerprint},
                    {"synced_at", f.synced_at}});
  }
  nlohmann::json record = {{"version", version},
                           {"dataset", dataset},
                           {"table", table},
                           {"generation", generation},
                           {"fencing_token", fencing_token},
                           {"committed_at", committed_at},
                           {"schema", {{"hash", schema.hash()}, {"columns", schema.to_json()}}},
                           {"files", list}};
  return record.dump(2) + "\n";
}

Manifest Manifest::parse(const std::string& text, const std::string& path) {
  const std::string repair =
      "restore it from a backup (docs/runbooks/data-backup-restore.md), or move it aside and "
      "run 'warden sync full' for the dataset to rebuild it";
  StrictObject object(text, path, repair);
  Manifest m;
  m.version = static_cast<int>(object.integer("version"));
  if (m.version != 1) object.fail("unsupported version " + std::to_string(m.version));
  m.dataset = object.string("dataset");
  m.table = object.string("table");
  m.generation = object.unsigned_integer("generation");
  m.fencing_token = object.unsigned_integer("fencing_token");
  m.committed_at = object.string("committed_at");
  StrictObject schema(object.object("schema"), path, repair);
  std::string schema_hash = schema.string("hash");
  m.schema = TableSchema::from_json(schema.array("columns"), path);
  schema.finish();
  if (schema_hash != m.schema.hash()) object.fail("schema hash does not match its columns");
  for (const nlohmann::json& item : object.array("files")) {
    StrictObject file(item, path, repair);
    ManifestFile f;
    f.path = file.string("path");
    f.year = static_cast<int>(file.integer("year"));
    f.rows = file.unsigned_integer("rows");
    f.bytes = file.unsigned_integer("bytes");
    f.sha256 = file.string("sha256");
    f.min_date = file.string("min_date");
    f.max_date = file.string("max_date");
    f.schema_hash = file.string("schema_hash");
    f.source_rows = file.unsigned_integer("source_rows");
    f.source_fingerprint = file.string("source_fingerprint");
    f.synced_at = file.string("synced_at");
    file.finish();
    // A manifest must never point outside the data directory, whatever wrote it.
    if (f.path.empty() || f.path[0] == '/' || f.path.find("..") != std::string::npos) {
      object.fail("file path '" + f.path + "' leaves the data directory");
    }
    if (f.sha256.size() != 64) object.fail("file " + f.path + " has a malformed sha256");
    if (m.find_year(f.year)) object.fail("year " + std::to_string(f.year) + " listed twice");
    m.files.push_back(std::move(f));
  }
  object.finish();
  std::sort(m.files.begin(), m.files.end(),
            [](const ManifestFile& a, const ManifestFile& b) { return a.year < b.year; });
  return m;
}

std::optional<Manifest> load_manifest(const DataLayout& layout, const std::string& dataset) {
  validate_dataset_name(dataset);
  const std::string path = layout.manifest_path(dataset);
  auto fd = try_open_read(path, /*no_follow=*/true);
  if (!fd) return std::nullopt;
  Manifest m = Manifest::parse(read_all(fd->get(), path, 256u << 20), path);
  if (m.dataset != dataset) {
    throw MalformedLockFileError("read " + path + ": names dataset '" + m.dataset +
                                 "', expected '" + dataset + "'");
  }
  return m;
}

Manifest commit_manifest(const DataLayout& layout, Manifest manifest, uint64_t token) {
  validate_dataset_name(manifest.dataset);
  auto committed = load_manifest(layout, manifest.dataset);
  if (committed && committed->fencing_token > token) {
    throw StaleTokenError("commit manifest " + layout.manifest_path(manifest.dataset) +
                          ": fencing token " + std::to_string(token) +
                          " is older than the committed " +
                          std::to_string(committed->fencing_token) +
                          " (another writer took the lock since); this writer must stop");
  }
  manifest.generation = committed ? committed->generation + 1 : 1;
  manifest.fencing_token = token;
  manifest.committed_at = format_utc(std::chrono::system_clock::now());
  make_directories(layout.root() + "/manifests");
  atomic_write_file_marked(layout.manifest_path(manifest.dataset), manifest.to_json(),
                           "storage.manifest");
  return manifest;
}

}  // namespace warden
