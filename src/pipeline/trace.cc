// trace: the seed's trace-pipeline.sh, over the store and the files. Read-only: it reports
// what looks wrong, why, and the command that resolves it, and changes nothing.
#include <filesystem>
#include <map>
#include <set>

#include "warden/checksum.h"
#include "warden/error.h"
#include "warden/lease_lock.h"
#include "warden/pipeline.h"
#include "warden/posix.h"

namespace warden::pipeline {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

int64_t to_int(const sql::Value& value) { return value ? std::stoll(*value) : 0; }

// Files with `extension` one level below `dir`'s date directories: id -> path.
std::map<std::string, std::string> files_by_id(const std::string& dir,
                                               const std::string& extension) {
  std::map<std::string, std::string> found;
  std::error_code error;
  for (const auto& date_dir : fs::directory_iterator(dir, error)) {
    if (!date_dir.is_directory()) continue;
    std::error_code inner;
    for (const auto& entry : fs::directory_iterator(date_dir.path(), inner)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.' || entry.path().extension() != extension) continue;
      found[entry.path().stem().string()] = entry.path().string();
    }
  }
  return found;
}

struct Record {
  std::string id, date, path, status, error, output, output_checksum;
  int64_t file_count = 0, attempts = 0, claim_expires_ms = 0;
  bool claim_expires_set = false;
};

std::map<std::string, Record> load_records(sql::Database& db) {
  std::map<std::string, Record> records;
  for (const sql::Row& row :
       db.query("SELECT id, date_prefix, path, status, error, output, output_checksum, file_count, "
                "attempts, claim_expires_ms FROM pipeline_manifests ORDER BY id")) {
    Record r;
    r.id = row[0].value_or("");
    r.date = row[1].value_or("");
    r.path = row[2].value_or("");
    r.status = row[3].value_or("");
    r.error = row[4].value_or("");
    r.output = row[5].value_or("");
    r.output_checksum = row[6].value_or("");
    r.file_count = to_int(row[7]);
    r.attempts = to_int(row[8]);
    r.claim_expires_set = row[9].has_value();
    r.claim_expires_ms = to_int(row[9]);
    records[r.id] = r;
  }
  return records;
}

std::string output_path(const PipelineLayout& layout, const Record& r) {
  if (r.output.empty()) return layout.parquet_path(r.date, r.id);
  return r.output[0] == '/' ? r.output : layout.data_dir() + "/" + r.output;
}

bool lease_active(const std::vector<LockStatus>& leases, const std::string& name) {
  for (const LockStatus& s : leases) {
    if (s.name == name) return s.verdict == LockVerdict::kHeld;
  }
  return false;
}

}  // namespace

