// FileLock: publish, wait, release and refresh of one lock file (DESIGN.md "Lock file").
#include <algorithm>
#include <cstdio>
#include <exception>
#include <thread>
#include <variant>

#include "lock_internal.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/posix_names.h"

namespace warden {

using lock_internal::Judgement;
using lock_internal::LockPaths;
using lock_internal::Observation;

namespace {

// How long a recoverer or publisher waits for the recovery mutex (held by another recoverer
// for a few renames, or by a publisher for one durable record): then a recoverer looks
// again, a publisher publishes without it.
constexpr std::chrono::milliseconds kRecoveryMutexWait{5000};
// Rounds of publish / look / recover in one attempt before reporting the lock as busy: the
// name can change under us (released, recovered, republished) but not forever.
constexpr int kMaxRounds = 64;

bool same_inode(const FileInfo& a, const FileInfo& b) {
  return a.device == b.device && a.inode == b.inode;
}

std::string seconds_text(std::chrono::milliseconds d) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1fs", static_cast<double>(d.count()) / 1000.0);
  return buffer;
}

LockToken token_of(const LockRecord& r) {
  return LockToken{r.name, r.writer_id, r.token, r.acquired_at, r.expires_at};
}

nlohmann::json fields_of(const LockPaths& paths, const LockRecord& r) {
  return {{"lock", paths.name},
          {"path", paths.lock},
          {"token", r.token},
          {"pid", r.pid},
          {"writer_id", r.writer_id},
          {"hostname", r.hostname},
          {"acquired_at", format_utc(r.acquired_at)},
          {"expires_at", format_utc(r.expires_at)}};
}

// An exclusive OFD lock for a scope (the publish gate, the wait queue), if it could be had
// within `wait`.
struct GateHold {
  GateHold(int gate_fd, const std::string& gate_path, std::chrono::milliseconds wait)
      : fd(gate_fd), path(gate_path), held(ofd_lock_wait(fd, true, wait, path)) {}
  ~GateHold() {
    if (!held) return;
    try {
      ofd_unlock(fd, path);
    } catch (const std::exception&) {
      // fcntl(F_UNLCK) on an fd we hold open does not fail in practice; if it did, the gate
      // would stay shut and the others would publish without it after their wait.
    }
  }
  GateHold(const GateHold&) = delete;
  GateHold& operator=(const GateHold&) = delete;
  int fd;
  const std::string& path;
  bool held;
};

}  // namespace

struct FileLock::State {
  State(std::string dir, std::string name, LockOptions opts)
      : paths(dir, name), options(std::move(opts)) {}
  ~State() { drop_prepared(); }

  LockPaths paths;
  LockOptions options;
  UniqueFd dir_fd;  // kept open: one directory fsync per acquisition, no reopen
  UniqueFd gate;    // the publish gate (the recovery mutex's file), opened at the first publish
  UniqueFd queue;   // the wait queue's file, opened at the first wait on a local holder
  UniqueFd held;    // carries the OFD lock while held
  FileInfo held_info;
  std::optional<LockRecord> record;  // ours, while held
  uint64_t last_released_token = 0;
  std::string last_released_writer;
  bool stale_event_sent = false;
  bool swept = false;

  // A record written and fsynced while waiting (prepare()), published by the next
  // try_publish() if it carries the token that publish would issue.
  struct Prepared {
    std::string temp;  // empty for an unnamed file (write_locked_temp)
    UniqueFd fd;       // OFD-locked, as write_locked_temp leaves it
    FileInfo info;
    LockRecord record;
    SteadyClock::time_point made;
  };
  std::optional<Prepared> prepared;

  // Why the last attempt could not take the lock (for the wait and the error message).
  struct Busy {
    Observation seen;
    Judgement judgement;
  };

  LockRecord new_record(uint64_t token) const {
    const ProcessIdentity& me = self_identity();
    LockRecord r;
    r.name = paths.name;
    r.pid = me.pid;
    r.pid_start = me.start_time;
    r.boot_id = me.boot_id;
    r.hostname = me.hostname;
    r.writer_id = options.writer_id.empty() ? random_uuid() : options.writer_id;
    r.token = token;
    r.acquired_at = WallClock::now();
    r.refreshed_at = r.acquired_at;
    r.expires_at = r.acquired_at + options.lease;
    return r;
  }

