// Private to src/block/: the DataBlock's shared-memory layout (version 1) and the mapped
// Segment every producer, consumer and recovery tool works through.
//
// Memory ordering: every cross-process decision uses seq_cst on the two words it pairs.
// A writer stores write_lock then loads reader_mask; a reader stores its reader_mask bit then
// loads write_lock. Whichever goes second sees the first (Dekker), so a reader never holds a
// slot that a writer is filling, and a writer never fills a slot a reader holds.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "warden/block.h"
#include "warden/posix.h"
#include "warden/shm.h"

namespace warden::block {

using SteadyDeadline = std::chrono::steady_clock::time_point;

enum class SlotState : uint32_t { kFree = 0, kWriting = 1, kCommitted = 2 };
enum class Role : uint32_t { kNone = 0, kProducer = 1, kConsumer = 2 };

inline constexpr uint64_t kMagic = 0x314B4C424E445257ull;  // "WRDNBLK1" in memory
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr size_t kHeaderBytes = 4096;
inline constexpr size_t kPayloadAlignment = 64;

static_assert(std::atomic<uint32_t>::is_always_lock_free && sizeof(std::atomic<uint32_t>) == 4,
              "futex words must be plain 32-bit words");
static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "shared atomics must be lock-free to work across processes");

struct Header {
  // Written once at creation, covered by header_checksum.
  uint64_t magic;
  uint32_t layout_version;
  uint32_t slot_count;
  uint64_t slot_size;    // payload capacity
  uint64_t slot_stride;  // slot_size rounded up to kPayloadAlignment
  int64_t created_at_ns;
  uint64_t heartbeat_timeout_ms;
  uint64_t slots_offset;
  uint64_t participants_offset;
  uint64_t payload_offset;
  uint64_t total_size;
  uint64_t header_checksum;  // XXH3-64 of every byte above this field

  // Mutable.
  alignas(64) std::atomic<uint32_t> commit_futex;  // bumped by every commit
  std::atomic<uint32_t> commit_waiters;
  std::atomic<uint64_t> next_sequence;
  std::atomic<uint64_t> latest;                  // (sequence << 16) | slot of the newest commit
  alignas(64) std::atomic<uint32_t> free_futex;  // bumped whenever a write lock is released
  std::atomic<uint32_t> free_waiters;
  std::atomic<uint32_t> active_consumer_count;
};
static_assert(sizeof(Header) <= kHeaderBytes);
inline constexpr size_t kHeaderChecksummedBytes = offsetof(Header, header_checksum);

struct alignas(64) SlotControl {
  std::atomic<uint64_t> write_lock;   // 0, or pack_owner(pid, start time) of the writer
  std::atomic<uint64_t> reader_mask;  // bit i: participant i holds a read
  std::atomic<uint32_t> state;        // SlotState
  std::atomic<uint32_t> writer_waiting;
  std::atomic<uint32_t> futex;  // bumped when a hold drops while a writer waits
  std::atomic<uint32_t> waiters;
  std::atomic<uint64_t> write_lock_start_time;  // the owner's full start time
  std::atomic<int64_t> write_lock_taken_ns;
  std::atomic<uint64_t> sequence;
  std::atomic<uint64_t> payload_length;
  std::atomic<uint64_t> payload_checksum;
  std::atomic<int64_t> updated_ns;
};

struct alignas(64) Participant {
  std::atomic<uint64_t> owner;  // 0 = free, else pack_owner(pid, start time)
  std::atomic<uint32_t> role;   // Role
  std::atomic<uint32_t> reserved;
  std::atomic<uint64_t> start_time;
  std::atomic<int64_t> registered_ns;
  std::atomic<int64_t> heartbeat_ns;
  std::atomic<uint64_t> last_sequence;
};

// The write lock and participant owner word: pid in the low half, the low 32 bits of the
// process start time in the high half, so one atomic word names the owner and a reused pid
// (same pid, other start time) does not match.
inline uint64_t pack_owner(pid_t pid, uint64_t start_time) {
  return (static_cast<uint64_t>(start_time & 0xffffffffu) << 32) | static_cast<uint32_t>(pid);
}
inline pid_t owner_pid(uint64_t owner) { return static_cast<pid_t>(owner & 0xffffffffu); }

struct OwnerStatus {
  bool alive = false;
  bool pid_reused = false;
};
// Whether the process named by an owner word is alive on this host (reads /proc).
OwnerStatus owner_status(uint64_t owner);
// This process's owner word (cached per pid).
uint64_t self_owner();

// Wall-clock nanoseconds (ages shown to operators must be real durations across processes).
int64_t now_ns();
double seconds_since(int64_t ns);

// A mapped block. open() checks the header; open_unchecked() only that a header fits (for
// validate, which reports what is wrong instead of refusing).
class Segment {
 public:
  static std::shared_ptr<Segment> open(const std::string& name);
  static std::shared_ptr<Segment> open_unchecked(const std::string& name);
  // Captures this process's owner word once: getpid() is a system call (glibc no longer
  // caches it) and a write would otherwise pay for two. So a Segment, and every Producer or
  // Consumer on it, belongs to the process that opened it; a forked child opens its own.
  explicit Segment(SharedMemory memory)
      : memory_(std::move(memory)),
        owner_(self_owner()),
        owner_start_time_(self_identity().start_time) {}
  uint64_t owner() const { return owner_; }

  const std::string& block_name() const { return block_name_; }
  Header& header() const { return *reinterpret_cast<Header*>(memory_.data()); }
  size_t mapped_size() const { return memory_.size(); }
  uint32_t slot_count() const { return header().slot_count; }
  uint64_t slot_size() const { return header().slot_size; }
  SlotControl& slot(uint32_t i) const {
    return reinterpret_cast<SlotControl*>(memory_.data() + header().slots_offset)[i];
  }
  Participant& participant(uint32_t i) const {
    return reinterpret_cast<Participant*>(memory_.data() + header().participants_offset)[i];
  }
  std::byte* payload(uint32_t i) const {
    return memory_.data() + header().payload_offset + header().slot_stride * i;
  }
  // Header problems ("" when sound): magic, version, checksum, geometry vs mapped size.
  std::string header_problem() const;

  // Claims a free participant entry for this process; throws Error kUnavailable when full.
  uint32_t register_participant(Role role);
  void unregister_participant(uint32_t id);

  // Takes the write lock of slot i if it is free (does not wait for readers).
  bool try_lock_slot(uint32_t i);
  // With the lock held: waits (futex) until no reader holds the slot, or until `deadline`.
  bool wait_for_readers(uint32_t i, SteadyDeadline deadline);
  // Releases the write lock (whatever the state) and wakes writers waiting for a slot.
  void unlock_slot(uint32_t i);
  // Clears participant p's read hold on slot i and wakes a waiting writer.
  void drop_hold(uint32_t i, uint32_t p);
  void wake_commit_waiters();

 private:
  SharedMemory memory_;
  std::string block_name_;
  uint64_t owner_ = 0;
  uint64_t owner_start_time_ = 0;
};

// Shared by diagnose, recovery and validate (diagnose.cc).
std::string format_age(double seconds);  // "4.2s", "4m 3s", "2h 5m"
std::vector<ReaderHoldInfo> reader_holds(const Segment& segment, uint64_t mask);
SlotDiagnosis diagnose_slot(const Segment& segment, uint32_t index,
                            std::chrono::seconds stuck_after);
std::vector<ParticipantInfo> participant_infos(const Segment& segment);

}  // namespace warden::block
