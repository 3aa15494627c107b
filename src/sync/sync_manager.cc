// SyncManager: full and incremental sync, resume from checkpoints.
#include <algorithm>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "partition.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/posix.h"
#include "warden/sync.h"

namespace warden {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

std::string now_utc() { return format_utc(std::chrono::system_clock::now()); }

bool is_temp_name(const std::string& name) {
  return !name.empty() && name[0] == '.' && name.find(".tmp.") != std::string::npos;
}

// Removes hidden temp files of dead writers from `dir` whose name starts with `prefix`.
// Safe only under the dataset lock: then no live writer of this dataset exists.
void remove_temp_files(const std::string& dir, const std::string& prefix,
                       std::vector<std::string>& removed) {
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (!is_temp_name(name) || name.rfind(prefix, 0) != 0) continue;
    // A staging directory of exported years, or a temp file.
    std::error_code failed;
    if (fs::remove_all(entry.path(), failed) > 0 && !failed) {
      removed.push_back(entry.path().string());
    }
  }
}

// Rows per pass of a source that exports several years at once: enough to keep every core
// busy, few enough that the next pass's export overlaps this one's publication (scale 1 of
// the sample, 2.4 M rows, makes 3 passes: 3.0-3.3 s against 3.7-4.1 s with one pass of
// 4 M), that a crash mid-pass costs seconds, and that the pass's buffers stay small.
constexpr uint64_t kRowsPerPass = 1'000'000;

// The todo years as passes of consecutive years [first, last]: one year each, or, when the
// source exports several years in one pass, consecutive years up to kRowsPerPass rows.
std::vector<std::pair<int, int>> plan_passes(const std::vector<int>& todo, bool many_per_pass,
                                             const std::map<int, SourceFingerprint>& rows) {
  std::vector<std::pair<int, int>> passes;
  uint64_t in_pass = 0;
  for (int y : todo) {
    auto known = rows.find(y);
    const uint64_t n = known == rows.end() ? kRowsPerPass : known->second.rows;
    if (!passes.empty() && many_per_pass && passes.back().second == y - 1 &&
        in_pass + n <= kRowsPerPass) {
      passes.back().second = y;
      in_pass += n;
    } else {
      passes.push_back({y, y});
      in_pass = n;
    }
  }
  return passes;
}

// Fingerprints of the todo years, taken before their export (a change at the source between
// the two then shows as a difference at the next incremental sync, never hides one): one
// year_fingerprints call per run of consecutive years. None when the source fingerprints
// what it exports in the same pass.
std::map<int, SourceFingerprint> fingerprints_before_export(Source& src, const DatasetSpec& spec,
                                                            const std::vector<int>& todo) {
  std::map<int, SourceFingerprint> out;
  if (src.fingerprints_exports()) return out;
  for (size_t i = 0; i < todo.size();) {
    size_t j = i;
    while (j + 1 < todo.size() && todo[j + 1] == todo[j] + 1) ++j;
    out.merge(src.year_fingerprints(spec.query, spec.date_column, todo[i], todo[j]));
    i = j + 1;
  }
  return out;
}

std::string join_years(const std::vector<int>& years) {
  std::string text;
  for (int y : years) text += (text.empty() ? "" : ",") + std::to_string(y);
  return text;
}

}  // namespace

SyncManager::SyncManager(SyncOptions options, DatasetCatalog catalog, Source* source)
    : options_(std::move(options)),
      catalog_(std::move(catalog)),
      source_(source),
      layout_(options_.data_dir) {}

Source& SyncManager::source() const {
  if (!source_) {
    throw InvalidArgumentError(
        "sync: no source given; pass --source duckdb:PATH, set WARDEN_SOURCE, or put "
        "source = \"duckdb:PATH\" in the config file");
  }
  return *source_;
}

