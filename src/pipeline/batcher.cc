// The batcher: the seed's Lambda that turns pending files into manifests under a per-date
// LOCK, made crash-safe.
//
// Order of a batch, and why: the manifest FILE is published first (atomic write), then ONE
// transaction checks the lease still holds, inserts the MANIFEST record and marks exactly its
// files manifested. Publishing the record first would let a worker claim a record whose file
// is not there yet; marking files in a second transaction would let a crash leave files
// manifested in no manifest (the seed's "files stuck" failure). With this order a crash leaves
// either nothing in the store (the files stay pending; the manifest file, if any, is an
// orphan that the next batcher holding the date's lease rebuilds with the same id or removes)
// or everything.
#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include "warden/error.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/lease_lock.h"
#include "warden/pipeline.h"
#include "warden/posix.h"

namespace warden::pipeline {

namespace {

namespace fs = std::filesystem;

struct PendingFile {
  std::string key;
  uint64_t size = 0;
  std::string checksum;
};

// Manifest ids of the files under manifests/<date>/ (hidden temp files skipped).
std::set<std::string> manifest_file_ids(const PipelineLayout& layout, const std::string& date) {
  std::set<std::string> ids;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(layout.manifests_dir() + "/" + date, error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || entry.path().extension() != ".json") continue;
    ids.insert(entry.path().stem().string());
  }
  return ids;
}

std::set<std::string> manifest_dates_on_disk(const PipelineLayout& layout) {
  std::set<std::string> dates;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(layout.manifests_dir(), error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && is_date(name)) dates.insert(name);
  }
  return dates;
}

// Work the batcher may do for one date, judged from the store and the disk.
struct DateWork {
  int64_t pending = 0;
  std::set<std::string> orphan_files;   // manifest files without a record
  std::vector<std::string> lost_files;  // records whose manifest file is missing (ids)
  bool due(int64_t threshold, bool whole) const {
    return pending >= threshold || (whole && pending > 0) || !orphan_files.empty() ||
           !lost_files.empty();
  }
};

class Batcher {
 public:
  Batcher(Pipeline& pipeline, FlushMode mode)
      : pipeline_(pipeline), db_(pipeline.db()), layout_(pipeline.layout()), mode_(mode) {}

  BatchResult run() {
    const std::string today = pipeline_.today();
    std::set<std::string> dates = manifest_dates_on_disk(layout_);
    for (const sql::Row& row :
         db_.query("SELECT DISTINCT date_prefix FROM pipeline_files WHERE status = 'pending'")) {
      dates.insert(row[0].value_or(""));
    }
    for (const sql::Row& row : db_.query("SELECT DISTINCT date_prefix FROM pipeline_manifests")) {
      dates.insert(row[0].value_or(""));
    }
    for (const std::string& date : dates) {
      const bool whole = mode_ == FlushMode::kAllDates || date < today;
      if (work_for(date).due(pipeline_.options().threshold, whole)) batch_date(date, whole);
    }
    sql::Rows left = db_.query("SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending'");
    result_.pending_left = std::stoull(left.at(0).at(0).value_or("0"));
    return std::move(result_);
  }

 private:
  DateWork work_for(const std::string& date) {
    DateWork work;
    sql::Rows count = db_.query(
        "SELECT COUNT(*) FROM pipeline_files WHERE status = 'pending' AND date_prefix = $1",
        {date});
    work.pending = std::stoll(count.at(0).at(0).value_or("0"));
    std::set<std::string> on_disk = manifest_file_ids(layout_, date);
    std::set<std::string> recorded;
    for (const sql::Row& row :
         db_.query("SELECT id FROM pipeline_manifests WHERE date_prefix = $1", {date})) {
      const std::string id = row[0].value_or("");
      recorded.insert(id);
      if (!on_disk.count(id)) work.lost_files.push_back(id);
    }
    for (const std::string& id : on_disk) {
      if (!recorded.count(id)) work.orphan_files.insert(id);
    }
    return work;
  }

  LockOptions lease_options() const {
    LockOptions options;
    options.lease = pipeline_.options().lease;
    options.refresh_interval = std::max(options.lease / 3, std::chrono::milliseconds(1));
    options.writer_id = pipeline_.options().writer_id;
    return options;
  }

