// validate(): every header, slot and checksum inconsistency, and the repairs that are safe.
#include <fmt/format.h>

#include <bit>

#include "layout.h"
#include "warden/checksum.h"
#include "warden/events.h"

namespace warden::block {

size_t ValidationReport::unresolved() const {
  size_t count = 0;
  for (const auto& f : findings) count += f.repaired ? 0 : 1;
  return count;
}

nlohmann::json ValidationReport::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : findings) {
    list.push_back({{"where", f.where},
                    {"problem", f.problem},
                    {"repairable", f.repairable},
                    {"repaired", f.repaired},
                    {"action", f.action}});
  }
  return {{"findings", list}, {"unresolved", unresolved()}};
}

namespace {

// Why a problem in a slot whose live writer waits for its readers (DRAINING) is not repaired.
constexpr const char* kLeftToTheLiveWriter =
    "not repaired: a live writer holds the slot and overwrites it once its readers release it; "
    "rerun validate after that";

struct Validator {
  Segment& segment;
  bool repair;
  ValidationReport report;

  std::string slot_where(uint32_t i) const { return "slot " + std::to_string(i); }
  std::string recover_command(uint32_t i, const char* action) const {
    return "run 'warden block recover " + segment.block_name() + " --slot " + std::to_string(i) +
           " --action " + action + "'";
  }

  void add(std::string where, std::string problem, bool repairable, bool repaired,
           std::string action) {
    if (repaired) {
      emit_event(EventLevel::kWarning, "block.validate.repaired",
                 segment.block_name() + " " + where + ": " + problem + "; " + action,
                 {{"block", segment.block_name()}, {"where", where}});
    } else {
      emit_event(EventLevel::kWarning, "block.validate.problem",
                 segment.block_name() + " " + where + ": " + problem,
                 {{"block", segment.block_name()}, {"where", where}});
    }
    report.findings.push_back(
        {std::move(where), std::move(problem), repairable, repaired, std::move(action)});
  }

  // Runs `change` with the slot's write lock held by this process, so no writer is active
  // while the slot is repaired. Returns "" on success, or why the repair was not done.
  template <typename Change>
  std::string with_slot_locked(uint32_t i, Change change) {
    SlotControl& s = segment.slot(i);
    uint64_t owner = s.write_lock.load();
    if (owner != 0) {
      OwnerStatus status = owner_status(owner);
      if (status.alive) {
        return "not repaired: writer pid " + std::to_string(owner_pid(owner)) +
               " is active; rerun when it has finished";
      }
      return "not repaired: the write lock of dead pid " + std::to_string(owner_pid(owner)) +
             " is held; " + recover_command(i, "release_writer") + " first";
    }
    if (!segment.try_lock_slot(i)) return "not repaired: a writer took the slot; rerun";
    change(s);
    segment.unlock_slot(i);
    segment.wake_commit_waiters();  // a COMMITTED slot is readable again
    return "";
  }

  void reset_to_free(uint32_t i, const std::string& problem) {
    if (!repair) {
      add(slot_where(i), problem, true, false, "'validate --repair' resets the slot to FREE");
      return;
    }
    std::string refused = with_slot_locked(i, [](SlotControl& s) {
      s.payload_length.store(0);
      s.payload_checksum.store(0);
      s.state.store(static_cast<uint32_t>(SlotState::kFree));
      s.updated_ns.store(now_ns());
    });
    if (refused.empty()) {
      add(slot_where(i), problem, true, true, "reset to FREE (its payload is discarded)");
    } else {
      add(slot_where(i), problem, true, false, refused);
    }
  }

  void check_checksum(uint32_t i) {
    SlotControl& s = segment.slot(i);
    // Compare only a stable snapshot, the same before and after hashing: COMMITTED, the same
    // sequence, and either no writer or a writer still waiting for readers to drain
    // (DRAINING): it cannot touch the payload while a read hold remains.
    auto stable = [&] {
      return s.state.load() == static_cast<uint32_t>(SlotState::kCommitted) &&
             (s.write_lock.load() == 0 || s.reader_mask.load() != 0);
    };
    uint64_t sequence = s.sequence.load();
    if (!stable()) return;
    const bool writer_waiting = s.write_lock.load() != 0;
    uint64_t length = s.payload_length.load();
    uint64_t recorded = s.payload_checksum.load();
    uint64_t computed = xxh3_64(segment.payload(i), length);
    if (!stable() || s.sequence.load() != sequence) return;
    if (computed == recorded) return;
    std::string problem = fmt::format(
        "payload checksum mismatch (sequence {}, {} bytes: recorded {:016x}, computed {:016x})",
        sequence, length, recorded, computed);
    if (writer_waiting) {
      // Its readers are reading a payload that fails its checksum; the slot is the live
      // writer's to overwrite, so repair leaves it alone.
      add(slot_where(i), problem, false, false, kLeftToTheLiveWriter);
      return;
    }
    if (!repair) {
      add(slot_where(i), problem, true, false,
          "'validate --repair' recomputes the checksum (accepting the payload as it is now)");
      return;
    }
    uint64_t stored = 0;
    std::string refused = with_slot_locked(i, [&](SlotControl& slot) {
      stored = xxh3_64(segment.payload(i), slot.payload_length.load());
      slot.payload_checksum.store(stored);
      slot.updated_ns.store(now_ns());
    });
    if (refused.empty()) {
      add(slot_where(i), problem, true, true,
          fmt::format("checksum recomputed: {:016x} -> {:016x}", recorded, stored));
    } else {
      add(slot_where(i), problem, true, false, refused);
    }
  }

