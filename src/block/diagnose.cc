// diagnose(): a read-only picture of a block, slot by slot, with why a slot is stuck.
#include <fmt/format.h>

#include <bit>
#include <chrono>

#include "layout.h"
#include "warden/posix.h"

namespace warden::block {

bool is_process_alive(pid_t pid) {
  if (pid <= 0) return false;
  auto stat = process_stat(pid);
  if (!stat) return pid_exists(pid);
  return stat->state != 'Z' && stat->state != 'X';
}

namespace {

std::string slot_state_name(const SlotControl& s) {
  uint32_t state = s.state.load();
  bool locked = s.write_lock.load() != 0;
  if (state == static_cast<uint32_t>(SlotState::kWriting)) return "WRITING";
  if (state > static_cast<uint32_t>(SlotState::kCommitted)) {
    return "INVALID(" + std::to_string(state) + ")";
  }
  if (locked) return "DRAINING";
  if (state == static_cast<uint32_t>(SlotState::kCommitted)) {
    return s.reader_mask.load() != 0 ? "READING" : "COMMITTED";
  }
  return "FREE";
}

}  // namespace

std::string format_age(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  long total = static_cast<long>(seconds);
  if (total < 3600) return fmt::format("{}m {}s", total / 60, total % 60);
  return fmt::format("{}h {}m", total / 3600, total / 60 % 60);
}

std::vector<ReaderHoldInfo> reader_holds(const Segment& segment, uint64_t mask) {
  std::vector<ReaderHoldInfo> holds;
  while (mask != 0) {
    uint32_t bit = static_cast<uint32_t>(std::countr_zero(mask));
    mask &= mask - 1;
    ReaderHoldInfo hold;
    hold.consumer_id = bit;
    const Participant& p = segment.participant(bit);
    uint64_t owner = p.owner.load();
    if (owner != 0 && p.role.load() == static_cast<uint32_t>(Role::kConsumer)) {
      hold.pid = owner_pid(owner);
      hold.alive = owner_status(owner).alive;
    }
    holds.push_back(hold);
  }
  return holds;
}

SlotDiagnosis diagnose_slot(const Segment& segment, uint32_t index,
                            std::chrono::seconds stuck_after) {
  const SlotControl& s = segment.slot(index);
  const std::string& name = segment.block_name();
  std::string recover = "warden block recover " + name + " --slot " + std::to_string(index);
  SlotDiagnosis d;
  d.index = index;
  d.state = slot_state_name(s);
  uint64_t owner = s.write_lock.load();
  if (owner != 0) {
    WriteLockInfo lock;
    lock.pid = owner_pid(owner);
    uint64_t start = s.write_lock_start_time.load();
    lock.start_time = (start & 0xffffffffu) == (owner >> 32) ? start : (owner >> 32);
    OwnerStatus status = owner_status(owner);
    lock.alive = status.alive;
    lock.pid_reused = status.pid_reused;
    lock.held_seconds = seconds_since(s.write_lock_taken_ns.load());
    d.write_lock = lock;
  }
  d.readers = reader_holds(segment, s.reader_mask.load());
  d.reader_count = static_cast<uint32_t>(d.readers.size());
  d.writer_waiting = s.writer_waiting.load() != 0;
  d.sequence = s.sequence.load();
  d.payload_length = s.payload_length.load();
  d.age_seconds = seconds_since(s.updated_ns.load());

  double limit = static_cast<double>(stuck_after.count());
  std::vector<std::string> reasons;
  if (d.write_lock && !d.write_lock->alive) {
    reasons.push_back("writer pid " + std::to_string(d.write_lock->pid) +
                      (d.write_lock->pid_reused ? " is gone (pid now reused)" : " is dead") +
                      ", lock held " + format_age(d.write_lock->held_seconds) + "; run '" +
                      recover + " --action release_writer'");
  }
  size_t dead_readers = 0, live_readers = 0;
  for (const auto& hold : d.readers) (hold.alive ? live_readers : dead_readers)++;
  if (dead_readers > 0) {
    reasons.push_back(std::to_string(dead_readers) + " read hold(s) of dead consumers; run '" +
                      recover + " --action release_readers'");
  }
  if (live_readers > 0 && d.writer_waiting && d.write_lock && d.write_lock->alive &&
      d.write_lock->held_seconds > limit) {
    reasons.push_back("writer pid " + std::to_string(d.write_lock->pid) + " has waited " +
                      format_age(d.write_lock->held_seconds) + " for " +
                      std::to_string(live_readers) + " live reader(s); run '" + recover +
                      " --action release_readers --force' if they are hung");
  } else if (d.write_lock && d.write_lock->alive && d.write_lock->held_seconds > limit) {
    reasons.push_back("writer pid " + std::to_string(d.write_lock->pid) +
                      " is alive but has held the lock " + format_age(d.write_lock->held_seconds) +
                      " (hung?)");
  }
  d.is_stuck = !reasons.empty();
  for (size_t i = 0; i < reasons.size(); ++i) {
    d.stuck_reason += (i ? "; " : "") + reasons[i];
  }
  return d;
}

std::vector<ParticipantInfo> participant_infos(const Segment& segment) {
  std::vector<ParticipantInfo> result;
  double timeout = static_cast<double>(segment.header().heartbeat_timeout_ms) / 1000.0;
  for (uint32_t i = 0; i < kMaxParticipants; ++i) {
    const Participant& p = segment.participant(i);
    uint64_t owner = p.owner.load();
    if (owner == 0) continue;
    ParticipantInfo info;
    info.id = i;
    uint32_t role = p.role.load();
    info.role = role == static_cast<uint32_t>(Role::kProducer)   ? "producer"
                : role == static_cast<uint32_t>(Role::kConsumer) ? "consumer"
                                                                 : "registering";
    info.pid = owner_pid(owner);
    info.alive = owner_status(owner).alive;
    info.heartbeat_age_seconds = seconds_since(p.heartbeat_ns.load());
    info.heartbeat_stale = info.heartbeat_age_seconds > timeout;
    result.push_back(info);
  }
  return result;
}

BlockDiagnosis diagnose(const std::string& name, std::optional<uint32_t> slot,
                        std::chrono::seconds stuck_after) {
  auto segment = Segment::open(name);
  const Header& h = segment->header();
  if (slot && *slot >= h.slot_count) {
    throw InvalidArgumentError("diagnose block " + name + " --slot " + std::to_string(*slot) +
                               ": it has " + std::to_string(h.slot_count) + " slots (0.." +
                               std::to_string(h.slot_count - 1) + ")");
  }
  BlockDiagnosis d;
  d.name = name;
  d.layout_version = h.layout_version;
  d.slot_count = h.slot_count;
  d.slot_size = h.slot_size;
  d.created_at = format_utc(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(h.created_at_ns))));
  d.active_consumer_count = h.active_consumer_count.load();
  d.latest_sequence = h.latest.load() >> 16;
  d.participants = participant_infos(*segment);
  for (const auto& p : d.participants) {
    if (p.role == "consumer" && p.alive) d.live_consumer_count++;
  }
  for (uint32_t i = 0; i < h.slot_count; ++i) {
    if (!slot || *slot == i) d.slots.push_back(diagnose_slot(*segment, i, stuck_after));
  }
  return d;
}

