// Progress checkpoints (sync_progress/<dataset>.json): the seed's SyncProgress.
#include "strict_json.h"
#include "warden/posix.h"
#include "warden/storage.h"

namespace warden {

using storage_internal::StrictObject;

namespace {
std::vector<int> years_from(const nlohmann::json& list, StrictObject& object, const char* key) {
  std::vector<int> years;
  for (const nlohmann::json& y : list) {
    if (!y.is_number_integer()) object.fail(std::string("'") + key + "' holds a non-year");
    years.push_back(y.get<int>());
  }
  return years;
}
}  // namespace

std::string SyncProgress::to_json() const {
  nlohmann::json record = {{"version", 1},
                           {"dataset", dataset},
                           {"operation", operation},
                           {"started_at", started_at},
                           {"last_checkpoint", last_checkpoint},
                           {"years_completed", years_completed},
                           {"years_remaining", years_remaining},
                           {"total_rows_synced", total_rows_synced},
                           {"status", status},
                           {"error", error},
                           {"fencing_token", fencing_token}};
  return record.dump(2) + "\n";
}

SyncProgress SyncProgress::parse(const std::string& text, const std::string& path) {
  StrictObject object(text, path,
                      "remove it: the next 'warden sync full' starts over (the manifest keeps "
                      "every partition already committed)");
  if (object.integer("version") != 1) object.fail("unsupported version");
  SyncProgress p;
  p.dataset = object.string("dataset");
  p.operation = object.string("operation");
  p.started_at = object.string("started_at");
  p.last_checkpoint = object.string("last_checkpoint");
  p.years_completed = years_from(object.array("years_completed"), object, "years_completed");
  p.years_remaining = years_from(object.array("years_remaining"), object, "years_remaining");
  p.total_rows_synced = object.unsigned_integer("total_rows_synced");
  p.status = object.string("status");
  p.error = object.string("error");
  p.fencing_token = object.unsigned_integer("fencing_token");
  object.finish();
  if (p.status != "running" && p.status != "paused" && p.status != "completed" &&
      p.status != "failed") {
    object.fail("unknown status '" + p.status + "'");
  }
  return p;
}

std::optional<SyncProgress> load_progress(const DataLayout& layout, const std::string& dataset) {
  validate_dataset_name(dataset);
  const std::string path = layout.progress_path(dataset);
  auto fd = try_open_read(path, /*no_follow=*/true);
  if (!fd) return std::nullopt;
  return SyncProgress::parse(read_all(fd->get(), path, 16u << 20), path);
}

void save_progress(const DataLayout& layout, const SyncProgress& progress) {
  validate_dataset_name(progress.dataset);
  make_directories(layout.root() + "/sync_progress");
  atomic_write_file_marked(layout.progress_path(progress.dataset), progress.to_json(),
                           "sync.checkpoint");
}

}  // namespace warden