  // A complete record in a fresh temp file, OFD-locked before anyone can see it, fsynced.
  // With `unnamed`, the file has no name at all until link_unnamed() gives it the lock name
  // (*temp is left empty), where the file system allows it: a temp name would cost the
  // directory a second write per acquisition (the record's fsync writes the directory entry
  // of a new name, then link and unlink dirty it again), and a crash leaves nothing behind.
  UniqueFd write_locked_temp(const LockRecord& r, std::string* temp, FileInfo* info, bool unnamed) {
    temp->clear();
    std::optional<UniqueFd> fd;
    if (unnamed) fd = create_unnamed(paths.dir);
    if (!fd) {
      *temp = temp_name_beside(paths.lock);
      fd = create_exclusive(*temp, 0644);
      if (!fd) throw IoError("create " + *temp + ": exists already", EEXIST);
    }
    const std::string& where = temp->empty() ? paths.dir : *temp;
    try {
      if (!ofd_try_lock(fd->get(), true, where)) {
        throw Error(ErrorCode::kInternal, "lock " + where + ": a brand-new file was locked");
      }
      write_all(fd->get(), r.to_json(), where);
      fsync_fd(fd->get(), where);
      *info = stat_fd(fd->get(), where);
    } catch (...) {
      remove_temp(*temp);
      throw;
    }
    return std::move(*fd);
  }

  // Removes a named temp file (an unnamed one goes with its last fd).
  static void remove_temp(const std::string& temp) {
    if (!temp.empty()) ::warden::remove_file(temp);
  }

  // Gives a record from write_locked_temp the lock name; false if the name is taken.
  bool link_record(int fd, const std::string& temp) {
    if (temp.empty()) return link_unnamed(fd, paths.lock);
    bool won = false;
    try {
      won = link_noreplace(temp, paths.lock);
    } catch (...) {
      remove_temp(temp);
      throw;
    }
    remove_temp(temp);
    return won;
  }

  [[noreturn]] void lose(const std::string& operation, const std::string& why) {
    LockRecord r = *record;
    held.reset();
    record.reset();
    std::string message = operation + " lock " + paths.name + " (" + paths.lock +
                          "): no longer held: " + why + ". Stop writing: another writer may " +
                          "hold it now (token " + std::to_string(r.token) + " is fenced off)";
    emit_event(EventLevel::kError, "lock.lost", message, fields_of(paths, r));
    throw LockRecoveryError(message, ErrorCode::kLockLost);
  }

  // Replaces the published record with `r` atomically (refresh, or a token correction):
  // exchange a new locked temp with the lock name, check that what we displaced is our own
  // record, and undo the exchange if it was not.
  void republish(const LockRecord& r, const std::string& operation) {
    // Look before the exchange: a holder that was force-unlocked must not even briefly
    // displace its successor's record (the exchange below is undone if the name changes
    // hands in between, but a look first keeps that window to microseconds).
    auto current = stat_path(paths.lock);
    if (!current)
      lose(operation, "its file " + paths.lock + " is gone (force-unlocked or recovered)");
    if (!same_inode(*current, held_info))
      lose(operation, "its file was replaced by another holder's");
    std::string temp;
    FileInfo info;
    // Named: the exchange below needs a name to swap with the lock name.
    UniqueFd fd = write_locked_temp(r, &temp, &info, false);
    try {
      WARDEN_FAILPOINT("lock.refresh.after_temp_write");
    } catch (...) {
      ::warden::remove_file(temp);
      throw;
    }
    if (!rename_exchange(temp, paths.lock)) {
      ::warden::remove_file(temp);
      lose(operation, "its file " + paths.lock + " is gone (force-unlocked or recovered)");
    }
    auto displaced = stat_path(temp);
    if (!displaced || !same_inode(*displaced, held_info)) {
      rename_exchange(temp, paths.lock);  // give the name back to whoever holds it now
      ::warden::remove_file(temp);
      lose(operation, "its file was replaced by another holder's");
    }
    WARDEN_FAILPOINT("lock.refresh.after_exchange");
    fsync_fd(dir_fd.get(), paths.dir);
    ::warden::remove_file(temp);  // our previous record
    held = std::move(fd);
    held_info = info;
    record = r;
  }

