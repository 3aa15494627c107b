// The shared-memory DataBlock (seed 003): a named POSIX shared-memory segment holding a ring
// of fixed-size slots that producer processes write and consumer processes read, and the
// recovery tools for when a process dies inside it.
//
// Layout (version 1): a header (magic, layout version, slot count, slot size, creation time,
// header checksum), one control record per slot, a table of 64 participants (producers and
// consumers, each with a heartbeat), then the payloads. Every shared field is a lock-free
// atomic; there is no mutex a dead process could leave locked. Per slot:
//   - a write lock that names its owner (pid + process start time, so a reused pid is not
//     the owner) and when it was taken;
//   - a reader mask: bit i is a read hold of participant i, so a dead reader's hold is
//     found and freed exactly, without --force;
//   - writer_waiting, sequence, payload length, XXH3-64 payload checksum, last-change time.
// Waiting (a writer for readers to leave, a reader for a new commit) sleeps on futexes.
//
// The block's shared-memory object is "/warden-block.NAME" (/dev/shm/warden-block.NAME).
// Thread safety: Producer, Consumer, WriteSlot and ReadSlot objects are not thread-safe;
// use one per thread. Any number of processes may use one block at once. A Producer or
// Consumer belongs to the process that opened it (it records that process as the owner of
// its locks and holds): a forked child opens its own.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "warden/error.h"

namespace warden::block {

inline constexpr uint32_t kMaxParticipants = 64;
inline constexpr uint32_t kMaxSlots = 65535;

struct BlockOptions {
  uint32_t slot_count = 8;
  uint64_t slot_size = 4096;  // payload bytes per slot
  // A participant whose heartbeat is older than this is reported as unresponsive.
  std::chrono::milliseconds heartbeat_timeout{5000};
};

// The name of the shared-memory object behind block `name` ("/warden-block.NAME").
std::string segment_name(const std::string& name);

// Creates block `name` (mode 0600). Throws InvalidArgumentError for a bad name or geometry
// (name: letters, digits, '.', '_', '-'; 1 <= slot_count <= kMaxSlots; slot_size >= 1),
// Error kLockHeld ("exists") when the block exists already, IoError otherwise.
void create_block(const std::string& name, const BlockOptions& options);
// Removes the block's name; processes that have it mapped keep using their mapping. Returns
// false when no such block exists.
bool remove_block(const std::string& name);

class Segment;  // a mapped, validated block (src/block/)

// ---- Producer -------------------------------------------------------------------------

// A slot held for writing. Move-only. Destroying it without commit() aborts the write: the
// slot becomes FREE (its old payload may already be overwritten) and its lock is released.
class WriteSlot {
 public:
  WriteSlot(WriteSlot&& other) noexcept;
  WriteSlot& operator=(WriteSlot&& other) noexcept;
  WriteSlot(const WriteSlot&) = delete;
  WriteSlot& operator=(const WriteSlot&) = delete;
  ~WriteSlot();

  uint32_t index() const { return index_; }
  // The slot's payload memory (slot_size bytes) to write into directly.
  std::span<std::byte> buffer() const { return buffer_; }
  // Publishes the first `length` bytes: computes the checksum, assigns the next sequence
  // number, marks the slot COMMITTED, releases the lock and wakes waiting readers. Returns
  // the sequence. Throws InvalidArgumentError when length > slot size. Never blocks.
  uint64_t commit(size_t length);
  // Gives the slot up without publishing (it becomes FREE).
  void abort();

 private:
  friend class Producer;
  // commit() with the payload's checksum already computed (Producer::write hashes while it
  // copies, so the payload is read from memory once, not twice).
  uint64_t commit_with_checksum(size_t length, uint64_t checksum);
  WriteSlot(std::shared_ptr<Segment> segment, uint32_t index, std::span<std::byte> buffer)
      : segment_(std::move(segment)), index_(index), buffer_(buffer) {}
  std::shared_ptr<Segment> segment_;
  uint32_t index_ = 0;
  std::span<std::byte> buffer_;
};

// A process that writes slots. Registers itself in the participant table (so `block list`
// and `diagnose` see it) and unregisters on destruction.
class Producer {
 public:
  // Opens an existing block. Throws IoError kNotFound when it does not exist,
  // VerificationError when its header is corrupt, Error kUnavailable when the participant
  // table is full.
  static Producer open(const std::string& name);
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();

  uint32_t slot_count() const;
  uint64_t slot_size() const;

