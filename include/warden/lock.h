// Single-writer locks: leases with an owner (DESIGN.md "Lock file"; docs/adr/0001).
//
// A lock is a lease: it records who holds it (pid, the pid's start time, boot id, hostname,
// writer id), since when and until when, and every acquisition gets a fencing token that
// only grows. The file backend (FileLock) keeps one JSON record per lock in a directory:
//   - publish: the complete record goes to a temp file (OFD-locked first), is fsynced and
//     link()ed onto "<name>.lock", so the lock name never exists empty or half-written and
//     exactly one creator wins;
//   - hold: the holder keeps an OFD lock on the file, so the kernel says at once whether a
//     holder on this host is alive;
//   - refresh: a new record is published over the old one every refresh_interval;
//   - stale: same host and the OFD lock is free (or the pid is gone or reused), or, from any
//     host, expires_at + remote_grace has passed;
//   - recover: rename to a private name, check it is the record judged stale, remove it.
// Other backends (a lease table in SQLite or PostgreSQL) implement the same Lock interface.
//
// Thread-safety: a Lock object is used by one thread at a time, except that a LockGuard's
// background refresher calls refresh() under the guard's own mutex. Different Lock objects
// (in one process or many) on the same name exclude each other.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "warden/error.h"
#include "warden/posix.h"

namespace warden {

using WallClock = std::chrono::system_clock;

struct LockOptions {
  std::chrono::milliseconds lease{std::chrono::minutes(5)};
  std::chrono::milliseconds refresh_interval{std::chrono::seconds(60)};
  // A lock from another host is only judged by expiry; it must also be this far past it.
  std::chrono::milliseconds remote_grace{std::chrono::minutes(30)};
  // A hold longer than this raises sync.lock.stale even while refreshed (seed 000: 4 hours).
  std::chrono::milliseconds max_hold{std::chrono::hours(4)};
  // Identifies the writer in the record; empty means a random UUID per acquisition.
  std::string writer_id;
};

// The lock file's record, version 1. Strict: unknown or missing fields, or wrong types, make
// it malformed.
struct LockRecord {
  int version = 1;
  std::string name;
  pid_t pid = 0;
  uint64_t pid_start = 0;
  std::string boot_id;
  std::string hostname;
  std::string writer_id;
  uint64_t token = 0;
  WallClock::time_point acquired_at;
  WallClock::time_point refreshed_at;
  WallClock::time_point expires_at;

  // Parses a record. Throws MalformedLockFileError naming `path` and what is wrong.
  static LockRecord parse(std::string_view text, const std::string& path);
  std::string to_json() const;
  ProcessIdentity holder() const { return {pid, pid_start, boot_id, hostname}; }
};

// Proof of holding a lock: returned by acquire, required by release and refresh.
struct LockToken {
  std::string name;
  std::string writer_id;
  uint64_t token = 0;  // the fencing token
  WallClock::time_point acquired_at;
  WallClock::time_point expires_at;
};

// What lock_status() concludes about one lock.
enum class LockVerdict {
  kFree,                // no lock
  kHeld,                // a live holder
  kStaleDeadPid,        // same host; the holder is gone (OFD lock free, pid dead)
  kStalePidReused,      // same host; the pid now belongs to another process
  kStaleExpired,        // lease (plus remote grace) passed
  kRemoteUnverifiable,  // another host's holder within its lease: cannot check, not stale
  kMalformed,           // the file does not parse
};
// "held", "stale_dead_pid", ... as in `warden lock status --json`.
const char* lock_verdict_name(LockVerdict verdict);
inline bool is_stale(LockVerdict v) {
  return v == LockVerdict::kStaleDeadPid || v == LockVerdict::kStalePidReused ||
         v == LockVerdict::kStaleExpired;
}

struct LockStatus {
  std::string backend = "file";  // "file", "sqlite", "postgresql"
  std::string name;
  std::string path;  // file path, or the table's location
  LockVerdict verdict = LockVerdict::kFree;
  std::string reason;                       // one sentence: why this verdict
  std::optional<LockRecord> record;         // absent when free or malformed
  bool holder_alive = false;                // only meaningful on this host
  std::chrono::milliseconds age{0};         // since acquired_at
  std::chrono::milliseconds expires_in{0};  // negative once expired
  bool max_hold_exceeded = false;
  std::string resolve_command;  // the exact command that resolves it, "" if none needed
};

// The interface every lock backend implements.
class Lock {
 public:
  virtual ~Lock() = default;
  virtual const std::string& name() const = 0;
  virtual const LockOptions& options() const = 0;