  // Release moved a successor's record onto the token name (we were force-unlocked and the
  // name changed hands between the look and the rename): its record goes back to the lock
  // name, and a symlink to its token takes the token file's place. Meanwhile the token file
  // is missing, but nobody issues a token then: the successor holds the name.
  void give_back_successors_record() noexcept {
    auto report = [&](const std::string& why) {
      emit_event(EventLevel::kCritical, "lock.release.conflict",
                 "release of lock " + paths.name + " moved another holder's record to " +
                     paths.token + " and could not put it back: " + why,
                 {{"lock", paths.name}, {"moved_to", paths.token}});
    };
    try {
      const uint64_t successors = lock_internal::read_token(paths);
      if (!rename_noreplace(paths.token, paths.lock)) return report("a new holder took the name");
      lock_internal::write_token(paths, successors);
      fsync_fd(dir_fd.get(), paths.dir);
    } catch (const std::exception& e) {
      report(e.what());
    }
  }

  // While a holder on this host keeps the lock, a waiter writes and fsyncs now the record it
  // would publish next (token next_token), so that after the release only link() and one
  // directory fsync stand between its wake-up and holding the lock, instead of a record
  // fsync as well. The record's lease runs from when it was written, so one older than a
  // tenth of the lease is rewritten rather than published. Best effort: a failure here only
  // means the publish writes its record itself, and reports what is wrong then.
  void prepare(uint64_t next_token) noexcept {
    if (prepared && prepared->record.token == next_token && fresh(*prepared)) return;
    drop_prepared();
    try {
      Prepared p;
      p.record = new_record(next_token);
      p.fd = write_locked_temp(p.record, &p.temp, &p.info, true);
      p.made = SteadyClock::now();
      prepared = std::move(p);
    } catch (const std::exception&) {
      prepared.reset();
    }
  }

  // Young enough to publish: its lease is cut short by its age, which must stay well inside
  // what the holder's refresh leaves (a remote host judges it by expires_at).
  bool fresh(const Prepared& p) const {
    return SteadyClock::now() - p.made <=
           std::min(options.lease / 10, (options.lease - options.refresh_interval) / 4);
  }

  void drop_prepared() noexcept {
    if (!prepared) return;
    try {
      remove_temp(prepared->temp);
    } catch (...) {
      // A temp file of a live pid is never swept; of a dead one, it is (sweep_leftovers).
    }
    prepared.reset();
  }

  // The record to publish with token `token`: the prepared one if it fits, else a new one
  // (written, OFD-locked and fsynced).
  UniqueFd record_to_publish(uint64_t token, LockRecord* r, std::string* temp, FileInfo* info) {
    if (prepared && prepared->record.token == token && fresh(*prepared)) {
      *r = prepared->record;
      *temp = std::move(prepared->temp);
      *info = prepared->info;
      UniqueFd fd = std::move(prepared->fd);
      prepared.reset();
      return fd;
    }
    drop_prepared();
    *r = new_record(token);
    return write_locked_temp(*r, temp, info, true);
  }

