// The recovery actions: release_writer, release_readers, cleanup_dead_consumers, and
// recover_auto, which runs whichever of them is safe without --force.
#include <bit>

#include "layout.h"
#include "warden/events.h"

namespace warden::block {

namespace {

void check_slot(const Segment& segment, uint32_t slot, const char* operation) {
  if (slot >= segment.slot_count()) {
    throw InvalidArgumentError(std::string(operation) + " block " + segment.block_name() +
                               " --slot " + std::to_string(slot) + ": it has " +
                               std::to_string(segment.slot_count()) + " slots");
  }
}

// Takes over a dead writer's lock (CAS from its owner word to ours, so a racing recovery or
// a writer that was not dead after all cannot be trampled), resets the slot to FREE and
// unlocks it.
std::optional<RecoveryAction> release_writer_in(Segment& segment, uint32_t index) {
  SlotControl& s = segment.slot(index);
  while (true) {
    uint64_t owner = s.write_lock.load();
    if (owner == 0) return std::nullopt;
    OwnerStatus status = owner_status(owner);
    double held = seconds_since(s.write_lock_taken_ns.load());
    pid_t pid = owner_pid(owner);
    if (status.alive) {
      throw LockRecoveryError("release writer of slot " + std::to_string(index) + " in block " +
                                  segment.block_name() + ": pid " + std::to_string(pid) +
                                  " is alive and has held the write lock " + format_age(held) +
                                  "; stop that process first (it may still be writing), then rerun",
                              ErrorCode::kLockHeld);
    }
    if (!s.write_lock.compare_exchange_strong(owner, segment.owner())) continue;
    uint64_t sequence = s.sequence.load();
    bool was_committed = s.state.load() == static_cast<uint32_t>(SlotState::kCommitted);
    s.payload_length.store(0);
    s.payload_checksum.store(0);
    s.writer_waiting.store(0);
    s.state.store(static_cast<uint32_t>(SlotState::kFree));
    s.updated_ns.store(now_ns());
    segment.unlock_slot(index);
    std::string detail =
        "released write lock of " + std::string(status.pid_reused ? "departed" : "dead") + " pid " +
        std::to_string(pid) + " (held " + format_age(held) + "); slot reset to FREE" +
        (was_committed ? " (committed sequence " + std::to_string(sequence) + " dropped)"
                       : " (half-written payload discarded)");
    emit_event(
        EventLevel::kWarning, "block.writer.released",
        "slot " + std::to_string(index) + " of block " + segment.block_name() + ": " + detail,
        {{"block", segment.block_name()}, {"slot", index}, {"pid", pid}, {"held_seconds", held}});
    return RecoveryAction{"release_writer", index, detail};
  }
}

ReleaseReadersResult release_readers_in(Segment& segment, uint32_t index, bool force) {
  ReleaseReadersResult result;
  for (const ReaderHoldInfo& hold : reader_holds(segment, segment.slot(index).reader_mask.load())) {
    if (hold.alive && !force) {
      result.kept.push_back(hold);
      continue;
    }
    segment.drop_hold(index, hold.consumer_id);
    result.released.push_back(hold);
    emit_event(hold.alive ? EventLevel::kWarning : EventLevel::kInfo,
               hold.alive ? "block.readers.forced" : "block.readers.released",
               "slot " + std::to_string(index) + " of block " + segment.block_name() +
                   ": released the read hold of " + (hold.alive ? "live" : "dead") + " consumer " +
                   std::to_string(hold.consumer_id) +
                   (hold.pid ? " (pid " + std::to_string(hold.pid) + ")" : ""),
               {{"block", segment.block_name()},
                {"slot", index},
                {"consumer_id", hold.consumer_id},
                {"pid", hold.pid}});
  }
  return result;
}

// Removes one dead participant: its holds first (so a new registrant of the entry never
// inherits them), then the entry itself.
bool remove_participant(Segment& segment, uint32_t id, uint64_t owner) {
  Participant& p = segment.participant(id);
  for (uint32_t i = 0; i < segment.slot_count(); ++i) {
    if (segment.slot(i).reader_mask.load() & (uint64_t{1} << id)) segment.drop_hold(i, id);
  }
  uint32_t role = p.role.load();
  if (!p.owner.compare_exchange_strong(owner, 0)) return false;
  if (role == static_cast<uint32_t>(Role::kConsumer)) {
    auto& count = segment.header().active_consumer_count;
    uint32_t current = count.load();
    while (current > 0 && !count.compare_exchange_weak(current, current - 1)) {
    }
  }
  return true;
}

CleanupResult cleanup_in(Segment& segment) {
  CleanupResult result;
  for (const ParticipantInfo& info : participant_infos(segment)) {
    if (info.alive) {
      if (info.heartbeat_stale) result.unresponsive.push_back(info);
      continue;
    }
    uint64_t owner = segment.participant(info.id).owner.load();
    if (owner_pid(owner) != info.pid || owner_status(owner).alive) continue;
    if (!remove_participant(segment, info.id, owner)) continue;
    result.removed.push_back(info);
    emit_event(EventLevel::kInfo, "block.consumer.removed",
               "removed dead " + info.role + " " + std::to_string(info.id) + " (pid " +
                   std::to_string(info.pid) + ", last heartbeat " +
                   format_age(info.heartbeat_age_seconds) + " ago) from block " +
                   segment.block_name(),
               {{"block", segment.block_name()},
                {"participant", info.id},
                {"role", info.role},
                {"pid", info.pid}});
  }
  // The count and the table are separate words: a consumer killed between claiming its
  // entry and counting itself (or a cleanup racing a registration) leaves them apart, so
  // cleanup makes the count agree with the table it has just cleaned.
  uint32_t registered = 0;
  for (uint32_t i = 0; i < kMaxParticipants; ++i) {
    const Participant& p = segment.participant(i);
    if (p.owner.load() != 0 && p.role.load() == static_cast<uint32_t>(Role::kConsumer)) {
      registered++;
    }
  }
  auto& count = segment.header().active_consumer_count;
  uint32_t recorded = count.load();
  if (recorded != registered && count.compare_exchange_strong(recorded, registered)) {
    emit_event(EventLevel::kInfo, "block.consumer_count.corrected",
               "active_consumer_count of block " + segment.block_name() + " corrected from " +
                   std::to_string(recorded) + " to " + std::to_string(registered),
               {{"block", segment.block_name()}, {"from", recorded}, {"to", registered}});
  }
  result.active_consumer_count = count.load();
  return result;
}

}  // namespace

std::optional<RecoveryAction> release_writer(const std::string& name, uint32_t slot) {
  auto segment = Segment::open(name);
  check_slot(*segment, slot, "release writer of");
  return release_writer_in(*segment, slot);
}

ReleaseReadersResult release_readers(const std::string& name, uint32_t slot, bool force) {
  auto segment = Segment::open(name);
  check_slot(*segment, slot, "release readers of");
  return release_readers_in(*segment, slot, force);
}

CleanupResult cleanup_dead_consumers(const std::string& name) {
  auto segment = Segment::open(name);
  return cleanup_in(*segment);
}

std::vector<RecoveryAction> recover_auto(const std::string& name, bool dry_run) {
  auto segment = Segment::open(name);
  std::vector<RecoveryAction> actions;
  for (uint32_t i = 0; i < segment->slot_count(); ++i) {
    SlotControl& s = segment->slot(i);
    uint64_t owner = s.write_lock.load();
    if (owner != 0 && !owner_status(owner).alive) {
      if (dry_run) {
        actions.push_back({"release_writer", i,
                           "would release the write lock of dead pid " +
                               std::to_string(owner_pid(owner)) + " (held " +
                               format_age(seconds_since(s.write_lock_taken_ns.load())) +
                               ") and reset the slot to FREE"});
      } else if (auto done = release_writer_in(*segment, i)) {
        actions.push_back(*done);
      }
    }
    std::vector<ReaderHoldInfo> dead;
    for (const auto& hold : reader_holds(*segment, s.reader_mask.load())) {
      if (!hold.alive) dead.push_back(hold);
    }
    if (dead.empty()) continue;
    if (!dry_run) dead = release_readers_in(*segment, i, false).released;
    if (dead.empty()) continue;
    std::string who;
    for (const auto& hold : dead) {
      who += (who.empty() ? "" : ", ") + std::string("consumer ") +
             std::to_string(hold.consumer_id) +
             (hold.pid ? " (pid " + std::to_string(hold.pid) + ")" : " (departed)");
    }
    actions.push_back(
        {"release_readers", i,
         std::string(dry_run ? "would release" : "released") + " the read hold(s) of dead " + who});
  }
  if (dry_run) {
    for (const ParticipantInfo& info : participant_infos(*segment)) {
      if (info.alive) continue;
      actions.push_back({"cleanup", 0,
                         "would remove dead " + info.role + " " + std::to_string(info.id) +
                             " (pid " + std::to_string(info.pid) + ")"});
    }
  } else {
    for (const ParticipantInfo& info : cleanup_in(*segment).removed) {
      actions.push_back({"cleanup", 0,
                         "removed dead " + info.role + " " + std::to_string(info.id) + " (pid " +
                             std::to_string(info.pid) + ")"});
    }
  }
  return actions;
}

}  // namespace warden::block
