// Producer and WriteSlot: choosing a slot, taking its write lock, committing.
#include <limits>

#include "layout.h"
#include "warden/checksum.h"
#include "warden/events.h"
#include "warden/failpoint.h"
#include "warden/posix.h"

namespace warden::block {

Producer::Producer(std::shared_ptr<Segment> segment, uint32_t participant)
    : segment_(std::move(segment)), participant_(participant) {}

Producer Producer::open(const std::string& name) {
  auto segment = Segment::open(name);
  uint32_t id = segment->register_participant(Role::kProducer);
  return Producer(std::move(segment), id);
}

Producer::Producer(Producer&& other) noexcept
    : segment_(std::move(other.segment_)),
      participant_(other.participant_),
      cursor_(other.cursor_) {}

Producer& Producer::operator=(Producer&& other) noexcept {
  if (this != &other) {
    if (segment_) segment_->unregister_participant(participant_);
    segment_ = std::move(other.segment_);
    participant_ = other.participant_;
    cursor_ = other.cursor_;
  }
  return *this;
}

Producer::~Producer() {
  if (segment_) segment_->unregister_participant(participant_);
}

uint32_t Producer::slot_count() const { return segment_->slot_count(); }
uint64_t Producer::slot_size() const { return segment_->slot_size(); }

namespace {

// Picks and locks a slot without waiting for anything: a FREE slot, else the oldest
// committed one without readers, else the oldest unlocked one (its readers are waited for by
// the caller). Returns the slot, or nullopt when every slot is write-locked.
std::optional<uint32_t> lock_best_slot(Segment& segment, uint32_t& cursor) {
  uint32_t count = segment.slot_count();
  for (int pass = 0; pass < 3; ++pass) {
    uint32_t best = count;
    uint64_t best_sequence = std::numeric_limits<uint64_t>::max();
    for (uint32_t k = 0; k < count; ++k) {
      uint32_t i = (cursor + k) % count;
      SlotControl& s = segment.slot(i);
      if (s.write_lock.load(std::memory_order_relaxed) != 0) continue;
      bool no_readers = s.reader_mask.load(std::memory_order_relaxed) == 0;
      uint32_t state = s.state.load(std::memory_order_relaxed);
      if (pass == 0 && !(no_readers && state != static_cast<uint32_t>(SlotState::kCommitted))) {
        continue;
      }
      if (pass == 1 && !no_readers) continue;
      uint64_t sequence = s.sequence.load(std::memory_order_relaxed);
      if (pass == 0 || sequence < best_sequence) {
        best = i;
        best_sequence = sequence;
        if (pass == 0) break;
      }
    }
    if (best < count && segment.try_lock_slot(best)) {
      cursor = (best + 1) % count;
      return best;
    }
  }
  return std::nullopt;
}

std::string holder_text(Segment& segment, uint32_t slot) {
  uint64_t owner = segment.slot(slot).write_lock.load();
  uint64_t readers = segment.slot(slot).reader_mask.load();
  if (owner != 0) {
    OwnerStatus status = owner_status(owner);
    return "write-locked by pid " + std::to_string(owner_pid(owner)) +
           (status.alive ? " (alive)" : " (dead)");
  }
  if (readers != 0) return "held by " + std::to_string(std::popcount(readers)) + " reader(s)";
  return "busy";
}

}  // namespace

std::optional<WriteSlot> Producer::try_acquire(std::chrono::milliseconds timeout,
                                               std::optional<uint32_t> slot) {
  Segment& segment = *segment_;
  if (slot && *slot >= segment.slot_count()) {
    throw InvalidArgumentError("acquire slot " + std::to_string(*slot) + " of block " +
                               segment.block_name() + ": it has " +
                               std::to_string(segment.slot_count()) + " slots");
  }
  segment.participant(participant_).heartbeat_ns.store(now_ns(), std::memory_order_relaxed);
  SteadyDeadline deadline = std::chrono::steady_clock::now() + timeout;
  Header& header = segment.header();
  while (true) {
    // Lock first, then wait for the slot's readers: once the lock is visible no new reader
    // takes a hold, so the wait is bounded by the readers already inside.
    uint32_t seen = header.free_futex.load();
    std::optional<uint32_t> locked;
    if (slot) {
      if (segment.try_lock_slot(*slot)) locked = *slot;
    } else {
      locked = lock_best_slot(segment, cursor_);
    }
    if (locked) {
      WARDEN_FAILPOINT("block.write.after_lock");
      if (!segment.wait_for_readers(*locked, deadline)) {
        // The slot is still COMMITTED and readable again: consumers that slept past it while
        // it was locked must look again.
        segment.unlock_slot(*locked);
        segment.wake_commit_waiters();
        return std::nullopt;
      }
      SlotControl& s = segment.slot(*locked);
      s.state.store(static_cast<uint32_t>(SlotState::kWriting));
      s.updated_ns.store(now_ns(), std::memory_order_relaxed);
      std::span<std::byte> buffer(segment.payload(*locked), segment.slot_size());
      WARDEN_FAILPOINT("block.write.after_acquire");
      return WriteSlot(segment_, *locked, buffer);
    }
    auto remaining = deadline - std::chrono::steady_clock::now();
    if (remaining <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
    header.free_waiters.fetch_add(1);
    // Re-check after announcing the wait: an unlock that missed the waiter count happened
    // before this load and is seen here.
    bool changed = header.free_futex.load() != seen;
    if (!changed) futex_wait(&header.free_futex, seen, remaining);
    header.free_waiters.fetch_sub(1);
  }
}

WriteSlot Producer::acquire(std::chrono::milliseconds timeout, std::optional<uint32_t> slot) {
  auto acquired = try_acquire(timeout, slot);
  if (acquired) return std::move(*acquired);
  Segment& segment = *segment_;
  std::string name = segment.block_name();
  std::string detail = slot ? "slot " + std::to_string(*slot) + " is " + holder_text(segment, *slot)
                            : "every slot is write-locked or held by readers";
  emit_event(EventLevel::kWarning, "block.acquire.timeout",
             "no slot of block " + name + " could be write-locked in time",
             {{"block", name}, {"timeout_ms", timeout.count()}});
  throw LockAcquisitionError("acquire write lock in block " + name + " after " +
                             std::to_string(timeout.count()) + " ms: " + detail +
                             "; see 'warden block diagnose " + name + "'");
}

uint64_t Producer::write(std::span<const std::byte> payload, std::chrono::milliseconds timeout,
                         std::optional<uint32_t> slot) {
  if (payload.size() > slot_size()) {
    throw InvalidArgumentError("write to block " + segment_->block_name() + ": payload of " +
                               std::to_string(payload.size()) + " bytes exceeds the slot size " +
                               std::to_string(slot_size()));
  }
  WriteSlot target = acquire(timeout, slot);
  // Copy and hash together (see xxh3_64_copy): a large payload in one pass over memory.
  uint64_t checksum = xxh3_64_copy(target.buffer().data(), payload.data(), payload.size());
  return target.commit_with_checksum(payload.size(), checksum);
}

WriteSlot::WriteSlot(WriteSlot&& other) noexcept
    : segment_(std::move(other.segment_)), index_(other.index_), buffer_(other.buffer_) {}

WriteSlot& WriteSlot::operator=(WriteSlot&& other) noexcept {
  if (this != &other) {
    if (segment_) abort();
    segment_ = std::move(other.segment_);
    index_ = other.index_;
    buffer_ = other.buffer_;
  }
  return *this;
}

WriteSlot::~WriteSlot() {
  if (segment_) abort();
}

void WriteSlot::abort() {
  if (!segment_) return;
  SlotControl& s = segment_->slot(index_);
  s.payload_length.store(0, std::memory_order_relaxed);
  s.state.store(static_cast<uint32_t>(SlotState::kFree));
  s.updated_ns.store(now_ns(), std::memory_order_relaxed);
  segment_->unlock_slot(index_);
  segment_.reset();
}

uint64_t WriteSlot::commit(size_t length) {
  if (!segment_) throw InvalidArgumentError("commit: the slot was already committed or aborted");
  if (length > buffer_.size()) {
    throw InvalidArgumentError("commit slot " + std::to_string(index_) + ": length " +
                               std::to_string(length) + " exceeds the slot size " +
                               std::to_string(buffer_.size()));
  }
  return commit_with_checksum(length, xxh3_64(buffer_.data(), length));
}

uint64_t WriteSlot::commit_with_checksum(size_t length, uint64_t checksum) {
  Segment& segment = *segment_;
  SlotControl& s = segment.slot(index_);
  Header& header = segment.header();
  WARDEN_FAILPOINT("block.commit.before_publish");
  uint64_t sequence = header.next_sequence.fetch_add(1) + 1;
  s.payload_length.store(length, std::memory_order_relaxed);
  s.payload_checksum.store(checksum, std::memory_order_relaxed);
  s.sequence.store(sequence, std::memory_order_relaxed);
  s.updated_ns.store(now_ns(), std::memory_order_relaxed);
  s.state.store(static_cast<uint32_t>(SlotState::kCommitted));  // seq_cst: publishes the above
  segment.unlock_slot(index_);
  // latest only moves forward: two producers may commit out of order.
  uint64_t packed = (sequence << 16) | index_;
  uint64_t current = header.latest.load();
  while ((current >> 16) < sequence && !header.latest.compare_exchange_weak(current, packed)) {
  }
  segment.wake_commit_waiters();
  segment_.reset();
  return sequence;
}

}  // namespace warden::block