  // One publish: the lock is ours iff link() wins the name. Only a process that finds the
  // name free under the publish gate pays for a durable record: when a holder releases, its
  // waiters on this host wake together, and without the gate each of them would write and
  // fsync a record of its own for one link() to win (the losers' fsyncs queue on the disk
  // ahead of the winner's). A name that is taken costs a stat.
  std::optional<LockToken> try_publish(std::chrono::milliseconds gate_wait) {
    if (stat_path(paths.lock)) return std::nullopt;
    // A gate holder that hangs (stopped, or on a stalled disk) delays the others by at most
    // gate_wait; then they publish without the gate, and link() still decides.
    if (!gate) gate = open_read_write(paths.recovery_mutex, 0644);
    GateHold hold(gate.get(), paths.recovery_mutex, gate_wait);
    if (hold.held && stat_path(paths.lock)) return std::nullopt;  // the previous holder won
    // Read under the gate: recoverers and force-unlock raise the token under it too.
    const uint64_t issued = lock_internal::read_token(paths);
    LockRecord r;
    std::string temp;  // empty for an unnamed file (write_locked_temp)
    FileInfo info;
    UniqueFd fd = record_to_publish(issued + 1, &r, &temp, &info);
    try {
      WARDEN_FAILPOINT("lock.acquire.after_temp_write");
    } catch (...) {
      remove_temp(temp);
      throw;
    }
    if (!link_record(fd.get(), temp)) return std::nullopt;
    WARDEN_FAILPOINT("lock.acquire.after_link");
    held = std::move(fd);
    held_info = info;
    record = r;
    try {
      // The token was read before we held the lock; another holder may have issued it since.
      // Now that we hold the lock nobody else can issue one, so re-read and correct.
      const uint64_t now_issued = lock_internal::read_token(paths);
      if (now_issued >= r.token) {
        r.token = now_issued + 1;
        republish(r, "acquire");
      }
      // The token needs no write of its own: the record carries it, and whatever removes
      // the record (release, recovery, force-unlock) leaves it in the token file.
      fsync_fd(dir_fd.get(), paths.dir);
    } catch (...) {
      abandon();
      throw;
    }
    WARDEN_FAILPOINT("lock.acquire.after_dir_fsync");
    stale_event_sent = false;
    // Checked first so that an uncontended acquire with no event sink builds no JSON.
    if (event_wanted(EventLevel::kInfo)) {
      emit_event(EventLevel::kInfo, "lock.acquired",
                 "acquired lock " + paths.name + " (token " + std::to_string(r.token) + ")",
                 fields_of(paths, r));
    }
    return token_of(r);
  }

  // Drops a half-made acquisition: our file goes (if it is still ours), the OFD lock with it.
  void abandon() noexcept {
    try {
      auto now = stat_path(paths.lock);
      if (now && same_inode(*now, held_info)) ::warden::remove_file(paths.lock);
    } catch (...) {
    }
    held.reset();
    record.reset();
  }

  void note_long_hold(const LockRecord& r) {
    if (stale_event_sent || WallClock::now() - r.acquired_at <= options.max_hold) return;
    stale_event_sent = true;
    emit_event(
        EventLevel::kWarning, "sync.lock.stale",
        "lock " + paths.name + " has been held for longer than " +
            seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(options.max_hold)) +
            " by " + lock_internal::describe_holder(r) +
            ": check that the job is really still working",
        fields_of(paths, r));
  }

  // Publish, or look at what is there: recover it if stale, report it if held.
  // gate_wait: how long to wait for the publish gate (see try_publish).
  std::variant<LockToken, Busy> attempt(std::chrono::milliseconds gate_wait) {
    if (record) {
      throw InvalidArgumentError("acquire lock " + paths.name +
                                 ": this FileLock already holds it (release it first)");
    }
    if (!swept) {
      // Once per FileLock: what crashed operations left (temp, release, recovery files).
      swept = true;
      lock_internal::sweep_leftovers(paths);
    }
    Busy busy;
    for (int round = 0; round < kMaxRounds; ++round) {
      if (auto token = try_publish(gate_wait)) return *token;
      Observation seen = lock_internal::observe(paths);
      if (seen.kind == Observation::Kind::kAbsent) continue;
      if (seen.kind == Observation::Kind::kMalformed) lock_internal::throw_malformed(paths, seen);
      Judgement j = lock_internal::judge(seen, options, WallClock::now());
      if (j.verdict == LockVerdict::kHeld || j.verdict == LockVerdict::kRemoteUnverifiable) {
        note_long_hold(*seen.record);
        return Busy{std::move(seen), std::move(j)};
      }
      lock_internal::recover_stale(paths, seen, j, kRecoveryMutexWait);
      busy = Busy{std::move(seen), std::move(j)};
    }
    return busy;
  }

  [[noreturn]] void give_up(const Busy& busy, std::chrono::milliseconds waited) {
    std::string holder = busy.seen.record ? lock_internal::describe_holder(*busy.seen.record)
                                          : std::string("an unknown holder");
    throw LockAcquisitionError(
        "acquire lock " + paths.name + " (" + paths.lock + "): held by " + holder + " — " +
        busy.judgement.reason + "; gave up after waiting " + seconds_text(waited) +
        ". Wait for it to finish (see `warden lock status`); if that holder is hung, stop it " +
        "and its lock is recovered automatically");
  }
};

