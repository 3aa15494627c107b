// Private to src/lock/: the lock directory's names, reading a lock file without trusting it,
// judging it, the fencing token, and the recovery mutex. The contract is include/warden/lock.h.
#pragma once

#include <optional>
#include <string>

#include "warden/lock.h"
#include "warden/posix.h"

namespace warden::lock_internal {

// Every name a lock uses inside its directory.
struct LockPaths {
  LockPaths(const std::string& lock_dir, const std::string& name);
  std::string dir;
  std::string name;
  std::string lock;            // <dir>/<name>.lock
  std::string token;           // <dir>/<name>.token: the last released record, or a symlink
                               // whose target is the number (recovery, force-unlock)
  std::string recovery_mutex;  // <dir>/.<name>.recovery (OFD-locked: publish gate, recoverers)
  std::string wait_queue;      // <dir>/.<name>.waiters (OFD-locked by the one waiter at the head)
  // A private name for a lock file being recovered / released: kind is "recovery", "release".
  std::string private_name(const std::string& kind) const;
};

// What is at a lock path right now, read without trusting it.
struct Observation {
  enum class Kind { kAbsent, kRecord, kMalformed };
  Kind kind = Kind::kAbsent;
  FileInfo info;  // of the inode observed (lstat for non-regular files)
  std::optional<LockRecord> record;
  std::string problem;  // why it is malformed
  UniqueFd fd;          // read-only on the observed inode (regular files only)
};
Observation observe(const LockPaths& paths);

struct Judgement {
  LockVerdict verdict = LockVerdict::kFree;
  std::string reason;
  bool holder_alive = false;
};
// Judges an observation (DESIGN.md "Stale when"). On this host the OFD lock is the truth: a
// lock whose OFD lock is held is held, even when the recorded pid is gone (a child such as
// `warden lock run`'s command inherited it); a lock whose OFD lock is free is stale.
Judgement judge(const Observation& seen, const LockOptions& options, WallClock::time_point now);

// Fills a LockStatus for an observation.
LockStatus describe(const LockPaths& paths, const Observation& seen, const LockOptions& options);

// "warden lock force-unlock --dataset NAME --yes --lock-dir DIR": the exact fix.
std::string force_unlock_command(const LockPaths& paths);

// The fencing token file's token (0 when there is none): the token of the record in it (a
// release moves its record there), or the number it holds or links to. A holder's record at
// the lock name can be higher. Throws MalformedLockFileError when it holds anything else.
uint64_t read_token(const LockPaths& paths);
// Publishes `token` as the last issued (not durable until the directory is fsynced).
void write_token(const LockPaths& paths, uint64_t token);
// Raises the token file to at least `token` (durably). Caller holds the recovery mutex.
void raise_token_to(const LockPaths& paths, uint64_t token);

// The recovery mutex: an exclusive OFD lock that serialises recoverers and force-unlock, so
// that "the file at the lock name is still the one I judged" stays true while one of them
// renames it away. Publishers take it too, as a gate: when a lock is released, the waiters
// on this host decide among themselves who publishes before anyone pays for a durable record
// (the winner of the gate finds the name free and publishes; the others find it held and go
// back to waiting), instead of all writing and fsyncing a record for one link to win. The
// gate is an optimisation only: link() still decides who holds the lock. Blocks up to
// timeout; nullopt if it could not be had in time.
std::optional<UniqueFd> take_recovery_mutex(const LockPaths& paths,
                                            std::chrono::milliseconds timeout);

// Removes what crashed lock operations left behind: temp files, release and recovery files
// of processes that no longer run. Best effort; never throws.
void sweep_leftovers(const LockPaths& paths);

// Recovers a lock judged stale (ABA-safe, see lock.h). Returns true when this call removed
// the stale record (emits lock.recovered); false when the file changed meanwhile or another
// recoverer won.
bool recover_stale(const LockPaths& paths, const Observation& seen, const Judgement& judgement,
                   std::chrono::milliseconds timeout);

// Builds the MalformedLockFileError for an observation (and emits lock.malformed).
[[noreturn]] void throw_malformed(const LockPaths& paths, const Observation& seen);

std::string describe_holder(const LockRecord& record);

}  // namespace warden::lock_internal