  // The seed's retry loop: a held lease is retried with backoff, and each retry first checks
  // that the date still needs a batch (the holder may have batched our files already).
  std::optional<LockToken> take_lease(TableLock& lock, const std::string& date, bool whole) {
    const PipelineOptions& options = pipeline_.options();
    for (int attempt = 0;; ++attempt) {
      if (std::optional<LockToken> token = lock.try_acquire()) return token;
      LockStatus holder = inspect_lease(db_, lock.name());
      const std::string who = holder.record
                                  ? holder.record->writer_id + " on " + holder.record->hostname +
                                        " pid " + std::to_string(holder.record->pid)
                                  : std::string("another batcher");
      emit_event(EventLevel::kWarning, "pipeline.batch.lock_held",
                 "batch " + date + ": lease " + lock.name() + " is held by " + who + " (attempt " +
                     std::to_string(attempt + 1) + " of " +
                     std::to_string(options.lease_retries + 1) +
                     "); if it outlived its holder: warden pipeline check-locks",
                 {{"date", date}, {"lease", lock.name()}, {"attempt", attempt + 1}});
      if (attempt >= options.lease_retries) return std::nullopt;
      std::this_thread::sleep_for(options.retry_backoff * (1 << attempt));
      if (!work_for(date).due(options.threshold, whole)) return std::nullopt;
    }
  }

  void batch_date(const std::string& date, bool whole) {
    TableLock lock(pipeline_.shared_db(), batch_lease_name(date), lease_options());
    std::optional<LockToken> token = take_lease(lock, date, whole);
    if (!token) {
      if (work_for(date).due(pipeline_.options().threshold, whole)) {
        result_.dates_lock_held.push_back(date);
      }
      return;
    }
    try {
      batch_under_lease(lock, *token, date, whole);
    } catch (const LockRecoveryError& e) {
      if (e.code() != ErrorCode::kLockLost) throw;
      emit_event(EventLevel::kError, "pipeline.batch.lease_lost", e.what(), {{"date", date}});
      result_.dates_lock_held.push_back(date);
      return;  // the row is someone else's now: do not release it
    }
    try {
      lock.release(*token);
    } catch (const Error& e) {
      emit_event(EventLevel::kWarning, "pipeline.batch.release_failed", e.what(), {{"date", date}});
    }
  }

  void batch_under_lease(TableLock& lock, LockToken& token, const std::string& date, bool whole) {
    DateWork work = work_for(date);
    for (const std::string& id : work.lost_files) rebuild_lost_file(id);

    std::vector<PendingFile> pending;
    for (const sql::Row& row :
         db_.query("SELECT key, size, checksum FROM pipeline_files WHERE status = 'pending' AND "
                   "date_prefix = $1 ORDER BY key",
                   {date})) {
      pending.push_back(
          {row[0].value_or(""), std::stoull(row[1].value_or("0")), row[2].value_or("")});
    }
    const size_t threshold = static_cast<size_t>(pipeline_.options().threshold);
    for (size_t begin = 0; begin < pending.size(); begin += threshold) {
      const size_t end = std::min(pending.size(), begin + threshold);
      if (end - begin < threshold && !whole) break;
      std::vector<PendingFile> chunk(pending.begin() + begin, pending.begin() + end);
      const std::string id = commit_chunk(lock, token, date, chunk);
      work.orphan_files.erase(id);  // rebuilt under the same id, now recorded
      token = lock.refresh(token);  // the next chunk gets a full lease
    }
    remove_orphans(lock, token, date, work.orphan_files);
  }