TraceReport Pipeline::trace() {
  TraceReport report;
  report.store = db_->location();
  sql::Database& db = *db_;
  const std::string today_date = today();
  const int64_t now = db.clock_ms();
  const int64_t threshold = options_.threshold;
  report.leases = lease_status(db);
  auto add = [&report](std::string kind, std::string subject, std::string detail, std::string fix) {
    report.findings.push_back(
        {std::move(kind), std::move(subject), std::move(detail), std::move(fix)});
  };

  for (const char* s : {kFilePending, kFileManifested}) report.files_by_status[s] = 0;
  for (const sql::Row& row :
       db.query("SELECT status, COUNT(*) FROM pipeline_files GROUP BY status")) {
    report.files_by_status[row[0].value_or("")] = to_int(row[1]);
  }
  for (const char* s :
       {kManifestPending, kManifestProcessing, kManifestCompleted, kManifestFailed}) {
    report.manifests_by_status[s] = 0;
  }
  std::map<std::string, Record> records = load_records(db);
  for (const auto& [id, r] : records) ++report.manifests_by_status[r.status];

  std::map<std::string, DateSummary> dates;
  for (const sql::Row& row :
       db.query("SELECT date_prefix, status, COUNT(*) FROM pipeline_files GROUP BY date_prefix, "
                "status")) {
    DateSummary& d = dates[row[0].value_or("")];
    (row[1] == std::optional<std::string>(kFilePending) ? d.pending : d.manifested) +=
        to_int(row[2]);
  }
  for (const auto& [id, r] : records) ++dates[r.date].manifests;
  for (auto& [date, d] : dates) {
    d.date = date;
    report.dates.push_back(d);
  }

  // Files manifested into nothing: no record, or a record whose file does not list them.
  std::map<std::string, std::set<std::string>> listed;  // id -> keys in its manifest file
  for (const auto& [id, r] : records) {
    if (!fs::exists(r.path)) {
      add("record_without_manifest_file", id,
          "MANIFEST record " + id + " (" + r.status + ") names " + r.path +
              ", which does not exist, so no worker can convert its files",
          "warden pipeline flush   (rebuilds the manifest file from the store)");
      continue;
    }
    try {
      for (const ManifestEntry& e : load_manifest_document(r.path).files) listed[id].insert(e.key);
    } catch (const Error& e) {
      add("record_without_manifest_file", id, e.what(),
          "move the file aside, then: warden pipeline flush   (rebuilds it from the store)");
    }
  }
  for (const sql::Row& row :
       db.query("SELECT key, manifest_id FROM pipeline_files WHERE status = 'manifested' ORDER BY "
                "key")) {
    const std::string key = row[0].value_or("");
    const std::string id = row[1].value_or("");
    auto record = records.find(id);
    if (record == records.end()) {
      add("file_without_manifest", key,
          "marked manifested" +
              (id.empty() ? std::string(" with no manifest id")
                          : " into manifest " + id + ", which has no record") +
              ": its rows are in no batch and would never be converted",
          "set it back to pending so the next batch takes it: UPDATE pipeline_files SET "
          "status = 'pending', manifest_id = NULL WHERE key = '<key>'; then warden pipeline "
          "flush");
    } else if (listed.count(id) && !listed[id].count(key)) {
      add("file_without_manifest", key,
          "marked manifested into " + id + ", but the manifest file " + record->second.path +
              " does not list it",
          "remove " + record->second.path + ", then: warden pipeline flush   (rebuilds it)");
    }
  }

  // Files on disk against records.
  std::map<std::string, std::string> manifest_files = files_by_id(layout_.manifests_dir(), ".json");
  std::map<std::string, std::string> outputs = files_by_id(layout_.parquet_dir(), ".parquet");
  report.manifest_files = static_cast<int64_t>(manifest_files.size());
  report.parquet_files = static_cast<int64_t>(outputs.size());
  for (const auto& [id, path] : manifest_files) {
    if (records.count(id)) continue;
    const std::string date = id.substr(0, 10);
    if (lease_active(report.leases, batch_lease_name(date))) continue;  // a batch in flight
    add("manifest_file_without_record", path,
        "no MANIFEST record names it (a batcher stopped between writing it and recording it); "
        "its files are still pending",
        "warden pipeline flush   (rebuilds it with the same id, or removes it)");
  }
  for (const auto& [id, path] : outputs) {
    auto record = records.find(id);
    if (record != records.end() && record->second.status == kManifestCompleted) continue;
    if (record != records.end() && record->second.status == kManifestProcessing &&
        record->second.claim_expires_ms > now) {
      continue;  // its worker is between publishing and recording
    }
    add("output_without_completed_record", path,
        record == records.end() ? "no MANIFEST record has this id: nothing accounts for its rows"
                                : "its MANIFEST record is " + record->second.status +
                                      ", so its rows are not counted as converted",
        record == records.end()
            ? "move it out of " + layout_.parquet_dir() + " (nothing will read or rewrite it)"
            : "warden pipeline work --once   (rewrites it under the same "
              "name and completes the record)");
  }
  for (const auto& [id, r] : records) {
    if (r.status == kManifestCompleted) {
      const std::string path = output_path(layout_, r);
      if (!fs::exists(path)) {
        add("completed_output_missing", id,
            "MANIFEST " + id + " is completed but its output " + path + " does not exist",
            "restore " + path +
                " from a backup, or set the record back to pending "
                "(UPDATE pipeline_manifests SET status = 'pending' WHERE id = '" +
                id + "') and run warden pipeline work --once");
      } else if (!r.output_checksum.empty() && sha256_file(path) != r.output_checksum) {
        add("completed_output_checksum_mismatch", id,
            "output " + path + " has sha256 " + sha256_file(path) + ", the record says " +
                r.output_checksum,
            "restore " + path +
                " from a backup, or set the record back to pending "
                "(UPDATE pipeline_manifests SET status = 'pending' WHERE id = '" +
                id + "') and run warden pipeline work --once");
      }
    } else if (r.status == kManifestFailed) {
      add("manifest_failed", id,
          "failed after " + std::to_string(r.attempts) + " attempt(s): " + r.error,
          "fix the cause, then: warden pipeline reprocess-failed");
    } else if (r.status == kManifestProcessing && r.claim_expires_set &&
               r.claim_expires_ms <= now) {
      add("claim_expired", id,
          "processing, but its worker's claim expired " +
              std::to_string((now - r.claim_expires_ms) / 1000) +
              " s ago (the worker died or hangs)",
          "warden pipeline work --once   (takes the claim over)");
    }
  }

  // Pending files the batcher should have taken.
  for (const DateSummary& d : report.dates) {
    if (d.pending == 0 || lease_active(report.leases, batch_lease_name(d.date))) continue;
    if (d.pending >= threshold) {
      add("pending_over_threshold", d.date,
          std::to_string(d.pending) + " files of " + d.date + " are pending (threshold " +
              std::to_string(threshold) +
              ") and no batch is running: a stuck lease or a "
              "batcher that stopped",
          "warden pipeline check-locks, then warden pipeline flush");
    } else if (d.date < today_date) {
      add("pending_older_date", d.date,
          std::to_string(d.pending) + " files of " + d.date +
              " are pending below the threshold; the orphan flush takes them at the next run",
          "warden pipeline flush");
    }
  }
  for (const LockStatus& s : report.leases) {
    if (s.verdict == LockVerdict::kStaleExpired) {
      add("lease_expired", s.name,
          "the lease expired " + std::to_string(-s.expires_in.count() / 1000) +
              " s ago and was never released (its holder died); it no longer blocks anyone",
          "warden pipeline check-locks --clear-expired");
    }
  }

  int64_t named = 0, completed = report.manifests_by_status[kManifestCompleted];
  for (const auto& [id, r] : records) named += r.file_count;
  report.correlations = {
      {"manifest files on disk = MANIFEST records", static_cast<int64_t>(records.size()),
       report.manifest_files},
      {"manifested files = files named by MANIFEST records", named,
       report.files_by_status[kFileManifested]},
      {"completed MANIFEST records = MANIFEST records", static_cast<int64_t>(records.size()),
       completed},
      {"Parquet outputs = completed MANIFEST records", completed, report.parquet_files},
  };
  return report;
}

