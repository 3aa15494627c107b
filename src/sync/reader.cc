// Reading a dataset through its manifest (how readers stay safe during a sync).
#include "warden/duckdb.h"
#include "warden/sync.h"

namespace warden {

std::optional<std::string> manifest_relation(const DataLayout& layout, const Manifest& manifest) {
  if (manifest.files.empty()) return std::nullopt;
  std::string list;
  for (const ManifestFile& file : manifest.files) {
    if (!list.empty()) list += ", ";
    list += duckdb::quote_literal(layout.absolute(file.path));
  }
  return "read_parquet([" + list + "])";
}

}  // namespace warden