  // One manifest: file first, then the record and the files' status in one transaction.
  std::string commit_chunk(TableLock& lock, const LockToken& token, const std::string& date,
                           const std::vector<PendingFile>& chunk) {
    ManifestDocument doc;
    std::vector<std::string> keys;
    for (const PendingFile& f : chunk) {
      doc.files.push_back({f.key, f.size, f.checksum});
      keys.push_back(f.key);
    }
    doc.id = manifest_id_for(date, keys);
    doc.date = date;
    doc.batch_token = token.token;
    // One instant (the database clock's) for the file and the record, so a manifest file
    // rebuilt from the record is byte for byte the one first written.
    const int64_t created_ms = db_.clock_ms();
    doc.created_at =
        format_utc(std::chrono::system_clock::time_point(std::chrono::milliseconds(created_ms)));
    const std::string path = layout_.manifest_path(date, doc.id);
    make_directories(parent_directory(path));
    atomic_write_file(path, doc.to_json());
    WARDEN_FAILPOINT("pipeline.batch.after_manifest_write");

    std::string in_list;
    sql::Params params = {doc.id};
    for (size_t i = 0; i < keys.size(); ++i) {
      in_list += (i ? ", $" : "$") + std::to_string(i + 2);
      params.push_back(keys[i]);
    }
    db_.transaction([&] {
      if (!lock.holds(token)) {
        throw LockRecoveryError("batch " + date + ": lease " + lock.name() + " (token " +
                                    std::to_string(token.token) + ") ended before the manifest " +
                                    doc.id +
                                    " was recorded; nothing recorded, its files stay pending",
                                ErrorCode::kLockLost);
      }
      db_.query(std::string("INSERT INTO pipeline_manifests (id, date_prefix, path, file_count, "
                            "batch_token, status, attempts, created_ms, updated_ms) VALUES ($1, "
                            "$2, $3, $4, $5, 'pending', 0, $6, ") +
                    db_.now_ms() + ")",
                {doc.id, date, path, std::to_string(keys.size()), std::to_string(token.token),
                 std::to_string(created_ms)});
      sql::Rows marked = db_.query(
          std::string("UPDATE pipeline_files SET status = 'manifested', manifest_id = $1, "
                      "manifested_ms = ") +
              db_.now_ms() + " WHERE status = 'pending' AND key IN (" + in_list + ") RETURNING key",
          params);
      if (marked.size() != keys.size()) {
        // Only the lease holder marks a date's files, so this is a store edited by hand.
        throw Error(ErrorCode::kInternal,
                    "batch " + date + ": " + std::to_string(keys.size() - marked.size()) +
                        " of the " + std::to_string(keys.size()) + " files of manifest " + doc.id +
                        " stopped being pending while the lease was held (was the store "
                        "edited by hand?); rolled back, run 'warden pipeline trace'");
      }
    });
    WARDEN_FAILPOINT("pipeline.batch.after_commit");
    emit_event(EventLevel::kInfo, "pipeline.manifest.created",
               "manifest " + doc.id + ": " + std::to_string(keys.size()) + " files of " + date,
               {{"id", doc.id},
                {"date", date},
                {"files", keys.size()},
                {"path", path},
                {"batch_token", token.token}});
    result_.manifests.push_back({doc.id, date, path, keys.size(), token.token});
    return doc.id;
  }

  // A record whose manifest file is gone: the store holds everything the file said.
  void rebuild_lost_file(const std::string& id) {
    sql::Rows record = db_.query(
        "SELECT date_prefix, path, batch_token, created_ms FROM pipeline_manifests WHERE id = $1",
        {id});
    if (record.empty()) return;
    ManifestDocument doc;
    doc.id = id;
    doc.date = record[0][0].value_or("");
    doc.batch_token = std::stoull(record[0][2].value_or("0"));
    doc.created_at = format_utc(std::chrono::system_clock::time_point(
        std::chrono::milliseconds(std::stoll(record[0][3].value_or("0")))));
    for (const sql::Row& row : db_.query(
             "SELECT key, size, checksum FROM pipeline_files WHERE manifest_id = $1 ORDER BY key",
             {id})) {
      doc.files.push_back(
          {row[0].value_or(""), std::stoull(row[1].value_or("0")), row[2].value_or("")});
    }
    const std::string path = record[0][1].value_or(layout_.manifest_path(doc.date, id));
    if (doc.files.empty()) return;  // nothing to rebuild from; trace reports it
    make_directories(parent_directory(path));
    atomic_write_file(path, doc.to_json());
    emit_event(EventLevel::kWarning, "pipeline.manifest.rebuilt",
               "manifest " + id + ": its file was missing; rebuilt from the store at " + path,
               {{"id", id}, {"path", path}});
  }

  // Manifest files without a record are what a batcher killed between write and commit left.
  // Only the holder of the date's lease removes them: any other batcher of this date either
  // holds no lease (its commit's holds() check fails) or is us.
  void remove_orphans(TableLock& lock, const LockToken& token, const std::string& date,
                      const std::set<std::string>& ids) {
    if (ids.empty()) return;
    std::set<std::string> recorded;
    for (const sql::Row& row :
         db_.query("SELECT id FROM pipeline_manifests WHERE date_prefix = $1", {date})) {
      recorded.insert(row[0].value_or(""));
    }
    if (!lock.holds(token)) return;
    for (const std::string& id : ids) {
      if (recorded.count(id)) continue;
      const std::string path = layout_.manifest_path(date, id);
      if (!remove_file(path)) continue;
      emit_event(EventLevel::kWarning, "pipeline.manifest.orphan_removed",
                 "removed " + path +
                     ": a manifest file without a record (a batcher stopped "
                     "between writing it and recording it); its files stay "
                     "pending and are batched again",
                 {{"id", id}, {"path", path}});
      result_.orphan_files_removed.push_back(path);
    }
    fsync_directory(layout_.manifests_dir() + "/" + date);
  }

  Pipeline& pipeline_;
  sql::Database& db_;
  const PipelineLayout& layout_;
  FlushMode mode_;
  BatchResult result_;
};

}  // namespace

BatchResult Pipeline::batch(FlushMode mode) { return Batcher(*this, mode).run(); }

}  // namespace warden::pipeline