Json TraceReport::to_json() const {
  Json out = {{"store", store},
              {"files", files_by_status},
              {"manifests", manifests_by_status},
              {"manifest_files", manifest_files},
              {"parquet_files", parquet_files},
              {"clean", clean()}};
  out["dates"] = Json::array();
  for (const DateSummary& d : dates) {
    out["dates"].push_back({{"date", d.date},
                            {"pending", d.pending},
                            {"manifested", d.manifested},
                            {"manifests", d.manifests}});
  }
  out["leases"] = Json::array();
  for (const LockStatus& s : leases) {
    Json lease = {{"name", s.name},
                  {"verdict", lock_verdict_name(s.verdict)},
                  {"expires_in_ms", s.expires_in.count()}};
    if (s.record) lease["holder"] = s.record->writer_id;
    out["leases"].push_back(lease);
  }
  out["correlations"] = Json::array();
  for (const Correlation& c : correlations) {
    out["correlations"].push_back(
        {{"name", c.name}, {"expected", c.expected}, {"actual", c.actual}, {"ok", c.ok()}});
  }
  out["findings"] = Json::array();
  for (const TraceFinding& f : findings) {
    out["findings"].push_back(
        {{"kind", f.kind}, {"subject", f.subject}, {"detail", f.detail}, {"fix", f.fix}});
  }
  return out;
}

