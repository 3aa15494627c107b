// Where the guard keeps the lease for a database file.
#include <unistd.h>

#include <filesystem>

#include "warden/checksum.h"
#include "warden/guard.h"

namespace warden {

namespace fs = std::filesystem;

namespace {

bool allowed_in_lock_name(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// The basename as a lock name. Replacing characters could make two names equal ("a b" and
// "a_b"), so a replaced name carries a hash of the original.
std::string lock_name_for(const std::string& basename) {
  std::string name = basename;
  bool changed = false;
  for (char& c : name) {
    if (!allowed_in_lock_name(c)) {
      c = '_';
      changed = true;
    }
  }
  if (name.front() == '.') {
    name.front() = '_';
    changed = true;
  }
  if (changed) {
    char suffix[20];
    std::snprintf(
        suffix, sizeof suffix, "-%08llx",
        static_cast<unsigned long long>(xxh3_64(basename.data(), basename.size()) & 0xffffffffULL));
    name += suffix;
  }
  return name;
}

}  // namespace

GuardPaths guard_paths(const std::string& db_path) {
  if (db_path.empty()) throw InvalidArgumentError("guard --db: the database path is empty");
  fs::path path = fs::absolute(fs::path(db_path)).lexically_normal();
  if (!path.has_filename() || path.filename() == "." || path.filename() == "..") {
    throw InvalidArgumentError("guard --db " + db_path + ": names a directory, not a file");
  }
  auto info = stat_path(path.string());
  if (info && info->type == FileInfo::Type::kDirectory) {
    throw InvalidArgumentError("guard --db " + db_path + ": is a directory, not a database file");
  }
  // Resolve the directory (symlinks, "..") so every spelling of the path meets one lease.
  std::error_code ignored;
  fs::path directory = fs::canonical(path.parent_path(), ignored);
  if (directory.empty()) directory = path.parent_path();

  GuardPaths paths;
  paths.db = (directory / path.filename()).string();
  paths.wal = paths.db + ".wal";
  paths.lock_dir = (directory / ".warden-guard").string();
  paths.lock_name = lock_name_for(path.filename().string());
  paths.lock_file = paths.lock_dir + "/" + paths.lock_name + ".lock";
  return paths;
}

LockOptions guard_lock_options() {
  LockOptions options;
  options.writer_id = "guard-" + random_uuid();
  return options;
}

std::string shell_quote(const std::string& text) {
  if (text.empty()) return "''";
  bool plain = true;
  for (char c : text) {
    if (!(allowed_in_lock_name(c) || c == '/' || c == ':' || c == '=' || c == '+' || c == ',' ||
          c == '@' || c == '%')) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  return quoted + "'";
}

}  // namespace warden