void SyncManager::remove_leftovers(const DatasetSpec& spec) const {
  std::vector<std::string> removed;
  remove_temp_files(layout_.table_dir(spec.name, spec.table), ".", removed);
  remove_temp_files(layout_.root() + "/manifests", "." + spec.name + ".json", removed);
  remove_temp_files(layout_.root() + "/sync_progress", "." + spec.name + ".json", removed);
  remove_temp_files(layout_.root() + "/schemas", "." + spec.name + ".json", removed);
  for (const std::string& path : removed) {
    emit_event(EventLevel::kInfo, "sync.leftover.removed",
               "removed " + path + ", left by an interrupted writer",
               {{"path", path}, {"dataset", spec.name}});
  }
  cleanup_quarantine(layout_, std::chrono::system_clock::now());
}

SyncResult SyncManager::full_sync(const std::string& dataset, std::optional<int> start_year,
                                  std::optional<int> end_year, const LockToken& token) {
  const DatasetSpec& spec = catalog_.get(dataset);
  int first = start_year.value_or(spec.start_year);
  int last = 0;
  if (end_year) {
    last = *end_year;
  } else {
    auto range = source().year_range(spec.query, spec.date_column);
    if (!range) {
      throw Error(ErrorCode::kNotFound, "sync full " + dataset + ": the source (" +
                                            source().describe() + ") has no rows for it");
    }
    last = range->second;
  }
  if (first > last || first < 1900 || last > 2200) {
    throw InvalidArgumentError("sync full " + dataset + ": empty or absurd year range " +
                               std::to_string(first) + ".." + std::to_string(last));
  }
  std::vector<int> years;
  for (int y = first; y <= last; ++y) years.push_back(y);
  return sync_years(spec, "full", years, /*allow_resume=*/true, token);
}

SyncResult SyncManager::incremental_sync(const std::string& dataset, const LockToken& token) {
  const DatasetSpec& spec = catalog_.get(dataset);
  std::optional<Manifest> manifest = load_manifest(layout_, dataset);
  if (!manifest || manifest->files.empty()) return full_sync(dataset, {}, {}, token);
  int current = 0;
  if (options_.current_year) {
    current = *options_.current_year;
  } else {
    auto range = source().year_range(spec.query, spec.date_column);
    current = range ? range->second : manifest->files.back().year;
  }
  std::vector<int> years, unchanged;
  const int first = manifest->files.front().year;
  // Every past year's fingerprint in one call (DuckDB, PostgreSQL: one grouped query).
  std::map<int, SourceFingerprint> past;
  if (first < current)
    past = source().year_fingerprints(spec.query, spec.date_column, first, current - 1);
  for (int y = first; y <= current; ++y) {
    const ManifestFile* file = manifest->find_year(y);
    if (y == current || !file) {
      years.push_back(y);
      continue;
    }
    const SourceFingerprint& now = past.at(y);
    if (now.rows == file->source_rows && now.aggregate == file->source_fingerprint) {
      unchanged.push_back(y);
    } else {
      emit_event(EventLevel::kInfo, "sync.revision.detected",
                 dataset + " " + std::to_string(y) + " changed at the source (rows " +
                     std::to_string(file->source_rows) + " -> " + std::to_string(now.rows) +
                     "): re-pulling it",
                 {{"dataset", dataset}, {"year", y}});
      years.push_back(y);
    }
  }
  SyncResult result = sync_years(spec, "incremental", years, /*allow_resume=*/false, token);
  result.years_skipped.insert(result.years_skipped.begin(), unchanged.begin(), unchanged.end());
  return result;
}