FileTrace Pipeline::trace_file(const std::string& key_or_path) {
  FileTrace t;
  std::error_code error;
  t.key = fs::exists(key_or_path, error) ? fs::canonical(key_or_path).string() : key_or_path;
  sql::Rows file = db_->query(
      "SELECT status, date_prefix, checksum, manifest_id, size FROM pipeline_files WHERE key = $1",
      {t.key});
  if (file.empty()) {
    t.problems.push_back("not registered: run warden pipeline ingest " + t.key);
    return t;
  }
  t.registered = true;
  t.status = file[0][0].value_or("");
  t.date = file[0][1].value_or("");
  t.checksum = file[0][2].value_or("");
  t.manifest_id = file[0][3].value_or("");
  t.size = to_int(file[0][4]);
  if (t.status == kFilePending) return t;  // waiting for its batch: nothing broken yet
  sql::Rows record = db_->query(
      "SELECT status, path, error, output, output_checksum, attempts, date_prefix FROM "
      "pipeline_manifests WHERE id = $1",
      {t.manifest_id});
  if (record.empty()) {
    t.problems.push_back("manifested into " + t.manifest_id + ", which has no MANIFEST record");
    return t;
  }
  t.manifest_record = true;
  t.manifest_status = record[0][0].value_or("");
  t.manifest_path = record[0][1].value_or("");
  t.manifest_error = record[0][2].value_or("");
  t.output = record[0][3].value_or("");
  t.output_checksum = record[0][4].value_or("");
  t.attempts = to_int(record[0][5]);
  t.manifest_file_exists = fs::exists(t.manifest_path, error);
  if (t.manifest_file_exists) {
    try {
      for (const ManifestEntry& e : load_manifest_document(t.manifest_path).files) {
        if (e.key == t.key) t.listed_in_manifest_file = true;
      }
    } catch (const Error& e) {
      t.problems.push_back(e.what());
    }
    if (!t.listed_in_manifest_file) t.problems.push_back("the manifest file does not list it");
  } else {
    t.problems.push_back("the manifest file " + t.manifest_path +
                         " is missing: warden pipeline flush rebuilds it");
  }
  Record r;
  r.id = t.manifest_id;
  r.date = record[0][6].value_or("");
  r.output = t.output;
  const std::string output = output_path(layout_, r);
  t.output_exists = fs::exists(output, error);
  if (t.manifest_status == kManifestCompleted) {
    if (!t.output_exists) {
      t.problems.push_back("completed, but the output " + output + " is missing");
    } else if (!t.output_checksum.empty() && sha256_file(output) != t.output_checksum) {
      t.problems.push_back("the output " + output + " does not match its recorded checksum");
    }
  } else if (t.manifest_status == kManifestFailed) {
    t.problems.push_back("its manifest failed: " + t.manifest_error +
                         "; fix it, then warden pipeline reprocess-failed");
  }
  if (t.output.empty()) t.output = output;
  return t;
}

Json FileTrace::to_json() const {
  Json out = {{"key", key}, {"registered", registered}};
  if (registered) {
    out["file"] = {{"status", status},
                   {"date", date},
                   {"size", size},
                   {"sha256", checksum},
                   {"manifest_id", manifest_id.empty() ? Json(nullptr) : Json(manifest_id)}};
  }
  if (manifest_record) {
    out["manifest"] = {{"id", manifest_id},
                       {"status", manifest_status},
                       {"path", manifest_path},
                       {"file_exists", manifest_file_exists},
                       {"lists_file", listed_in_manifest_file},
                       {"attempts", attempts},
                       {"error", manifest_error.empty() ? Json(nullptr) : Json(manifest_error)}};
    out["output"] = {{"path", output},
                     {"exists", output_exists},
                     {"sha256", output_checksum.empty() ? Json(nullptr) : Json(output_checksum)}};
  }
  out["problems"] = problems;
  out["ok"] = problems.empty() && registered;
  return out;
}

}  // namespace warden::pipeline