  // Takes the lock, waiting up to `timeout` for a live holder and recovering stale locks on
  // the way. Blocks: on a holder on this host it sleeps in the kernel (woken within about a
  // millisecond of the release or the holder's death); on another host's holder it retries
  // with jittered backoff. (FileLock: while it sleeps on a holder on this host it writes the
  // record it will publish, so the handoff costs one directory fsync; that record's
  // acquired_at, and its lease, then start when it was written, at most min(lease / 10,
  // (lease - refresh_interval) / 4) before the lock was taken.) On success the caller holds the
  // lock and a fencing token above every token issued before for this name. Throws
  // LockAcquisitionError (kLockHeld) naming the holder when the wait runs out;
  // MalformedLockFileError when the lock file (or the fencing-token file) does not parse: it is
  // never removed silently, the message names the command that resolves it; IoError when the
  // directory cannot be written.
  virtual LockToken acquire(std::chrono::milliseconds timeout) = 0;
  // One attempt (stale recovery included); nullopt when someone else holds it. Throws as
  // acquire() does, except that a held lock is the nullopt outcome, not an error.
  virtual std::optional<LockToken> try_acquire() = 0;
  // Releases the lock. Throws LockRecoveryError if `token` is not the one this object holds
  // (the lock is left untouched), and LockRecoveryError (kLockLost) if the lock was taken
  // away meanwhile (force-unlocked or recovered: the file at the name is not ours; it is left
  // to its new holder). Idempotent for a token already released by this object. Does not
  // fsync the directory: a release undone by a power cut leaves a record of an earlier boot,
  // which is stale at once.
  virtual void release(const LockToken& token) = 0;
  // Extends the lease to now + lease. Returns the updated token. Throws LockRecoveryError
  // (kLockLost) if the lock is no longer ours: the caller must stop writing.
  virtual LockToken refresh(const LockToken& token) = 0;
};

// The file backend. lock_dir is created if missing. The name must be a plain name
// ([A-Za-z0-9._-], not starting with '.'); InvalidArgumentError otherwise, and also when
// refresh_interval is not shorter than the lease. Besides "<name>.lock" it uses, in the same
// directory, "<name>.token" (the fencing token file: the record of the last holder that
// released, which a release renames there, or a symlink to the number after a recovery or
// force-unlock) and
// ".<name>.recovery" (the mutex of recoverers, and the gate publishers pass so that only
// one waiter writes and fsyncs a record at a time) and ".<name>.waiters" (the wait queue:
// waiters on this host hold its OFD lock one at a time, and only the one holding it sleeps
// on the holder, so a release wakes one process, not every waiter). The first acquisition
// through a FileLock removes what crashed operations of dead processes left (temp, release
// and recovery files older than a minute). The destructor releases a lock still held (errors
// become events).
class FileLock : public Lock {
 public:
  FileLock(std::string lock_dir, std::string name, LockOptions options = {});
  ~FileLock() override;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  const std::string& name() const override;
  const LockOptions& options() const override;
  LockToken acquire(std::chrono::milliseconds timeout) override;
  std::optional<LockToken> try_acquire() override;
  void release(const LockToken& token) override;
  LockToken refresh(const LockToken& token) override;

  // The fd that carries the OFD lock while held (-1 otherwise). A child that inherits it
  // (after clearing FD_CLOEXEC) keeps the lock alive on this host for as long as it lives.
  int held_fd() const;
  const std::string& path() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Holds a lock for a scope and refreshes it in a background thread every refresh_interval.
// If a refresh fails (the lock was recovered or force-unlocked by someone else, the disk
// failed), on_lost is called once from the refresher thread with the reason, before the
// lease runs out, and lost() becomes true: a refresh refused because the lock is no longer
// ours is reported at once; other refresh failures are retried until the lease is within a
// fifth of its length (at most 30 s) of its end, then reported. The callback must not
// destroy the guard. The destructor stops the refresher (once it returns, no refresh and no
// on_lost runs any more; the thread itself ends on its own) and releases the lock unless it
// was lost (errors are reported as events, never thrown).
class LockGuard {
 public:
  using LostCallback = std::function<void(const LockToken&, const std::string& reason)>;
  // Acquires (see Lock::acquire; throws as it does). `lock` must outlive the guard.
  LockGuard(Lock& lock, std::chrono::milliseconds timeout, LostCallback on_lost = {});
  ~LockGuard();
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

  const LockToken& token() const;
  bool lost() const;
  // Releases now (idempotent). Throws LockRecoveryError if the lock is no longer ours.
  void release();

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the refresher thread
};

// The seed's atomic_lock(): a FileLock and its guard in one object.
class AtomicLock {
 public:
  AtomicLock(const std::string& lock_dir, const std::string& name,
             std::chrono::milliseconds timeout, LockOptions options = {},
             LockGuard::LostCallback on_lost = {});
  const LockToken& token() const { return guard_.token(); }
  bool lost() const { return guard_.lost(); }

 private:
  FileLock lock_;
  LockGuard guard_;
};

// Validates a lock or dataset name (see FileLock). Throws InvalidArgumentError.
// A duration as status lines show it: "850ms", "12.5s", "3m12s", "1h02m" (the sign is
// dropped; callers say "ago" or "left"). Never throws.
std::string format_duration(std::chrono::milliseconds duration);

void validate_lock_name(const std::string& name);

// Inspects one file lock without changing it.
LockStatus inspect_file_lock(const std::string& lock_dir, const std::string& name,
                             const LockOptions& options = {});
// Every "<name>.lock" in lock_dir with a valid lock name, sorted by name (private files of
// lock operations are not listed). A missing directory gives an empty list. Never blocks on
// a holder and never changes anything.
std::vector<LockStatus> lock_status(const std::string& lock_dir, const LockOptions& options = {});

// The last fencing token issued for `name` (0 if none): the current holder's, else the one
// the token file keeps. Throws MalformedLockFileError when the token file is malformed.
uint64_t last_fencing_token(const std::string& lock_dir, const std::string& name);

struct ForceUnlockResult {
  bool removed = false;
  LockStatus before;  // what was there
  std::string message;
};
// Removes a lock regardless of its lease. Refuses (removed=false, message says why) when
// the holder is alive on this host unless allow_live_holder. The fencing token keeps
// growing: the next acquisition gets a token above the removed holder's.
ForceUnlockResult force_unlock(const std::string& lock_dir, const std::string& name,
                               bool allow_live_holder, const LockOptions& options = {});

}  // namespace warden