FileLock::FileLock(std::string lock_dir, std::string name, LockOptions options) {
  validate_lock_name(name);
  if (options.lease.count() <= 0 || options.refresh_interval.count() <= 0 ||
      options.refresh_interval >= options.lease) {
    throw InvalidArgumentError("lock " + name + ": refresh_interval must be positive and " +
                               "shorter than the lease");
  }
  make_directories(lock_dir);
  state_ = std::make_unique<State>(std::move(lock_dir), std::move(name), std::move(options));
  state_->dir_fd = open_directory(state_->paths.dir);
}

FileLock::~FileLock() {
  if (state_ && state_->record) {
    try {
      release(token_of(*state_->record));
    } catch (const std::exception& e) {
      emit_event(EventLevel::kError, "lock.release_failed",
                 std::string("release on destruction failed: ") + e.what(),
                 {{"lock", state_->paths.name}});
    }
  }
}

const std::string& FileLock::name() const { return state_->paths.name; }
const LockOptions& FileLock::options() const { return state_->options; }
const std::string& FileLock::path() const { return state_->paths.lock; }
int FileLock::held_fd() const { return state_->record ? state_->held.get() : -1; }

std::optional<LockToken> FileLock::try_acquire() {
  auto result = state_->attempt(kRecoveryMutexWait);
  if (auto* token = std::get_if<LockToken>(&result)) return *token;
  return std::nullopt;
}

LockToken FileLock::acquire(std::chrono::milliseconds timeout) {
  // A wait that ends in an exception leaves no prepared record behind (see State::prepare).
  struct DropPreparedOnThrow {
    State& state;
    int exceptions = std::uncaught_exceptions();
    ~DropPreparedOnThrow() {
      if (std::uncaught_exceptions() > exceptions) state.drop_prepared();
    }
  } drop_on_throw{*state_};
  const auto start = SteadyClock::now();
  const auto deadline = start + timeout;
  // Held from becoming the head of the wait queue until acquire returns or throws; its
  // release wakes the next waiter, which then sleeps on the new holder.
  std::optional<GateHold> queue_head;
  std::chrono::milliseconds backoff{5};
  bool announced = false;
  for (;;) {
    const auto gate_wait = std::clamp(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()),
        std::chrono::milliseconds(0), kRecoveryMutexWait);
    auto result = state_->attempt(gate_wait);
    if (auto* token = std::get_if<LockToken>(&result)) return *token;
    auto& busy = std::get<State::Busy>(result);
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      state_->give_up(
          busy, std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start));
    }
    if (!announced && busy.seen.record) {
      announced = true;
      emit_event(EventLevel::kDebug, "lock.waiting",
                 "waiting for lock " + name() + ": " + busy.judgement.reason,
                 fields_of(state_->paths, *busy.seen.record));
    }
    if (busy.judgement.verdict == LockVerdict::kHeld && busy.seen.fd) {
      // Same host. Only the head of the wait queue sleeps on the holder: the others sleep on
      // the queue's exclusive OFD lock, which the kernel grants one at a time, so a release
      // wakes one process, not every waiter (eight woken waiters on two cores delayed the
      // one that won by about a millisecond). A waiter that just became the head looks again
      // before it sleeps: the lock may have changed hands while it queued.
      if (!queue_head) {
        if (!state_->queue) {
          state_->queue = open_read_write(state_->paths.wait_queue, 0644);
        }
        queue_head.emplace(state_->queue.get(), state_->paths.wait_queue, left);
        if (!queue_head->held) queue_head.reset();
        continue;
      }
      // Sleep in the kernel until the holder's OFD lock goes (release, refresh or death),
      // then look again. A shared lock is enough to wait with and never blocks the holder;
      // it is dropped at once.
      state_->prepare(busy.seen.record->token + 1);
      if (ofd_lock_wait(busy.seen.fd.get(), false, left, state_->paths.lock)) {
        ofd_unlock(busy.seen.fd.get(), state_->paths.lock);
      }
      continue;
    }
    // Another host: nothing to block on. Jittered exponential backoff, so waiters on many
    // hosts do not retry in step.
    auto jittered = std::chrono::milliseconds(
        backoff.count() / 2 + static_cast<int64_t>(random_u64() % (backoff.count() + 1)));
    std::this_thread::sleep_for(std::min(jittered, left));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

