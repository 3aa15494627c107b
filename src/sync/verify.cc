// verify_integrity: every checksum recomputed in parallel, compared with the manifest.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "warden/checksum.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/posix.h"
#include "warden/sync.h"

namespace warden {

namespace fs = std::filesystem;

const char* verify_finding_name(VerifyFinding::Kind kind) {
  switch (kind) {
    case VerifyFinding::Kind::kMissing:
      return "missing";
    case VerifyFinding::Kind::kExtra:
      return "extra";
    case VerifyFinding::Kind::kMismatch:
      return "mismatch";
  }
  return "unknown";
}

nlohmann::json VerifyReport::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const VerifyFinding& f : findings) {
    list.push_back({{"kind", verify_finding_name(f.kind)},
                    {"path", f.path},
                    {"detail", f.detail},
                    {"quarantine_dir", f.quarantine_dir}});
  }
  return {{"dataset", dataset},
          {"generation", generation},
          {"files_checked", files_checked},
          {"bytes_checked", bytes_checked},
          {"seconds", seconds},
          {"clean", clean()},
          {"findings", list}};
}

namespace {

struct Checked {
  bool exists = false;
  uint64_t bytes = 0;
  std::string sha256;
  std::string error;
};

// SHA-256 of each file on `threads` workers (each file is read sequentially in 1 MiB blocks;
// the parallelism is across files, which is where a dataset of 25 partitions has it).
std::vector<Checked> checksum_all(const std::vector<std::string>& paths, int threads) {
  std::vector<Checked> out(paths.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < paths.size(); i = next++) {
      auto info = stat_path(paths[i]);
      if (!info) continue;
      out[i].exists = true;
      out[i].bytes = info->size;
      try {
        out[i].sha256 = sha256_file(paths[i]);
      } catch (const Error& e) {
        out[i].error = e.what();
      }
    }
  };
  std::vector<std::thread> workers;
  const size_t count = std::min<size_t>(std::max(1, threads), std::max<size_t>(1, paths.size()));
  for (size_t i = 1; i < count; ++i) workers.emplace_back(work);
  work();
  for (std::thread& t : workers) t.join();
  return out;
}

}  // namespace