  // Takes the write lock of `slot`, or of the best slot to overwrite when none is given
  // (a FREE one, else the oldest committed one without readers, else the oldest unlocked one
  // whose readers it then waits for with writer_waiting set). Blocks (futex) up to
  // `timeout`. Returns nullopt on timeout. Throws InvalidArgumentError for a bad slot index.
  std::optional<WriteSlot> try_acquire(std::chrono::milliseconds timeout,
                                       std::optional<uint32_t> slot = std::nullopt);
  // As try_acquire, but a timeout throws LockAcquisitionError naming the holder and the
  // command that diagnoses it.
  WriteSlot acquire(std::chrono::milliseconds timeout, std::optional<uint32_t> slot = std::nullopt);
  // acquire + copy + commit. Returns the sequence.
  uint64_t write(std::span<const std::byte> payload, std::chrono::milliseconds timeout,
                 std::optional<uint32_t> slot = std::nullopt);

 private:
  explicit Producer(std::shared_ptr<Segment> segment, uint32_t participant);
  std::shared_ptr<Segment> segment_;
  uint32_t participant_ = 0;
  uint32_t cursor_ = 0;
};

// ---- Consumer -------------------------------------------------------------------------

// A read hold on a committed slot: the payload cannot change while it is held (a writer
// waits for it). Move-only; released on destruction.
class ReadSlot {
 public:
  ReadSlot(ReadSlot&& other) noexcept;
  ReadSlot& operator=(ReadSlot&& other) noexcept;
  ReadSlot(const ReadSlot&) = delete;
  ReadSlot& operator=(const ReadSlot&) = delete;
  ~ReadSlot();

  uint32_t index() const { return index_; }
  uint64_t sequence() const { return sequence_; }
  // The payload, in place in shared memory (no copy).
  std::span<const std::byte> data() const { return data_; }
  // Whether the payload matches the checksum its writer recorded.
  bool verify() const;
  // Whether the hold is still ours (false if an operator broke it with release_readers
  // --force, in which case the payload may have been overwritten).
  bool still_held() const;
  void release();

 private:
  friend class Consumer;
  ReadSlot(std::shared_ptr<Segment> segment, uint32_t participant, uint32_t index,
           uint64_t sequence, uint64_t checksum, std::span<const std::byte> data)
      : segment_(std::move(segment)),
        participant_(participant),
        index_(index),
        sequence_(sequence),
        checksum_(checksum),
        data_(data) {}
  std::shared_ptr<Segment> segment_;
  uint32_t participant_ = 0;
  uint32_t index_ = 0;
  uint64_t sequence_ = 0;
  uint64_t checksum_ = 0;
  std::span<const std::byte> data_;
};

struct ConsumerOptions {
  // A background thread refreshes the heartbeat at least this often (0: only on each call).
  std::chrono::milliseconds heartbeat_interval{1000};
  // How long read_newest busy-polls for a commit before sleeping on the futex: a commit in a
  // busy pipeline usually follows within microseconds, sooner than a futex wake-up.
  std::chrono::microseconds spin_before_sleep{50};
};

// A registered reader: gets a participant id (its consumer id) and a heartbeat entry that it
// refreshes on every call and from a background thread. Unregisters on destruction (any
// holds it still has are released first).
class Consumer {
 public:
  // Throws like Producer::open.
  static Consumer open(const std::string& name, const ConsumerOptions& options = {});
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  ~Consumer();

  uint32_t id() const;
  // Holds the newest committed slot whose sequence is > after_sequence, waiting (futex) up
  // to `timeout` for one to be committed. nullopt on timeout.
  std::optional<ReadSlot> read_newest(std::chrono::milliseconds timeout,
                                      uint64_t after_sequence = 0);
  // Holds `slot` once it is committed and not being written, waiting up to `timeout`.
  std::optional<ReadSlot> read_slot(uint32_t slot, std::chrono::milliseconds timeout);
  // Refreshes the heartbeat now.
  void heartbeat();

