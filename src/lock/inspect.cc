// Looking at a lock without changing it: read the file without trusting it, judge it, and
// describe it for `warden lock status`.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "lock_internal.h"
#include "warden/events.h"
#include "warden/posix_names.h"

namespace warden {
namespace lock_internal {

namespace {

// A record is a few hundred bytes; anything far larger is not one (10 MB of garbage must
// neither be read whole nor parsed).
constexpr uint64_t kMaxRecordBytes = 64 * 1024;

const char* type_problem(FileInfo::Type type) {
  switch (type) {
    case FileInfo::Type::kDirectory:
      return "it is a directory, not a lock file";
    case FileInfo::Type::kSymlink:
      return "it is a symbolic link, not a lock file (lock files are never links)";
    case FileInfo::Type::kFifo:
      return "it is a FIFO (named pipe), not a lock file";
    case FileInfo::Type::kSocket:
      return "it is a socket, not a lock file";
    default:
      return "it is not a regular file";
  }
}

std::string seconds_text(std::chrono::milliseconds d) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1fs", static_cast<double>(d.count()) / 1000.0);
  return buffer;
}

}  // namespace

LockPaths::LockPaths(const std::string& lock_dir, const std::string& lock_name)
    : dir(lock_dir),
      name(lock_name),
      lock(lock_dir + "/" + lock_name + ".lock"),
      token(lock_dir + "/" + lock_name + ".token"),
      recovery_mutex(lock_dir + "/." + lock_name + ".recovery"),
      wait_queue(lock_dir + "/." + lock_name + ".waiters") {}

std::string LockPaths::private_name(const std::string& kind) const {
  char nonce[24];
  std::snprintf(nonce, sizeof nonce, "%016llx", static_cast<unsigned long long>(random_u64()));
  return dir + "/" + name + ".lock." + kind + "." + std::to_string(self_identity().pid) + "." +
         nonce;
}

Observation observe(const LockPaths& paths) {
  Observation seen;
  auto info = stat_path(paths.lock);
  if (!info) return seen;
  seen.info = *info;
  if (info->type != FileInfo::Type::kRegular) {
    seen.kind = Observation::Kind::kMalformed;
    seen.problem = type_problem(info->type);
    return seen;
  }
  std::optional<UniqueFd> fd;
  try {
    fd = open_read_nonblocking(paths.lock);
  } catch (const IoError& e) {
    if (e.code() != ErrorCode::kMalformed) throw;
    seen.kind = Observation::Kind::kMalformed;
    seen.problem = type_problem(FileInfo::Type::kSymlink);
    return seen;
  }
  if (!fd) return seen;  // released between the stat and the open
  seen.info = stat_fd(fd->get(), paths.lock);
  if (seen.info.type != FileInfo::Type::kRegular) {  // swapped between the stat and the open
    seen.kind = Observation::Kind::kMalformed;
    seen.problem = type_problem(seen.info.type);
    return seen;
  }
  seen.fd = std::move(*fd);
  if (seen.info.size > kMaxRecordBytes) {
    seen.kind = Observation::Kind::kMalformed;
    seen.problem = "it is " + std::to_string(seen.info.size) + " bytes, far larger than a lock " +
                   "record (at most " + std::to_string(kMaxRecordBytes) + ")";
    return seen;
  }
  std::string text = read_all(seen.fd.get(), paths.lock, kMaxRecordBytes);
  try {
    LockRecord record = LockRecord::parse(text, paths.lock);
    if (record.name != paths.name) {
      seen.kind = Observation::Kind::kMalformed;
      seen.problem = "its record names lock \"" + record.name + "\", not \"" + paths.name + "\"";
      return seen;
    }
    seen.record = std::move(record);
    seen.kind = Observation::Kind::kRecord;
  } catch (const MalformedLockFileError& e) {
    seen.kind = Observation::Kind::kMalformed;
    std::string what = e.what();
    const std::string marker = " is malformed: ";
    size_t at = what.find(marker);
    seen.problem = at == std::string::npos ? what : what.substr(at + marker.size());
  }
  return seen;
}

std::string describe_holder(const LockRecord& r) {
  return "pid " + std::to_string(r.pid) + " on host " + r.hostname + " (writer " + r.writer_id +
         ", token " + std::to_string(r.token) + ", since " + format_utc(r.acquired_at) +
         ", lease until " + format_utc(r.expires_at) + ")";
}

Judgement judge(const Observation& seen, const LockOptions& options, WallClock::time_point now) {
  Judgement j;
  if (seen.kind == Observation::Kind::kAbsent) return j;
  if (seen.kind == Observation::Kind::kMalformed) {
    j.verdict = LockVerdict::kMalformed;
    j.reason = seen.problem;
    return j;
  }
  const LockRecord& r = *seen.record;
  const std::string pid = "pid " + std::to_string(r.pid);
  if (r.hostname == host_name()) {
    if (r.boot_id != boot_id()) {
      j.verdict = LockVerdict::kStaleDeadPid;
      j.reason = "the holder ran before this host last booted (boot id " + r.boot_id + ")";
      return j;
    }
    if (ofd_is_locked_by_other(seen.fd.get(), "lock file")) {
      j.verdict = LockVerdict::kHeld;
      j.holder_alive = true;
      Liveness alive = check_liveness(r.holder());
      j.reason = alive == Liveness::kAlive
                     ? pid + " is alive and holds the lock"
                     : pid + " has exited, but a process that inherited its lock (such as the " +
                           "command of `warden lock run`) still holds it";
      return j;
    }
    switch (check_liveness(r.holder())) {
      case Liveness::kPidReused:
        j.verdict = LockVerdict::kStalePidReused;
        j.reason = pid + " now belongs to another process (its start time differs from the " +
                   "holder's); the holder is gone";
        return j;
      case Liveness::kAlive:
        j.verdict = LockVerdict::kStaleDeadPid;
        j.reason = pid + " is running but no longer holds the lock (it closed the lock file)";
        return j;
      default:
        j.verdict = LockVerdict::kStaleDeadPid;
        j.reason = pid + " is not running and nothing holds the lock";
        return j;
    }
  }
  if (now > r.expires_at + options.remote_grace) {
    j.verdict = LockVerdict::kStaleExpired;
    j.reason =
        "the lease of host " + r.hostname + " expired at " + format_utc(r.expires_at) +
        " and the remote grace of " +
        seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(options.remote_grace)) +
        " has passed";
    return j;
  }
  j.verdict = LockVerdict::kRemoteUnverifiable;
  j.reason = "held from host " + r.hostname + ", whose processes cannot be checked from here; " +
             "stale after " +
             format_utc(r.expires_at +
                        std::chrono::duration_cast<WallClock::duration>(options.remote_grace));
  return j;
}

