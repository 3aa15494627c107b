// Consumer and ReadSlot: registration, heartbeats, read holds, waiting for commits.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "layout.h"
#include "warden/checksum.h"
#include "warden/failpoint.h"

namespace warden::block {

struct Consumer::State {
  std::shared_ptr<Segment> segment;
  uint32_t id = 0;
  std::chrono::microseconds spin{0};
  // The heartbeat thread: refreshes the entry at least every interval while the consumer
  // is idle in application code (a consumer that never calls in would look dead).
  std::thread heartbeat_thread;
  std::mutex mutex;
  std::condition_variable stop_signal;
  bool stopping = false;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  // Stops the heartbeat thread and unregisters (freeing any holds still taken). Here rather
  // than in ~Consumer so that move-assigning over a Consumer shuts the old one down too.
  ~State();

  void beat() const {
    segment->participant(id).heartbeat_ns.store(now_ns(), std::memory_order_relaxed);
  }
  // Takes a hold on slot i if it is committed and not write-locked, with a sequence >
  // after_sequence.
  std::optional<ReadSlot> try_hold(uint32_t i, uint64_t after_sequence) const;
};

Consumer::State::~State() {
  if (heartbeat_thread.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    stop_signal.notify_all();
    heartbeat_thread.join();
  }
  if (segment) segment->unregister_participant(id);
}

Consumer::Consumer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&&) noexcept = default;
Consumer::~Consumer() = default;

Consumer Consumer::open(const std::string& name, const ConsumerOptions& options) {
  auto state = std::make_unique<State>();
  state->segment = Segment::open(name);
  state->id = state->segment->register_participant(Role::kConsumer);
  state->spin = options.spin_before_sleep;
  if (options.heartbeat_interval.count() > 0) {
    State* raw = state.get();
    auto interval = options.heartbeat_interval;
    state->heartbeat_thread = std::thread([raw, interval] {
      std::unique_lock<std::mutex> lock(raw->mutex);
      while (!raw->stop_signal.wait_for(lock, interval, [raw] { return raw->stopping; })) {
        raw->beat();
      }
    });
  }
  return Consumer(std::move(state));
}

uint32_t Consumer::id() const { return state_->id; }

void Consumer::heartbeat() { state_->beat(); }

std::optional<ReadSlot> Consumer::State::try_hold(uint32_t i, uint64_t after_sequence) const {
  SlotControl& s = segment->slot(i);
  uint64_t bit = uint64_t{1} << id;
  if (s.write_lock.load(std::memory_order_relaxed) != 0 ||
      s.state.load(std::memory_order_relaxed) != static_cast<uint32_t>(SlotState::kCommitted) ||
      s.sequence.load(std::memory_order_relaxed) <= after_sequence) {
    return std::nullopt;
  }
  // Announce the hold, then look for a writer (seq_cst on both, see layout.h).
  s.reader_mask.fetch_or(bit);
  if (s.write_lock.load() != 0 || s.state.load() != static_cast<uint32_t>(SlotState::kCommitted)) {
    segment->drop_hold(i, id);
    return std::nullopt;
  }
  uint64_t sequence = s.sequence.load();
  if (sequence <= after_sequence) {
    segment->drop_hold(i, id);
    return std::nullopt;
  }
  WARDEN_FAILPOINT("block.read.while_holding");
  uint64_t length = std::min<uint64_t>(s.payload_length.load(), segment->slot_size());
  segment->participant(id).last_sequence.store(sequence, std::memory_order_relaxed);
  return ReadSlot(segment, id, i, sequence, s.payload_checksum.load(),
                  std::span<const std::byte>(segment->payload(i), length));
}