 private:
  struct State;
  explicit Consumer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// ---- Recovery (the seed's pylabhub.recovery; Python: warden.recovery) -----------------

// Whether a pid is a live process (not a zombie).
bool is_process_alive(pid_t pid);

struct WriteLockInfo {
  pid_t pid = 0;
  uint64_t start_time = 0;  // the owner's process start time (clock ticks since boot)
  bool alive = false;       // false also when the pid now belongs to another process
  bool pid_reused = false;
  double held_seconds = 0;  // since the lock was taken
};

struct ReaderHoldInfo {
  uint32_t consumer_id = 0;
  pid_t pid = 0;  // 0 when the consumer entry is already free (an orphan hold)
  bool alive = false;
};

struct SlotDiagnosis {
  uint32_t index = 0;
  std::string state;  // FREE, WRITING, COMMITTED, READING (committed, held), DRAINING
                      // (write-locked, waiting for readers), INVALID(<n>)
  std::optional<WriteLockInfo> write_lock;
  uint32_t reader_count = 0;
  std::vector<ReaderHoldInfo> readers;
  bool writer_waiting = false;
  uint64_t sequence = 0;
  uint64_t payload_length = 0;
  double age_seconds = 0;  // since the slot last changed
  bool is_stuck = false;
  std::string stuck_reason;  // why, and the command that resolves it
};

struct ParticipantInfo {
  uint32_t id = 0;
  std::string role;  // "producer" or "consumer"
  pid_t pid = 0;
  bool alive = false;
  double heartbeat_age_seconds = 0;
  bool heartbeat_stale = false;  // older than the block's heartbeat timeout
};

struct BlockDiagnosis {
  std::string name;
  uint32_t layout_version = 0;
  uint32_t slot_count = 0;
  uint64_t slot_size = 0;
  std::string created_at;              // RFC 3339
  uint32_t active_consumer_count = 0;  // as recorded in the block
  uint32_t live_consumer_count = 0;    // consumers whose process is alive
  uint64_t latest_sequence = 0;
  std::vector<SlotDiagnosis> slots;  // all, or the one asked for
  std::vector<ParticipantInfo> participants;
  nlohmann::json to_json() const;
};

// A slot is stuck when its write lock's owner is dead, a dead consumer holds it, or a writer
// has waited on live readers (or a live writer has held it) longer than `stuck_after`.
// Throws IoError kNotFound for an unknown block, InvalidArgumentError for a bad slot,
// VerificationError for a corrupt header (run validate). Never blocks, never changes the block.
BlockDiagnosis diagnose(const std::string& name, std::optional<uint32_t> slot = std::nullopt,
                        std::chrono::seconds stuck_after = std::chrono::seconds(60));

struct RecoveryAction {
  std::string action;  // "release_writer", "release_readers", "cleanup"
  uint32_t slot = 0;
  std::string detail;  // what was (or would be) done, for the audit line
};

// Frees a slot whose write lock belongs to a dead process: the slot becomes FREE (a half
// written payload is discarded) and waiting writers wake. Returns nullopt when the slot was
// not write-locked. Throws LockRecoveryError (code kLockHeld) while the owner is alive.
std::optional<RecoveryAction> release_writer(const std::string& name, uint32_t slot);

struct ReleaseReadersResult {
  std::vector<ReaderHoldInfo> released;  // holds freed
  std::vector<ReaderHoldInfo> kept;      // live holds left in place (force was false)
};
// Frees the read holds of dead (or departed) consumers on a slot; with force also those of
// live consumers (whose ReadSlot::still_held() then turns false). Wakes a waiting writer.
ReleaseReadersResult release_readers(const std::string& name, uint32_t slot, bool force = false);

struct CleanupResult {
  std::vector<ParticipantInfo> removed;       // dead participants removed (holds freed)
  std::vector<ParticipantInfo> unresponsive;  // alive but heartbeat stale: kept, reported
  uint32_t active_consumer_count = 0;         // after cleanup
};
// Removes participants whose process is dead (or whose pid was reused), freeing their read
// holds first, and corrects active_consumer_count.
CleanupResult cleanup_dead_consumers(const std::string& name);

struct ValidationFinding {
  std::string where;    // "header", "slot 3", "participant 5"
  std::string problem;  // what is wrong
  bool repairable = false;
  bool repaired = false;
  std::string action;  // what repair did, or why it could not / the command that would
};
struct ValidationReport {
  std::vector<ValidationFinding> findings;
  // Problems left after this run (found and not repaired).
  size_t unresolved() const;
  nlohmann::json to_json() const;
};
// Checks the header (magic, version, geometry, checksum), every slot's control record
// (state, length, lock owner, orphan read holds) and every committed payload's checksum,
// including a slot whose live writer waits for its readers (reported, never repaired). With
// repair: recomputes checksums of committed slots whose writer is not active (taking
// the write lock itself to make sure), resets slots with an impossible state or length to
// FREE, and frees orphan read holds; each change is a finding with repaired = true. A
// corrupt header is never repaired. Throws IoError kNotFound for an unknown block.
ValidationReport validate(const std::string& name, bool repair = false);

// Everything that is safe without force: release_writer on slots whose writer is dead,
// release_readers (no force) where dead consumers hold, cleanup_dead_consumers. With dry_run
// nothing changes and the actions are what would be done.
std::vector<RecoveryAction> recover_auto(const std::string& name, bool dry_run);

struct BlockListing {
  std::string name;
  uint32_t slot_count = 0;
  uint64_t slot_size = 0;
  uint64_t bytes = 0;
  std::string created_at;
  std::vector<pid_t> users;       // live processes mapping it
  std::vector<pid_t> dead_users;  // recorded participants/lock owners that are dead
  bool leaked = false;            // no live user, and at least one recorded user is dead
  std::string problem;            // non-empty when the header could not be read
};
std::vector<BlockListing> list_blocks();

}  // namespace warden::block