std::string force_unlock_command(const LockPaths& paths) {
  std::string dir = paths.dir;
  std::error_code ignored;
  auto absolute = std::filesystem::absolute(dir, ignored);
  if (!ignored) dir = absolute.lexically_normal().string();
  return "warden lock force-unlock --dataset " + paths.name + " --yes --lock-dir " + dir;
}

LockStatus describe(const LockPaths& paths, const Observation& seen, const LockOptions& options) {
  const auto now = WallClock::now();
  Judgement j = judge(seen, options, now);
  LockStatus status;
  status.name = paths.name;
  status.path = paths.lock;
  status.verdict = j.verdict;
  status.reason = j.reason;
  status.holder_alive = j.holder_alive;
  if (seen.record) {
    const LockRecord& r = *seen.record;
    status.record = r;
    status.age = std::chrono::duration_cast<std::chrono::milliseconds>(now - r.acquired_at);
    status.expires_in = std::chrono::duration_cast<std::chrono::milliseconds>(r.expires_at - now);
    status.max_hold_exceeded = now - r.acquired_at > options.max_hold;
  }
  if (j.verdict == LockVerdict::kFree) status.reason = "no lock file";
  if (is_stale(j.verdict)) {
    // Any acquire recovers it on its own; force-unlock does it now.
    status.resolve_command = force_unlock_command(paths);
  } else if (j.verdict == LockVerdict::kMalformed) {
    status.resolve_command = force_unlock_command(paths);
  } else if (j.verdict == LockVerdict::kRemoteUnverifiable) {
    status.resolve_command = "ssh " + seen.record->hostname + " ps -p " +
                             std::to_string(seen.record->pid) +
                             "  # if it is gone: " + force_unlock_command(paths);
  }
  return status;
}

}  // namespace lock_internal

using lock_internal::LockPaths;

LockStatus inspect_file_lock(const std::string& lock_dir, const std::string& name,
                             const LockOptions& options) {
  validate_lock_name(name);
  LockPaths paths(lock_dir, name);
  return lock_internal::describe(paths, lock_internal::observe(paths), options);
}

std::vector<LockStatus> lock_status(const std::string& lock_dir, const LockOptions& options) {
  std::vector<std::string> names;
  std::error_code error;
  std::filesystem::directory_iterator it(lock_dir, error);
  if (error) {
    if (error == std::errc::no_such_file_or_directory) return {};
    throw IoError("list " + lock_dir + ": " + error.message(), error.value());
  }
  for (const auto& entry : it) {
    std::string file = entry.path().filename().string();
    const std::string suffix = ".lock";
    if (file.size() <= suffix.size() || file[0] == '.') continue;
    if (file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    names.push_back(file.substr(0, file.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  std::vector<LockStatus> out;
  for (const auto& name : names) {
    try {
      validate_lock_name(name);
    } catch (const InvalidArgumentError&) {
      continue;  // not a name warden could have created
    }
    out.push_back(inspect_file_lock(lock_dir, name, options));
  }
  return out;
}

}  // namespace warden
