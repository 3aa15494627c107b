// Registering landed files: the seed's "each file is tracked as pending" step.
//
// A file's key is its canonical absolute path, so the same file named through a symlink or a
// relative path is one record. The record keeps the size and SHA-256 at registration: a key
// seen again with other content is refused, because its old content may already be in a
// manifest (or a Parquet output) and silently re-registering would lose or duplicate rows.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "warden/checksum.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/pipeline.h"
#include "warden/posix.h"

namespace warden::pipeline {

namespace {

namespace fs = std::filesystem;

struct Landed {
  std::string key;
  uint64_t size = 0;
  std::string checksum;
  std::string date;
};

bool has_ndjson_extension(const fs::path& path) {
  const std::string ext = path.extension().string();
  return ext == ".ndjson" || ext == ".json" || ext == ".jsonl";
}

// Every file a path names: a file itself, or a directory's NDJSON files (recursively,
// skipping hidden names: atomic writes' temp files start with '.'), sorted.
std::vector<std::string> expand(const std::vector<std::string>& paths, const std::string& skip) {
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (const std::string& path : paths) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (error || !fs::exists(status)) {
      throw InvalidArgumentError("pipeline ingest " + path + ": no such file or directory");
    }
    std::vector<std::string> found;
    if (fs::is_directory(status)) {
      fs::recursive_directory_iterator it(path, fs::directory_options::follow_directory_symlink),
          end;
      for (; it != end; ++it) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_directory()) {
          if (fs::canonical(it->path()).string() == skip) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && has_ndjson_extension(it->path())) {
          found.push_back(fs::canonical(it->path()).string());
        }
      }
      std::sort(found.begin(), found.end());
    } else if (fs::is_regular_file(status)) {
      found.push_back(fs::canonical(path).string());
    } else {
      throw InvalidArgumentError("pipeline ingest " + path + ": not a regular file or a directory");
    }
    for (std::string& key : found) {
      if (seen.insert(key).second) keys.push_back(std::move(key));
    }
  }
  return keys;
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("pipeline ingest " + path + ": cannot open for reading", 0);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) return line;
  }
  return "";
}

// Throws VerificationError when `file`'s key is registered with other content.
void refuse_if_changed(sql::Database& db, const Landed& file) {
  sql::Rows known = db.query(
      "SELECT checksum, size, status, manifest_id FROM pipeline_files WHERE key = $1", {file.key});
  if (known.empty() || known[0][0] == file.checksum) return;
  const std::string where = known[0][3] ? "manifest " + *known[0][3] : std::string("still pending");
  throw VerificationError("pipeline ingest " + file.key + ": already registered with sha256 " +
                          known[0][0].value_or("?") + " (" + known[0][1].value_or("?") +
                          " bytes, " + known[0][2].value_or("?") + ", " + where +
                          ") but its content is now sha256 " + file.checksum + " (" +
                          std::to_string(file.size) +
                          " bytes); a landed file must not change: land the new content under a "
                          "new name. Nothing was registered");
}

// The date rules of PipelineOptions, in their order. Throws InvalidArgumentError naming the
// file, the rule that failed and the option that changes it.
std::string date_of(const PipelineOptions& options, const std::string& key) {
  if (!options.date_field.empty()) {
    const std::string line = first_line(key);
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) {
      throw InvalidArgumentError("pipeline ingest " + key +
                                 ": the first line is not a JSON object, so --date-field '" +
                                 options.date_field + "' cannot date it");
    }
    auto it = record.find(options.date_field);
    const std::string value =
        it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
    if (value.size() < 10 || !is_date(value.substr(0, 10))) {
      throw InvalidArgumentError("pipeline ingest " + key + ": the first record's field '" +
                                 options.date_field +
                                 "' is missing or does not start with a YYYY-MM-DD date");
    }
    return value.substr(0, 10);
  }
  std::smatch match;
  if (!options.date_pattern.empty()) {
    std::regex pattern;
    try {
      pattern = std::regex(options.date_pattern);
    } catch (const std::regex_error& e) {
      throw InvalidArgumentError("pipeline: --date-pattern '" + options.date_pattern +
                                 "' is not a regular expression: " + e.what());
    }
    if (pattern.mark_count() != 1) {
      throw InvalidArgumentError("pipeline: --date-pattern '" + options.date_pattern +
                                 "' must have exactly one capture group (the YYYY-MM-DD date)");
    }
    if (!std::regex_search(key, match, pattern) || !is_date(match[1].str())) {
      throw InvalidArgumentError("pipeline ingest " + key + ": --date-pattern '" +
                                 options.date_pattern + "' finds no YYYY-MM-DD date in the path");
    }
    return match[1].str();
  }
  static const std::regex kFirstDate(R"((\d{4}-\d{2}-\d{2}))");
  std::string rest = key;
  while (std::regex_search(rest, match, kFirstDate)) {
    if (is_date(match[1].str())) return match[1].str();
    rest = match.suffix().str();
  }
  throw InvalidArgumentError("pipeline ingest " + key +
                             ": no YYYY-MM-DD date in the path; name the date with "
                             "--date-pattern REGEX (one capture group) or --date-field FIELD");
}

}  // namespace

IngestResult Pipeline::ingest(const std::vector<std::string>& paths) {
  IngestResult result;
  std::string skip = layout_.root();
  std::error_code error;
  if (fs::exists(skip, error)) skip = fs::canonical(skip).string();
  result.keys = expand(paths, skip);

  // Everything that reads the files happens before the transaction: it must be short.
  std::vector<Landed> landed;
  for (const std::string& key : result.keys) {
    std::optional<FileInfo> info = stat_path(key);
    if (!info) throw IoError("pipeline ingest " + key + ": vanished while registering", ENOENT);
    landed.push_back({key, info->size, sha256_file(key), date_of(options_, key)});
  }

  // A changed file is refused before the transaction (the common case), and again inside it
  // (a file re-registered by someone else meanwhile); either way nothing is registered.
  for (const Landed& file : landed) refuse_if_changed(*db_, file);
  std::vector<const Landed*> fresh;
  db_->transaction([&] {
    fresh.clear();  // the transaction may rerun this function
    for (const Landed& file : landed) {
      sql::Rows inserted = db_->query(
          std::string("INSERT INTO pipeline_files (key, size, checksum, date_prefix, status, "
                      "registered_ms) VALUES ($1, $2, $3, $4, 'pending', ") +
              db_->now_ms() + ") ON CONFLICT (key) DO NOTHING RETURNING key",
          {file.key, std::to_string(file.size), file.checksum, file.date});
      if (!inserted.empty()) {
        fresh.push_back(&file);
        continue;
      }
      refuse_if_changed(*db_, file);
    }
  });
  result.registered = fresh.size();
  result.already_known = landed.size() - fresh.size();
  for (const Landed* file : fresh) {
    emit_event(EventLevel::kInfo, "pipeline.file.registered",
               "registered " + file->key + " (" + file->date + ")",
               {{"key", file->key}, {"date", file->date}, {"size", file->size}});
  }
  result.batch = batch(FlushMode::kThreshold);
  return result;
}

}  // namespace warden::pipeline
