// `reprocess-failed`: failed manifests back to pending, with fixed inputs re-recorded
// (pipeline_worker.h).
#include "warden/checksum.h"
#include "warden/events.h"
#include "warden/pipeline_worker.h"
#include "warden/posix.h"

namespace warden::pipeline {
namespace {

// Re-reads the manifest's inputs; entries whose size or checksum changed get the new values.
// Returns the keys that changed. Throws IoError naming the input and the manifest.
std::vector<std::string> refresh_entries(ManifestDocument& manifest) {
  std::vector<std::string> changed;
  for (ManifestEntry& entry : manifest.files) {
    const std::optional<FileInfo> info = stat_path(entry.key);
    if (!info) {
      throw IoError("reprocess-failed " + manifest.id + ": input " + entry.key +
                        " is missing; restore it, then rerun 'warden pipeline reprocess-failed "
                        "--id " +
                        manifest.id + "'",
                    ENOENT, ErrorCode::kNotFound);
    }
    const std::string sha256 = sha256_file(entry.key);
    if (info->size != entry.size || sha256 != entry.sha256) {
      entry.size = info->size;
      entry.sha256 = sha256;
      changed.push_back(entry.key);
    }
  }
  return changed;
}

}  // namespace

std::vector<Reprocessed> PipelineWorker::reprocess_failed(const std::optional<std::string>& id) {
  sql::Database& db = pipeline_.db();
  sql::Rows failed =
      id ? db.query("SELECT id, path, status FROM pipeline_manifests WHERE id = $1", {*id})
         : db.query(
               "SELECT id, path, status FROM pipeline_manifests WHERE status = 'failed'"
               " ORDER BY id");
  if (id) {
    if (failed.empty()) {
      throw Error(ErrorCode::kNotFound, "reprocess-failed " + *id +
                                            ": no such manifest record in " + db.location() +
                                            "; list them with 'warden pipeline trace'");
    }
    if (failed[0][2].value_or("") != kManifestFailed) {
      throw InvalidArgumentError("reprocess-failed " + *id + ": the manifest is " +
                                 failed[0][2].value_or("?") +
                                 ", not failed; only failed "
                                 "manifests are reprocessed");
    }
  }
  std::vector<Reprocessed> done;
  for (const sql::Row& row : failed) {
    Reprocessed item{row[0].value_or(""), row[1].value_or(""), {}};
    ManifestDocument manifest = load_manifest_document(item.manifest_path);
    item.changed_files = refresh_entries(manifest);
    // The file first, then the records: a crash in between leaves the record failed, and the
    // next run finds the file already current and just resets the record.
    if (!item.changed_files.empty()) atomic_write_file(item.manifest_path, manifest.to_json());
    bool reset = false;
    db.transaction([&] {
      for (const ManifestEntry& entry : manifest.files) {
        db.query(
            "UPDATE pipeline_files SET size = CAST($2 AS BIGINT), checksum = $3"
            " WHERE key = $1 AND manifest_id = $4",
            {entry.key, std::to_string(entry.size), entry.sha256, item.id});
      }
      reset =
          !db.query(
                 "UPDATE pipeline_manifests SET status = 'pending', attempts = 0,"
                 " error = NULL, claim_token = NULL, claim_writer = NULL,"
                 " claim_expires_ms = NULL, updated_ms = " +
                     std::string(db.now_ms()) + " WHERE id = $1 AND status = 'failed' RETURNING id",
                 {item.id})
               .empty();
    });
    if (!reset) continue;  // someone else reprocessed it meanwhile
    emit_event(EventLevel::kInfo, "pipeline.manifest.reprocess",
               "manifest " + item.id + " back to pending (" +
                   std::to_string(item.changed_files.size()) + " fixed input(s) re-recorded)",
               {{"manifest_id", item.id}, {"changed_files", item.changed_files}});
    done.push_back(std::move(item));
  }
  return done;
}

}  // namespace warden::pipeline