void FileLock::release(const LockToken& token) {
  State& s = *state_;
  if (!s.record) {
    if (token.token == s.last_released_token && token.writer_id == s.last_released_writer) {
      return;  // released already
    }
    throw LockRecoveryError("release lock " + s.paths.name + ": token " +
                            std::to_string(token.token) + " (writer " + token.writer_id +
                            ") is not held through this FileLock; the lock was left untouched");
  }
  if (token.token != s.record->token || token.writer_id != s.record->writer_id) {
    throw LockRecoveryError("release lock " + s.paths.name + ": token " +
                            std::to_string(token.token) + " (writer " + token.writer_id +
                            ") is not the current holder's (token " +
                            std::to_string(s.record->token) + ", writer " + s.record->writer_id +
                            "); the lock was left untouched");
  }
  // One rename frees the lock name and keeps our record as the token file: its token is now
  // the last issued, so the next holder's will be above it, with no token write of its own.
  // Rename first and check it was ours after: between a check and the rename the name could
  // change hands. Look first too, so a holder that was force-unlocked never moves its
  // successor's file (that would free the name for a moment; it is undone below anyway).
  auto current = stat_path(s.paths.lock);
  if (!current) {
    s.lose("release", "its file " + s.paths.lock + " is gone (force-unlocked or recovered)");
  }
  if (!same_inode(*current, s.held_info)) {
    s.lose("release", "its file was replaced by another holder's");
  }
  WARDEN_FAILPOINT("lock.release.before_rename");
  if (!try_rename(s.paths.lock, s.paths.token)) {
    s.lose("release", "its file " + s.paths.lock + " is gone (force-unlocked or recovered)");
  }
  auto info = stat_path(s.paths.token);
  if (!info || !same_inode(*info, s.held_info)) {
    s.give_back_successors_record();
    s.lose("release", "its file was replaced by another holder's");
  }
  WARDEN_FAILPOINT("lock.release.after_rename");
  // No directory fsync: if a crash undoes the rename, the record comes back from an earlier
  // boot and is judged stale at once (and its recovery raises the token to it).
  LockRecord r = *s.record;
  s.held.reset();  // drops the OFD lock: a waiter blocked on it wakes now
  s.record.reset();
  s.last_released_token = r.token;
  s.last_released_writer = r.writer_id;
  WARDEN_FAILPOINT("lock.release.after_unlock");
  if (event_wanted(EventLevel::kInfo)) {
    emit_event(EventLevel::kInfo, "lock.released",
               "released lock " + s.paths.name + " (token " + std::to_string(r.token) + ")",
               fields_of(s.paths, r));
  }
}

LockToken FileLock::refresh(const LockToken& token) {
  State& s = *state_;
  if (!s.record || token.token != s.record->token || token.writer_id != s.record->writer_id) {
    throw LockRecoveryError("refresh lock " + s.paths.name + ": token " +
                            std::to_string(token.token) + " (writer " + token.writer_id +
                            ") is not held through this FileLock; stop writing");
  }
  LockRecord r = *s.record;
  r.refreshed_at = WallClock::now();
  r.expires_at = r.refreshed_at + s.options.lease;
  s.republish(r, "refresh");
  s.note_long_hold(r);
  if (event_wanted(EventLevel::kDebug)) {
    emit_event(EventLevel::kDebug, "lock.refreshed",
               "refreshed lock " + s.paths.name + " until " + format_utc(r.expires_at),
               fields_of(s.paths, r));
  }
  return token_of(r);
}

}  // namespace warden