std::optional<ReadSlot> Consumer::read_newest(std::chrono::milliseconds timeout,
                                              uint64_t after_sequence) {
  State& st = *state_;
  st.beat();
  Segment& segment = *st.segment;
  Header& header = segment.header();
  SteadyDeadline deadline = std::chrono::steady_clock::now() + timeout;
  SteadyDeadline spin_until = std::chrono::steady_clock::now() + st.spin;
  while (true) {
    uint32_t seen = header.commit_futex.load();
    uint64_t latest = header.latest.load();
    if ((latest >> 16) > after_sequence) {
      if (auto held = st.try_hold(static_cast<uint32_t>(latest & 0xffff), after_sequence)) {
        return held;
      }
      // The newest slot is being rewritten already: take the newest one still readable.
      uint32_t best = segment.slot_count();
      uint64_t best_sequence = after_sequence;
      for (uint32_t i = 0; i < segment.slot_count(); ++i) {
        SlotControl& s = segment.slot(i);
        uint64_t sequence = s.sequence.load(std::memory_order_relaxed);
        if (sequence > best_sequence && s.write_lock.load(std::memory_order_relaxed) == 0 &&
            s.state.load(std::memory_order_relaxed) ==
                static_cast<uint32_t>(SlotState::kCommitted)) {
          best = i;
          best_sequence = sequence;
        }
      }
      if (best < segment.slot_count()) {
        if (auto held = st.try_hold(best, after_sequence)) return held;
      }
    }
    // A short spin first: a commit usually follows within microseconds in a busy pipeline,
    // and a futex sleep/wake costs more than that. Then sleep on the commit futex.
    auto now = std::chrono::steady_clock::now();
    if (now < spin_until && now < deadline) continue;
    auto remaining = deadline - now;
    if (remaining <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
    // Sleep until the next commit even when a newer sequence exists: its slot is being
    // rewritten (or its writer died), and polling it would burn a core until the deadline.
    // A writer that gives such a slot back without committing bumps commit_futex too.
    header.commit_waiters.fetch_add(1);
    if (header.commit_futex.load() == seen) futex_wait(&header.commit_futex, seen, remaining);
    header.commit_waiters.fetch_sub(1);
    st.beat();
  }
}

std::optional<ReadSlot> Consumer::read_slot(uint32_t slot, std::chrono::milliseconds timeout) {
  State& st = *state_;
  Segment& segment = *st.segment;
  if (slot >= segment.slot_count()) {
    throw InvalidArgumentError("read slot " + std::to_string(slot) + " of block " +
                               segment.block_name() + ": it has " +
                               std::to_string(segment.slot_count()) + " slots");
  }
  st.beat();
  Header& header = segment.header();
  SteadyDeadline deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    uint32_t seen = header.commit_futex.load();
    if (auto held = st.try_hold(slot, 0)) return held;
    auto remaining = deadline - std::chrono::steady_clock::now();
    if (remaining <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
    header.commit_waiters.fetch_add(1);
    if (header.commit_futex.load() == seen) futex_wait(&header.commit_futex, seen, remaining);
    header.commit_waiters.fetch_sub(1);
    st.beat();
  }
}

ReadSlot::ReadSlot(ReadSlot&& other) noexcept
    : segment_(std::move(other.segment_)),
      participant_(other.participant_),
      index_(other.index_),
      sequence_(other.sequence_),
      checksum_(other.checksum_),
      data_(other.data_) {}

ReadSlot& ReadSlot::operator=(ReadSlot&& other) noexcept {
  if (this != &other) {
    release();
    segment_ = std::move(other.segment_);
    participant_ = other.participant_;
    index_ = other.index_;
    sequence_ = other.sequence_;
    checksum_ = other.checksum_;
    data_ = other.data_;
  }
  return *this;
}

ReadSlot::~ReadSlot() { release(); }

bool ReadSlot::verify() const { return xxh3_64(data_.data(), data_.size()) == checksum_; }

bool ReadSlot::still_held() const {
  if (!segment_) return false;
  return (segment_->slot(index_).reader_mask.load() & (uint64_t{1} << participant_)) != 0;
}

void ReadSlot::release() {
  if (!segment_) return;
  segment_->participant(participant_).heartbeat_ns.store(now_ns(), std::memory_order_relaxed);
  segment_->drop_hold(index_, participant_);
  segment_.reset();
}

}  // namespace warden::block
