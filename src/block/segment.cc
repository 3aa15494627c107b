// Mapping a block, its header checks, owner identity, and the lock/hold primitives that
// producers, consumers and recovery share.
#include <algorithm>
#include <bit>
#include <regex>

#include "layout.h"
#include "warden/checksum.h"
#include "warden/posix.h"

namespace warden::block {

namespace {

inline constexpr char kSegmentPrefix[] = "warden-block.";

void check_block_name(const std::string& name) {
  static const std::regex kAllowed("[A-Za-z0-9._-]{1,200}");
  if (!std::regex_match(name, kAllowed) || name == "." || name == "..") {
    throw InvalidArgumentError("block name '" + name +
                               "': use 1-200 letters, digits, '.', '_' or '-'");
  }
}

}  // namespace

std::string segment_name(const std::string& name) {
  check_block_name(name);
  return std::string("/") + kSegmentPrefix + name;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_since(int64_t ns) {
  if (ns == 0) return 0;
  return std::max(0.0, static_cast<double>(now_ns() - ns) / 1e9);
}

uint64_t self_owner() {
  static thread_local pid_t cached_pid = 0;
  static thread_local uint64_t cached = 0;
  const ProcessIdentity& self = self_identity();
  if (cached_pid != self.pid) {
    cached_pid = self.pid;
    cached = pack_owner(self.pid, self.start_time);
  }
  return cached;
}

OwnerStatus owner_status(uint64_t owner) {
  OwnerStatus status;
  pid_t pid = owner_pid(owner);
  if (pid <= 0) return status;
  auto stat = process_stat(pid);
  if (!stat) {
    status.alive = pid_exists(pid);  // /proc unreadable but the pid exists: assume alive
    return status;
  }
  if ((stat->start_time & 0xffffffffu) != (owner >> 32)) {
    status.pid_reused = true;
    return status;
  }
  status.alive = stat->state != 'Z' && stat->state != 'X';  // a zombie holds nothing
  return status;
}

void create_block(const std::string& name, const BlockOptions& options) {
  std::string segment = segment_name(name);
  if (options.slot_count < 1 || options.slot_count > kMaxSlots) {
    throw InvalidArgumentError("create block " + name + ": --slots must be 1.." +
                               std::to_string(kMaxSlots));
  }
  if (options.slot_size < 1 || options.slot_size > (uint64_t{1} << 40)) {
    throw InvalidArgumentError("create block " + name + ": --slot-size must be 1..1 TiB");
  }
  uint64_t stride =
      (options.slot_size + kPayloadAlignment - 1) / kPayloadAlignment * kPayloadAlignment;
  uint64_t slots_offset = kHeaderBytes;
  uint64_t participants_offset = slots_offset + sizeof(SlotControl) * options.slot_count;
  uint64_t payload_offset = participants_offset + sizeof(Participant) * kMaxParticipants;
  payload_offset = (payload_offset + 4095) / 4096 * 4096;
  uint64_t total = payload_offset + stride * options.slot_count;

  auto memory = SharedMemory::create(segment, total, 0600);
  if (!memory) {
    throw Error(ErrorCode::kLockHeld, "create block " + name + ": it exists already (/dev/shm" +
                                          segment + "); inspect it with 'warden block diagnose " +
                                          name + "' or remove it with 'warden block remove " +
                                          name + "'");
  }
  std::byte* base = memory->data();
  // The segment is zero-filled, and zero is a valid initial state for every atomic here
  // (FREE, unlocked, no readers, no participants); construct them formally all the same.
  auto* header = new (base) Header{};
  for (uint32_t i = 0; i < options.slot_count; ++i) {
    new (base + slots_offset + sizeof(SlotControl) * i) SlotControl{};
  }
  for (uint32_t i = 0; i < kMaxParticipants; ++i) {
    new (base + participants_offset + sizeof(Participant) * i) Participant{};
  }
  header->layout_version = kLayoutVersion;
  header->slot_count = options.slot_count;
  header->slot_size = options.slot_size;
  header->slot_stride = stride;
  header->created_at_ns = now_ns();
  header->heartbeat_timeout_ms = static_cast<uint64_t>(options.heartbeat_timeout.count());
  header->slots_offset = slots_offset;
  header->participants_offset = participants_offset;
  header->payload_offset = payload_offset;
  header->total_size = total;
  header->magic = kMagic;
  header->header_checksum = xxh3_64(header, kHeaderChecksummedBytes);
  // The checksum is the last word written: an opener that sees a matching checksum sees a
  // complete header.
  std::atomic_thread_fence(std::memory_order_release);
}

bool remove_block(const std::string& name) { return remove_shared_memory(segment_name(name)); }

std::string Segment::header_problem() const {
  if (memory_.size() < kHeaderBytes) {
    return "segment is " + std::to_string(memory_.size()) + " bytes, smaller than a header";
  }
  const Header& h = header();
  if (h.magic != kMagic) return "bad magic (not a warden DataBlock, or its header is overwritten)";
  if (h.layout_version != kLayoutVersion) {
    return "layout version " + std::to_string(h.layout_version) + ", expected " +
           std::to_string(kLayoutVersion);
  }
  uint64_t checksum = xxh3_64(&h, kHeaderChecksummedBytes);
  if (checksum != h.header_checksum) return "header checksum mismatch (header corrupted)";
  if (h.slot_count < 1 || h.slot_count > kMaxSlots || h.total_size != memory_.size() ||
      h.slots_offset != kHeaderBytes ||
      h.participants_offset != h.slots_offset + sizeof(SlotControl) * h.slot_count ||
      h.payload_offset < h.participants_offset + sizeof(Participant) * kMaxParticipants ||
      h.slot_stride < h.slot_size ||
      h.payload_offset + h.slot_stride * h.slot_count != h.total_size) {
    return "geometry does not match the segment size";
  }
  return "";
}

std::shared_ptr<Segment> Segment::open_unchecked(const std::string& name) {
  std::string segment = segment_name(name);
  SharedMemory memory = [&] {
    try {
      return SharedMemory::open(segment, true);
    } catch (const IoError& e) {
      if (e.code() == ErrorCode::kNotFound) {
        throw IoError("open block " + name + ": no such block (/dev/shm" + segment +
                          " does not exist); 'warden block list' shows the blocks",
                      e.errno_value(), ErrorCode::kNotFound);
      }
      throw;
    }
  }();
  auto result = std::make_shared<Segment>(std::move(memory));
  result->block_name_ = name;
  return result;
}

std::shared_ptr<Segment> Segment::open(const std::string& name) {
  auto segment = open_unchecked(name);
  std::atomic_thread_fence(std::memory_order_acquire);
  std::string problem = segment->header_problem();
  if (!problem.empty()) {
    throw VerificationError("open block " + name + ": " + problem +
                            "; run 'warden block validate " + name + "'");
  }
  return segment;
}

uint32_t Segment::register_participant(Role role) {
  uint64_t me = owner_;
  for (uint32_t i = 0; i < kMaxParticipants; ++i) {
    Participant& p = participant(i);
    uint64_t expected = 0;
    if (p.owner.load(std::memory_order_relaxed) != 0) continue;
    if (!p.owner.compare_exchange_strong(expected, me)) continue;
    p.role.store(static_cast<uint32_t>(role));
    p.start_time.store(owner_start_time_);
    p.registered_ns.store(now_ns());
    p.heartbeat_ns.store(now_ns());
    p.last_sequence.store(0);
    if (role == Role::kConsumer) header().active_consumer_count.fetch_add(1);
    return i;
  }
  throw Error(ErrorCode::kUnavailable,
              "register in block " + block_name_ + ": all " + std::to_string(kMaxParticipants) +
                  " participant entries are taken; remove dead ones with 'warden block cleanup " +
                  block_name_ + "'");
}

void Segment::unregister_participant(uint32_t id) {
  Participant& p = participant(id);
  uint64_t me = p.owner.load();
  Role role = static_cast<Role>(p.role.load());
  for (uint32_t i = 0; i < slot_count(); ++i) {
    if (slot(i).reader_mask.load() & (uint64_t{1} << id)) drop_hold(i, id);
  }
  p.role.store(0);
  if (p.owner.compare_exchange_strong(me, 0) && role == Role::kConsumer) {
    header().active_consumer_count.fetch_sub(1);
  }
}

bool Segment::try_lock_slot(uint32_t i) {
  SlotControl& s = slot(i);
  uint64_t expected = 0;
  if (s.write_lock.load(std::memory_order_relaxed) != 0) return false;
  if (!s.write_lock.compare_exchange_strong(expected, owner_)) return false;
  s.write_lock_start_time.store(owner_start_time_, std::memory_order_relaxed);
  s.write_lock_taken_ns.store(now_ns(), std::memory_order_relaxed);
  return true;
}

bool Segment::wait_for_readers(uint32_t i, SteadyDeadline deadline) {
  SlotControl& s = slot(i);
  if (s.reader_mask.load() == 0) return true;
  s.writer_waiting.store(1);
  bool drained = false;
  while (true) {
    uint32_t seen = s.futex.load();
    if (s.reader_mask.load() == 0) {
      drained = true;
      break;
    }
    auto remaining = deadline - std::chrono::steady_clock::now();
    if (remaining <= std::chrono::steady_clock::duration::zero()) break;
    s.waiters.fetch_add(1);
    if (s.reader_mask.load() == 0) {
      s.waiters.fetch_sub(1);
      continue;
    }
    futex_wait(&s.futex, seen, remaining);
    s.waiters.fetch_sub(1);
  }
  s.writer_waiting.store(0);
  return drained;
}

void Segment::unlock_slot(uint32_t i) {
  SlotControl& s = slot(i);
  s.write_lock.store(0);
  Header& h = header();
  if (h.free_waiters.load() != 0) {
    h.free_futex.fetch_add(1);
    futex_wake(&h.free_futex, INT32_MAX);
  }
}

void Segment::drop_hold(uint32_t i, uint32_t p) {
  SlotControl& s = slot(i);
  s.reader_mask.fetch_and(~(uint64_t{1} << p));
  if (s.waiters.load() != 0 || s.writer_waiting.load() != 0) {
    s.futex.fetch_add(1);
    futex_wake(&s.futex, INT32_MAX);
  }
}

void Segment::wake_commit_waiters() {
  Header& h = header();
  h.commit_futex.fetch_add(1);
  if (h.commit_waiters.load() != 0) futex_wake(&h.commit_futex, INT32_MAX);
}

}  // namespace warden::block