SyncResult SyncManager::sync_years(const DatasetSpec& spec, const std::string& operation,
                                   std::vector<int> years, bool allow_resume,
                                   const LockToken& token) {
  const auto started = Clock::now();
  const std::string& dataset = spec.name;
  Source& src = source();
  // A corrupt manifest or checkpoint stops the run before anything is written (never
  // treated as absent: that would orphan every committed partition).
  Manifest manifest = load_manifest(layout_, dataset).value_or(Manifest{});
  std::optional<SyncProgress> previous = load_progress(layout_, dataset);
  make_directories(layout_.table_dir(dataset, spec.table));
  remove_leftovers(spec);

  // The drift policy runs before anything is written: a breaking change stops here.
  SchemaRegistry registry(layout_);
  const TableSchema schema = src.schema(spec.query);
  registry.validate_schema(dataset, schema);

  manifest.dataset = dataset;
  manifest.table = spec.table;
  manifest.schema = schema;

  SyncResult result;
  result.dataset = dataset;
  result.operation = operation;

  // Resume: a previous run of the same kind that did not complete (it crashed, or failed)
  // has checkpointed the years it committed; skip those whose file is still as committed.
  SyncProgress progress;
  std::set<int> done;
  if (allow_resume && previous && previous->operation == operation &&
      previous->status != "completed") {
    for (int y : previous->years_completed) {
      const ManifestFile* file = manifest.find_year(y);
      auto info = file ? stat_path(layout_.absolute(file->path)) : std::nullopt;
      if (file && info && info->size == file->bytes &&
          std::find(years.begin(), years.end(), y) != years.end()) {
        done.insert(y);
      }
    }
    result.resumed = !done.empty();
    progress.started_at = previous->started_at;
    progress.total_rows_synced = previous->total_rows_synced;
  }
  if (progress.started_at.empty()) progress.started_at = now_utc();
  progress.dataset = dataset;
  progress.operation = operation;
  progress.status = "running";
  progress.fencing_token = token.token;
  std::vector<int> todo;
  for (int y : years) {
    if (done.count(y)) {
      progress.years_completed.push_back(y);
      result.years_skipped.push_back(y);
    } else {
      todo.push_back(y);
    }
  }
  progress.years_remaining = todo;
  progress.last_checkpoint = now_utc();
  if (result.resumed) {
    emit_event(EventLevel::kInfo, "sync.resumed",
               "resuming " + operation + " sync of " + dataset + " after years " +
                   join_years(progress.years_completed),
               {{"dataset", dataset}, {"years_completed", progress.years_completed}});
  }
  save_progress(layout_, progress);

  auto check_lock = [&] {
    if (options_.check_lock) options_.check_lock();
  };
  // One private DuckDB reads back every partition's Parquet (a database is ~100 ms to build:
  // its catalog registers every function).
  duckdb::Database inspector_db = duckdb::Database::in_memory({{"threads", "1"}});
  duckdb::Connection inspector = inspector_db.connect();
  try {
    const std::map<int, SourceFingerprint> fingerprints =
        fingerprints_before_export(src, spec, todo);
    size_t index = 0;
    const std::vector<std::pair<int, int>> passes =
        plan_passes(todo, src.exports_years_in_one_pass(), fingerprints);
    std::vector<uint64_t> expected_bytes(passes.size(), 0);  // for the 2x free-space rule
    for (size_t i = 0; i < passes.size(); ++i) {
      for (int year = passes[i].first; year <= passes[i].second; ++year) {
        if (const ManifestFile* old = manifest.find_year(year)) {
          expected_bytes[i] += old->bytes;
        } else if (!manifest.files.empty()) {
          expected_bytes[i] += manifest.total_bytes() / manifest.files.size();
        }
      }
    }
    // The next passes are exported on other threads while this one is published, so the
    // source (a network, or DuckDB on every core) is not idle during the fsyncs, checksums and
    // commits: as many at once as the source allows (a PostgreSQL server runs each COPY on
    // one core). Meanwhile only those threads use the source (the fingerprints were taken
    // above). Passes are published in order. If publishing fails, leaving this scope waits
    // for the exports in flight and removes their files.
    using Staged = std::unique_ptr<sync_internal::StagedYears>;
    auto export_pass = [&](size_t i) {
      check_lock();
      return std::async(std::launch::async, [&, i] {
        return std::make_unique<sync_internal::StagedYears>(
            src, layout_, options_, spec, passes[i].first, passes[i].second, expected_bytes[i]);
      });
    };
    const size_t in_flight = static_cast<size_t>(std::max(1, src.concurrent_exports()));
    std::deque<std::future<Staged>> exporting;
    size_t started_passes = 0;
    auto start_exports = [&] {
      while (started_passes < passes.size() && exporting.size() < in_flight) {
        exporting.push_back(export_pass(started_passes++));
      }
    };
    start_exports();
    for (size_t pass = 0; pass < passes.size(); ++pass) {
      Staged staged = exporting.front().get();
      exporting.pop_front();
      start_exports();
      for (const YearExport& export_file : staged->files()) {
        const int year = export_file.year;
        ++index;
        check_lock();
        sync_internal::PartitionRequest request;
        request.spec = &spec;
        request.year = year;
        request.expected_schema = schema;
        ManifestFile file =
            sync_internal::publish_partition(layout_, options_, inspector, request, export_file);
        const SourceFingerprint* fingerprint = nullptr;
        if (export_file.exported.fingerprint) {
          fingerprint = &*export_file.exported.fingerprint;
        } else if (auto found = fingerprints.find(year); found != fingerprints.end()) {
          fingerprint = &found->second;
        } else {
          throw Error(ErrorCode::kInternal, "sync " + dataset + " year " + std::to_string(year) +
                                                ": the source (" + src.describe() +
                                                ") gave no fingerprint for it");
        }
        file.source_rows = fingerprint->rows;
        file.source_fingerprint = fingerprint->aggregate;
        manifest.upsert(file);
        check_lock();
        manifest = commit_manifest(layout_, manifest, token.token);
        WARDEN_FAILPOINT("sync.partition.after_manifest");

        result.years_written.push_back(year);
        result.rows_written += file.rows;
        result.bytes_written += file.bytes;
        progress.years_completed.push_back(year);
        progress.years_remaining.erase(
            std::find(progress.years_remaining.begin(), progress.years_remaining.end(), year));
        progress.total_rows_synced += file.rows;
        progress.last_checkpoint = now_utc();
        save_progress(layout_, progress);

        PartitionProgress update;
        update.dataset = dataset;
        update.year = year;
        update.index = index;
        update.count = todo.size();
        update.rows = file.rows;
        update.rows_total = result.rows_written;
        update.elapsed_seconds = std::chrono::duration<double>(Clock::now() - started).count();
        update.rows_per_second =
            update.elapsed_seconds > 0 ? result.rows_written / update.elapsed_seconds : 0;
        update.eta_seconds = update.elapsed_seconds / index * (todo.size() - index);
        if (options_.on_progress) options_.on_progress(update);
      }
    }
  } catch (const std::exception& e) {
    progress.status = "failed";
    progress.error = e.what();
    progress.last_checkpoint = now_utc();
    try {
      save_progress(layout_, progress);
    } catch (const std::exception&) {
      // The disk may be what failed; the old checkpoint still says where to resume.
    }
    throw;
  }

  progress.status = "completed";
  progress.last_checkpoint = now_utc();
  save_progress(layout_, progress);
  // A run that had nothing to write still proves the manifest is there.
  if (todo.empty()) manifest = load_manifest(layout_, dataset).value_or(manifest);
  result.manifest = manifest;
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const auto slo = operation == "full" ? options_.full_slo : options_.incremental_slo;
  if (result.seconds > static_cast<double>(slo.count())) {
    emit_event(EventLevel::kWarning, "sync.duration.slo_breach",
               operation + " sync of " + dataset + " took " +
                   std::to_string(static_cast<int64_t>(result.seconds)) + " s, over its SLO of " +
                   std::to_string(slo.count()) + " s",
               {{"dataset", dataset},
                {"operation", operation},
                {"seconds", result.seconds},
                {"slo_seconds", slo.count()}});
  }
  emit_event(EventLevel::kInfo, "sync." + operation + ".completed",
             operation + " sync of " + dataset + ": " +
                 std::to_string(result.years_written.size()) + " partition(s), " +
                 std::to_string(result.rows_written) + " rows, generation " +
                 std::to_string(manifest.generation),
             {{"dataset", dataset},
              {"years_written", result.years_written},
              {"rows", result.rows_written},
              {"bytes", result.bytes_written},
              {"seconds", result.seconds},
              {"generation", manifest.generation}});
  return result;
}

}  // namespace warden