VerifyReport SyncManager::verify_integrity(const std::string& dataset, const LockToken& token) {
  (void)token;  // proves the caller holds the lock: quarantining moves files
  const auto started = std::chrono::steady_clock::now();
  validate_dataset_name(dataset);
  std::optional<Manifest> manifest = load_manifest(layout_, dataset);
  if (!manifest) {
    throw Error(ErrorCode::kNotFound, "verify " + dataset + ": no manifest at " +
                                          layout_.manifest_path(dataset) +
                                          "; run 'warden sync full --dataset " + dataset + "'");
  }
  VerifyReport report;
  report.dataset = dataset;
  report.generation = manifest->generation;

  std::vector<std::string> paths;
  std::set<std::string> named;
  for (const ManifestFile& f : manifest->files) {
    paths.push_back(layout_.absolute(f.path));
    named.insert(f.path);
  }
  int threads = options_.verify_threads > 0
                    ? options_.verify_threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<Checked> checked = checksum_all(paths, threads);

  std::vector<std::string> mismatched;
  for (size_t i = 0; i < manifest->files.size(); ++i) {
    const ManifestFile& f = manifest->files[i];
    const Checked& c = checked[i];
    if (!c.exists) {
      report.findings.push_back(
          {VerifyFinding::Kind::kMissing, f.path,
           "named by manifest generation " + std::to_string(manifest->generation) + " but absent",
           ""});
      continue;
    }
    ++report.files_checked;
    report.bytes_checked += c.bytes;
    std::string detail;
    if (!c.error.empty()) {
      detail = "unreadable: " + c.error;
    } else if (c.bytes != f.bytes) {
      detail =
          "size " + std::to_string(c.bytes) + " bytes, manifest says " + std::to_string(f.bytes);
    } else if (c.sha256 != f.sha256) {
      detail = "sha256 " + c.sha256 + ", manifest says " + f.sha256;
    }
    if (!detail.empty()) {
      report.findings.push_back({VerifyFinding::Kind::kMismatch, f.path, detail, ""});
      mismatched.push_back(paths[i]);
    }
  }

  // Extra: visible *.parquet files under the dataset that the manifest does not name.
  std::error_code error;
  const std::string dataset_dir = layout_.dataset_dir(dataset);
  for (fs::recursive_directory_iterator it(dataset_dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (!it->is_regular_file() || name.empty() || name[0] == '.' ||
        it->path().extension() != ".parquet") {
      continue;
    }
    std::string relative =
        "wrds/" + dataset + "/" + fs::relative(it->path(), dataset_dir).generic_string();
    if (!named.count(relative)) {
      report.findings.push_back(
          {VerifyFinding::Kind::kExtra, relative,
           "not named by manifest generation " + std::to_string(manifest->generation), ""});
    }
  }

  // Mismatched files are moved aside: readers must not read data that is not what the
  // manifest promises. The next full sync of those years replaces them.
  if (!mismatched.empty()) {
    std::string dir = quarantine_files(
        layout_, dataset + "_verify",
        "checksum mismatch against manifest generation " + std::to_string(manifest->generation),
        mismatched, {{"dataset", dataset}});
    for (VerifyFinding& f : report.findings) {
      if (f.kind == VerifyFinding::Kind::kMismatch) f.quarantine_dir = dir;
    }
  }
  for (const VerifyFinding& f : report.findings) {
    const bool mismatch = f.kind == VerifyFinding::Kind::kMismatch;
    std::string year = f.path.substr(f.path.find_last_of('/') + 1);
    year = year.substr(0, year.find('.'));
    const std::string fix =
        "warden sync full --dataset " + dataset + " --start-year " + year + " --end-year " + year;
    emit_event(EventLevel::kError, mismatch ? "sync.checksum.mismatch" : "sync.manifest.mismatch",
               std::string(verify_finding_name(f.kind)) + " " + f.path + ": " + f.detail +
                   (mismatch ? " (quarantined in " + f.quarantine_dir + ")" : "") +
                   (f.kind == VerifyFinding::Kind::kExtra ? "" : "; fix: " + fix),
               {{"dataset", dataset},
                {"kind", verify_finding_name(f.kind)},
                {"path", f.path},
                {"detail", f.detail}});
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

nlohmann::json DatasetStatus::to_json() const {
  nlohmann::json out = {{"dataset", dataset}, {"problem", problem}};
  if (manifest) {
    int first = manifest->files.empty() ? 0 : manifest->files.front().year;
    int last = manifest->files.empty() ? 0 : manifest->files.back().year;
    out["manifest"] = {{"generation", manifest->generation},
                       {"fencing_token", manifest->fencing_token},
                       {"committed_at", manifest->committed_at},
                       {"files", manifest->files.size()},
                       {"rows", manifest->total_rows()},
                       {"bytes", manifest->total_bytes()},
                       {"first_year", first},
                       {"last_year", last},
                       {"schema_hash", manifest->schema.hash()}};
  } else {
    out["manifest"] = nullptr;
  }
  if (progress) {
    out["progress"] = nlohmann::json::parse(progress->to_json());
  } else {
    out["progress"] = nullptr;
  }
  return out;
}

DatasetStatus SyncManager::status(const std::string& dataset) const {
  DatasetStatus status;
  status.dataset = dataset;
  try {
    status.manifest = load_manifest(layout_, dataset);
  } catch (const Error& e) {
    status.problem = e.what();
  }
  try {
    status.progress = load_progress(layout_, dataset);
  } catch (const Error& e) {
    if (status.problem.empty()) status.problem = e.what();
  }
  return status;
}

}  // namespace warden