nlohmann::json BlockDiagnosis::to_json() const {
  nlohmann::json slots_json = nlohmann::json::array();
  for (const auto& s : slots) {
    nlohmann::json readers_json = nlohmann::json::array();
    for (const auto& r : s.readers) {
      readers_json.push_back({{"consumer_id", r.consumer_id}, {"pid", r.pid}, {"alive", r.alive}});
    }
    nlohmann::json lock = nullptr;
    if (s.write_lock) {
      lock = {{"pid", s.write_lock->pid},
              {"start_time", s.write_lock->start_time},
              {"alive", s.write_lock->alive},
              {"pid_reused", s.write_lock->pid_reused},
              {"held_seconds", s.write_lock->held_seconds}};
    }
    slots_json.push_back({{"slot", s.index},
                          {"state", s.state},
                          {"write_lock", lock},
                          {"reader_count", s.reader_count},
                          {"readers", readers_json},
                          {"writer_waiting", s.writer_waiting ? 1 : 0},
                          {"sequence", s.sequence},
                          {"payload_length", s.payload_length},
                          {"age_seconds", s.age_seconds},
                          {"is_stuck", s.is_stuck},
                          {"stuck_reason", s.stuck_reason}});
  }
  nlohmann::json participants_json = nlohmann::json::array();
  for (const auto& p : participants) {
    participants_json.push_back({{"id", p.id},
                                 {"role", p.role},
                                 {"pid", p.pid},
                                 {"alive", p.alive},
                                 {"heartbeat_age_seconds", p.heartbeat_age_seconds},
                                 {"heartbeat_stale", p.heartbeat_stale}});
  }
  return {{"name", name},
          {"layout_version", layout_version},
          {"slot_count", slot_count},
          {"slot_size", slot_size},
          {"created_at", created_at},
          {"active_consumer_count", active_consumer_count},
          {"live_consumer_count", live_consumer_count},
          {"latest_sequence", latest_sequence},
          {"slots", slots_json},
          {"participants", participants_json}};
}

}  // namespace warden::block