  void check_slot(uint32_t i) {
    SlotControl& s = segment.slot(i);
    uint32_t state = s.state.load();
    uint64_t owner = s.write_lock.load();
    if (state > static_cast<uint32_t>(SlotState::kCommitted)) {
      reset_to_free(i, "state " + std::to_string(state) + " is not a valid slot state");
      return;
    }
    if (owner != 0 && !owner_status(owner).alive) {
      add(slot_where(i),
          "write lock held by dead pid " + std::to_string(owner_pid(owner)) + " (a stuck writer)",
          false, false, recover_command(i, "release_writer"));
      return;
    }
    if (state == static_cast<uint32_t>(SlotState::kWriting) && owner == 0) {
      reset_to_free(i, "state WRITING without a write lock");
      return;
    }
    for (const ReaderHoldInfo& hold : reader_holds(segment, s.reader_mask.load())) {
      if (hold.pid != 0) {
        if (!hold.alive) {
          add(slot_where(i),
              "read hold of dead consumer " + std::to_string(hold.consumer_id) + " (pid " +
                  std::to_string(hold.pid) + ")",
              false, false, recover_command(i, "release_readers"));
        }
        continue;
      }
      std::string problem = "orphan read hold of participant entry " +
                            std::to_string(hold.consumer_id) + " (no consumer is registered there)";
      if (repair) {
        segment.drop_hold(i, hold.consumer_id);
        add(slot_where(i), problem, true, true, "hold released");
      } else {
        add(slot_where(i), problem, true, false, "'validate --repair' releases it");
      }
    }
    // A COMMITTED slot with a live writer's lock is DRAINING: its payload is still the
    // committed one, and check_checksum verifies it while the readers hold it.
    if (state != static_cast<uint32_t>(SlotState::kCommitted)) return;
    uint64_t length = s.payload_length.load();
    if (length > segment.slot_size()) {
      std::string problem = "payload length " + std::to_string(length) + " exceeds the slot size " +
                            std::to_string(segment.slot_size());
      if (owner != 0) {  // alive (a dead owner returned above): the slot is its writer's
        add(slot_where(i), problem, false, false, kLeftToTheLiveWriter);
      } else {
        reset_to_free(i, problem);
      }
      return;
    }
    check_checksum(i);
  }

  void check_participants() {
    uint32_t consumers = 0;
    for (const ParticipantInfo& info : participant_infos(segment)) {
      if (info.role == "consumer") consumers++;
      if (info.role == "registering") {
        // A live one is registering right now; only a dead one is a problem.
        if (!info.alive) {
          add("participant " + std::to_string(info.id),
              "entry of dead pid " + std::to_string(info.pid) + " was never fully registered",
              false, false, "run 'warden block cleanup " + segment.block_name() + "'");
        }
      } else if (!info.alive) {
        add("participant " + std::to_string(info.id),
            "dead " + info.role + " (pid " + std::to_string(info.pid) + ") still registered", false,
            false, "run 'warden block cleanup " + segment.block_name() + "'");
      }
    }
    auto& count = segment.header().active_consumer_count;
    uint32_t recorded = count.load();
    if (recorded == consumers) return;
    std::string problem = "active_consumer_count is " + std::to_string(recorded) + " but " +
                          std::to_string(consumers) + " consumers are registered";
    if (repair && count.compare_exchange_strong(recorded, consumers)) {
      add("header", problem, true, true, "set to " + std::to_string(consumers));
    } else {
      add("header", problem, true, false, "'validate --repair' corrects it");
    }
  }
};

}  // namespace

ValidationReport validate(const std::string& name, bool repair) {
  auto segment = Segment::open_unchecked(name);
  Validator validator{*segment, repair, {}};
  std::string header_problem = segment->header_problem();
  if (!header_problem.empty()) {
    // Nothing past a bad header can be trusted (slot count, offsets), so stop here.
    validator.add("header", header_problem, false, false,
                  "not repairable: save what you need, then 'warden block remove " + name +
                      "' and create it again");
    return std::move(validator.report);
  }
  for (uint32_t i = 0; i < segment->slot_count(); ++i) validator.check_slot(i);
  validator.check_participants();
  return std::move(validator.report);
}

}  // namespace warden::block
