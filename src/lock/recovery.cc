// Stale recovery, force-unlock, the fencing token and the leftovers of crashed operations.
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "lock_internal.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/posix_names.h"

namespace warden {
namespace lock_internal {

namespace {

uint64_t parse_token(const std::string& text, const std::string& path) {
  std::string digits = text;
  while (!digits.empty() && (digits.back() == '\n' || digits.back() == ' ')) digits.pop_back();
  bool ok = !digits.empty() && digits.size() <= 19;
  for (char c : digits) ok = ok && c >= '0' && c <= '9';
  if (!ok) {
    throw MalformedLockFileError("fencing token file " + path + " is malformed: \"" +
                                 digits.substr(0, 40) +
                                 "\" is not a number. Put back the highest token in use, e.g. "
                                 "`ln -sfn 1000 " +
                                 path + "` (tokens must never go down)");
  }
  return std::strtoull(digits.c_str(), nullptr, 10);
}

// The token file holds a lock record (a few hundred bytes) or a number.
constexpr size_t kMaxTokenFileBytes = 64 * 1024;

bool same_inode(const FileInfo& a, const FileInfo& b) {
  return a.device == b.device && a.inode == b.inode;
}

void emit(EventLevel level, const char* event, const std::string& message, nlohmann::json fields) {
  emit_event(level, event, message, fields);
}

}  // namespace

uint64_t read_token(const LockPaths& paths) {
  // The token file is replaced by renames only (a release moves its record there; recovery
  // and force-unlock put a symlink), so it may change kind between two calls below: look again.
  for (int attempt = 0;; ++attempt) {
    std::optional<UniqueFd> fd;
    try {
      fd = open_read_nonblocking(paths.token);
    } catch (const IoError& e) {
      if (e.errno_value() != ELOOP) throw;
      // A symlink whose target is the number.
      try {
        auto target = read_symlink(paths.token);
        if (!target) return 0;
        return parse_token(*target, paths.token);
      } catch (const IoError& again) {
        if (again.errno_value() != EINVAL || attempt >= 3) throw;
        continue;  // replaced by a released record meanwhile
      }
    }
    if (!fd) return 0;
    const std::string text = read_all(fd->get(), paths.token, kMaxTokenFileBytes);
    if (text.empty() || text.front() != '{') return parse_token(text, paths.token);  // by hand
    // The record of the last holder that released the lock: its token is the last issued.
    try {
      return LockRecord::parse(text, paths.token).token;
    } catch (const MalformedLockFileError& e) {
      throw MalformedLockFileError(std::string("fencing token file ") + paths.token +
                                   " is malformed: " + e.what() +
                                   ". Put back the highest token in use, e.g. `ln -sfn 1000 " +
                                   paths.token + "` (tokens must never go down)");
    }
  }
}

void write_token(const LockPaths& paths, uint64_t token) {
  replace_symlink(std::to_string(token), paths.token);
}

void raise_token_to(const LockPaths& paths, uint64_t token) {
  if (read_token(paths) >= token) return;
  write_token(paths, token);
  fsync_directory(paths.dir);
}

std::optional<UniqueFd> take_recovery_mutex(const LockPaths& paths,
                                            std::chrono::milliseconds timeout) {
  UniqueFd fd = open_read_write(paths.recovery_mutex, 0644);
  if (!ofd_lock_wait(fd.get(), true, timeout, paths.recovery_mutex)) return std::nullopt;
  return fd;
}

void sweep_leftovers(const LockPaths& paths) {
  // Names of crashed operations: ".<name>.lock.tmp.<pid>.<nonce>" (a record being published),
  // ".<name>.token.tmp.<pid>.<nonce>" (a token being published), and
  // "<name>.lock.{release,recovery}.<pid>.<nonce>" (a record being removed). Only those of a
  // dead pid and older than a minute go: a live operation (maybe on another host sharing the
  // directory) must never lose its file.
  const std::string prefixes[] = {"." + paths.name + ".lock.tmp.", "." + paths.name + ".token.tmp.",
                                  paths.name + ".lock.release.", paths.name + ".lock.recovery."};
  try {
    for (const auto& entry : std::filesystem::directory_iterator(paths.dir)) {
      std::string file = entry.path().filename().string();
      for (const auto& prefix : prefixes) {
        if (file.rfind(prefix, 0) != 0) continue;
        pid_t pid = static_cast<pid_t>(std::atol(file.c_str() + prefix.size()));
        std::string path = paths.dir + "/" + file;
        auto info = stat_path(path);
        if (!info || pid_exists(pid)) break;
        if (WallClock::now() - info->modified < std::chrono::minutes(1)) break;
        if (info->type != FileInfo::Type::kDirectory) remove_file(path);
        break;
      }
    }
  } catch (const std::exception&) {
    // Leftovers are harmless; a failing sweep must not fail an acquisition.
  }
}

bool recover_stale(const LockPaths& paths, const Observation& seen, const Judgement& judgement,
                   std::chrono::milliseconds timeout) {
  auto mutex = take_recovery_mutex(paths, timeout);
  if (!mutex) return false;
  // Under the mutex no other recoverer moves the name, and a stale holder does not: if the
  // name still holds the inode we judged, the rename below moves exactly that inode.
  auto now_info = stat_path(paths.lock);
  if (!now_info || !same_inode(*now_info, seen.info)) return false;
  const LockRecord& stale = *seen.record;
  // Tokens only grow: the next holder's token must be above the stale one's, even if its
  // holder died before it published the token file.
  raise_token_to(paths, stale.token);
  WARDEN_FAILPOINT("lock.recover.before_rename");
  const std::string moved = paths.private_name("recovery");
  if (!try_rename(paths.lock, moved)) return false;
  WARDEN_FAILPOINT("lock.recover.after_rename");

  // Check that what we moved is the record we judged stale (writer_id, token, inode), and,
  // on this host, that still nobody holds it. Otherwise put it back.
  bool same = false;
  if (auto fd = open_read_nonblocking(moved)) {
    FileInfo info = stat_fd(fd->get(), moved);
    try {
      LockRecord now = LockRecord::parse(read_all(fd->get(), moved, 64 * 1024), moved);
      same = same_inode(info, seen.info) && now.writer_id == stale.writer_id &&
             now.token == stale.token;
      if (same && now.hostname == host_name() && ofd_is_locked_by_other(fd->get(), moved)) {
        same = false;
      }
    } catch (const MalformedLockFileError&) {
      same = false;
    }
  }
  if (!same) {
    if (!rename_noreplace(moved, paths.lock)) {
      emit(EventLevel::kCritical, "lock.recover.conflict",
           "moved a live lock aside and could not put it back: a new holder took the name",
           {{"lock", paths.name}, {"moved_to", moved}});
    }
    return false;
  }
  remove_file(moved);
  WARDEN_FAILPOINT("lock.recover.after_remove");
  fsync_directory(paths.dir);
  emit(EventLevel::kWarning, "lock.recovered",
       "recovered stale lock " + paths.name + " of " + describe_holder(stale) + ": " +
           judgement.reason,
       {{"lock", paths.name},
        {"path", paths.lock},
        {"verdict", lock_verdict_name(judgement.verdict)},
        {"reason", judgement.reason},
        {"holder_pid", stale.pid},
        {"holder_host", stale.hostname},
        {"holder_writer_id", stale.writer_id},
        {"holder_token", stale.token}});
  sweep_leftovers(paths);
  return true;
}

void throw_malformed(const LockPaths& paths, const Observation& seen) {
  std::string message =
      "lock file " + paths.lock + " is malformed: " + seen.problem +
      ". warden never removes it on its own; inspect it, then run: " + force_unlock_command(paths);
  emit(EventLevel::kError, "lock.malformed", message,
       {{"lock", paths.name}, {"path", paths.lock}, {"problem", seen.problem}});
  throw MalformedLockFileError(message);
}

}  // namespace lock_internal

using lock_internal::LockPaths;

uint64_t last_fencing_token(const std::string& lock_dir, const std::string& name) {
  validate_lock_name(name);
  LockPaths paths(lock_dir, name);
  // A holder's token is in its record until it releases (then the record becomes the token
  // file) or is recovered (then the token file is raised to it).
  uint64_t issued = lock_internal::read_token(paths);
  auto seen = lock_internal::observe(paths);
  if (seen.record) issued = std::max(issued, seen.record->token);
  return issued;
}

ForceUnlockResult force_unlock(const std::string& lock_dir, const std::string& name,
                               bool allow_live_holder, const LockOptions& options) {
  validate_lock_name(name);
  LockPaths paths(lock_dir, name);
  auto seen = lock_internal::observe(paths);
  ForceUnlockResult result;
  result.before = lock_internal::describe(paths, seen, options);
  if (seen.kind == lock_internal::Observation::Kind::kAbsent) {
    result.message = "no lock " + name + " in " + lock_dir + ": nothing to remove";
    return result;
  }
  std::string holder = seen.record ? lock_internal::describe_holder(*seen.record) : seen.problem;
  if (result.before.verdict == LockVerdict::kHeld && result.before.holder_alive &&
      !allow_live_holder) {
    result.message = "refusing to remove lock " + name + ": it is held by a live process on " +
                     "this host, " + holder + ". Stop that process (its lock is then released " +
                     "or recovered on its own), or add --force to remove it anyway (the holder " +
                     "learns it lost the lock at its next refresh)";
    return result;
  }
  auto mutex = lock_internal::take_recovery_mutex(paths, std::chrono::seconds(10));
  if (!mutex) {
    result.message = "another recovery of lock " + name + " is in progress; run this again";
    return result;
  }
  auto now_info = stat_path(paths.lock);
  if (!now_info || now_info->inode != seen.info.inode || now_info->device != seen.info.device) {
    result.message = "lock " + name + " changed while we looked at it; run this again";
    return result;
  }
  if (seen.record) lock_internal::raise_token_to(paths, seen.record->token);
  const std::string moved = paths.private_name("removed");
  if (!try_rename(paths.lock, moved)) {
    result.message = "lock " + name + " was removed by someone else meanwhile";
    return result;
  }
  if (seen.info.type == FileInfo::Type::kDirectory) {
    result.message = "moved directory " + paths.lock + " aside to " + moved +
                     " (inspect it and delete it); the lock is free";
  } else {
    remove_file(moved);
    result.message = seen.record ? "removed lock " + name + " of " + holder
                                 : "removed malformed lock file " + paths.lock;
  }
  fsync_directory(paths.dir);
  result.removed = true;
  emit_event(EventLevel::kWarning, "lock.force_unlocked", result.message,
             {{"lock", name},
              {"path", paths.lock},
              {"verdict", lock_verdict_name(result.before.verdict)},
              {"holder_alive", result.before.holder_alive}});
  return result;
}

}  // namespace warden
