// Quarantine: failed or suspect files are moved aside with a reason, never deleted at once.
#include <algorithm>
#include <filesystem>

#include "strict_json.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/posix.h"
#include "warden/storage.h"

namespace warden {

namespace fs = std::filesystem;

namespace {

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "<stamp>_<operation>", or with "-2", "-3"... when two quarantines share a second.
std::string fresh_directory(const std::string& parent, const std::string& stem) {
  for (int n = 1;; ++n) {
    std::string dir = parent + "/" + stem + (n == 1 ? "" : "-" + std::to_string(n));
    if (!stat_path(dir)) {
      make_directories(dir);
      return dir;
    }
  }
}

}  // namespace

std::string quarantine_files(const DataLayout& layout, const std::string& operation,
                             const std::string& reason, const std::vector<std::string>& files,
                             const nlohmann::json& details) {
  const auto now = std::chrono::system_clock::now();
  make_directories(layout.quarantine_dir());
  const std::string dir =
      fresh_directory(layout.quarantine_dir(), utc_stamp_for_filename(now) + "_" + operation);
  nlohmann::json moved = nlohmann::json::array();
  for (const std::string& file : files) {
    auto info = stat_path(file);
    if (!info) continue;
    // A leading dot (temp files are hidden) would hide the evidence: drop it.
    std::string name = base_name(file);
    while (!name.empty() && name[0] == '.') name.erase(0, 1);
    std::string target = dir + "/" + name;
    if (!try_rename(file, target)) continue;  // vanished meanwhile: nothing to keep
    moved.push_back({{"original", file}, {"name", name}, {"bytes", info->size}});
  }
  fsync_directory(dir);
  nlohmann::json record = {{"version", 1},     {"operation", operation},
                           {"reason", reason}, {"created_at", format_utc(now)},
                           {"files", moved},   {"details", details}};
  atomic_write_file(dir + "/reason.json", record.dump(2) + "\n");
  emit_event(EventLevel::kWarning, "sync.quarantine.created",
             "quarantined " + std::to_string(moved.size()) + " file(s) in " + dir + ": " + reason,
             {{"dir", dir}, {"operation", operation}, {"reason", reason}});
  return dir;
}

std::vector<QuarantineEntry> list_quarantine(const DataLayout& layout) {
  std::vector<QuarantineEntry> entries;
  std::error_code error;
  fs::directory_iterator it(layout.quarantine_dir(), error);
  if (error) return entries;
  for (const fs::directory_entry& entry : it) {
    if (!entry.is_directory(error)) continue;
    QuarantineEntry q;
    q.dir = entry.path().string();
    auto info = stat_path(q.dir);
    q.created_at = info ? info->modified : std::chrono::system_clock::time_point{};
    try {
      storage_internal::StrictObject reason(read_file(q.dir + "/reason.json"),
                                            q.dir + "/reason.json", "");
      q.operation = reason.string("operation");
      q.reason = reason.string("reason");
      if (auto created = parse_utc(reason.string("created_at"))) q.created_at = *created;
    } catch (const Error&) {
      q.reason = "unreadable reason.json";
    }
    entries.push_back(std::move(q));
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.created_at < b.created_at; });
  return entries;
}

std::vector<std::string> cleanup_quarantine(const DataLayout& layout,
                                            std::chrono::system_clock::time_point now,
                                            std::chrono::hours max_age) {
  std::vector<std::string> removed;
  for (const QuarantineEntry& q : list_quarantine(layout)) {
    if (now - q.created_at <= max_age) continue;
    std::error_code error;
    fs::remove_all(q.dir, error);
    if (error) {
      throw IoError("remove quarantine directory " + q.dir + ": " + error.message(), error.value());
    }
    removed.push_back(q.dir);
  }
  if (!removed.empty()) fsync_directory(layout.quarantine_dir());
  return removed;
}

}  // namespace warden
