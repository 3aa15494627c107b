// `warden block`: create, list, diagnose, recover, cleanup, validate, remove, and write/read
// for checking a block by hand (seed 003's datablock-admin).
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli.h"
#include "warden/block.h"
#include "warden/error.h"
#include "warden/posix.h"

namespace warden::cli {
namespace {

namespace block = warden::block;

std::string yes_no(bool value) { return value ? "Yes" : "No"; }

void print_slot(const block::SlotDiagnosis& s) {
  std::string lock = "0";
  if (s.write_lock) {
    lock = fmt::format("{} ({}, held {:.1f}s)", s.write_lock->pid,
                       s.write_lock->alive        ? "alive"
                       : s.write_lock->pid_reused ? "gone, pid reused"
                                                  : "dead",
                       s.write_lock->held_seconds);
  }
  std::string readers;
  for (const auto& r : s.readers) {
    readers +=
        fmt::format("{}consumer {} (pid {}, {})", readers.empty() ? "" : ", ", r.consumer_id, r.pid,
                    r.pid == 0 ? "departed"
                    : r.alive  ? "alive"
                               : "dead");
  }
  std::printf("Slot %u:\n", s.index);
  std::printf("  state:          %s\n", s.state.c_str());
  std::printf("  write_lock:     %s\n", lock.c_str());
  std::printf("  reader_count:   %u%s\n", s.reader_count,
              readers.empty() ? "" : (" [" + readers + "]").c_str());
  std::printf("  writer_waiting: %d\n", s.writer_waiting ? 1 : 0);
  std::printf("  sequence:       %llu\n", static_cast<unsigned long long>(s.sequence));
  std::printf("  payload_length: %llu\n", static_cast<unsigned long long>(s.payload_length));
  std::printf("  age:            %.1fs\n", s.age_seconds);
  std::printf("  is_stuck:       %s%s\n", yes_no(s.is_stuck).c_str(),
              s.is_stuck ? (" (" + s.stuck_reason + ")").c_str() : "");
}

void print_diagnosis(const block::BlockDiagnosis& d) {
  std::printf("DataBlock %s (layout %u): %u slots x %llu bytes, created %s\n", d.name.c_str(),
              d.layout_version, d.slot_count, static_cast<unsigned long long>(d.slot_size),
              d.created_at.c_str());
  std::printf("active_consumer_count: %u (live consumers: %u)\n", d.active_consumer_count,
              d.live_consumer_count);
  std::printf("latest_sequence: %llu\n", static_cast<unsigned long long>(d.latest_sequence));
  for (const auto& p : d.participants) {
    std::printf("participant %u: %s pid %d %s, heartbeat %.1fs ago%s\n", p.id, p.role.c_str(),
                p.pid, p.alive ? "alive" : "DEAD", p.heartbeat_age_seconds,
                p.heartbeat_stale ? " (stale)" : "");
  }
  for (const auto& s : d.slots) print_slot(s);
}

void add_create(CLI::App& group, RunContext&) {
  auto* cmd = group.add_subcommand("create", "Create a DataBlock (POSIX shared memory, mode 0600)");
  auto name = std::make_shared<std::string>();
  auto options = std::make_shared<block::BlockOptions>();
  cmd->add_option("NAME", *name, "Block name (letters, digits, . _ -)")->required();
  cmd->add_option("--slots", options->slot_count, "Number of slots")->required();
  cmd->add_option("--slot-size", options->slot_size, "Payload bytes per slot")->required();
  cmd->footer("Example: warden block create my_datablock --slots 8 --slot-size 4096");
  cmd->callback([name, options] {
    block::create_block(*name, *options);
    std::printf("created block %s: %u slots x %llu bytes (/dev/shm%s)\n", name->c_str(),
                options->slot_count, static_cast<unsigned long long>(options->slot_size),
                block::segment_name(*name).c_str());
  });
}

void add_list(CLI::App& group, RunContext& context) {
  auto* cmd = group.add_subcommand("list", "List blocks, their users, and leaked ones");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "JSON output");
  cmd->footer("Example: warden block list");
  cmd->callback([json, &context] {
    auto listings = block::list_blocks();
    if (*json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& l : listings) {
        out.push_back({{"name", l.name},
                       {"slot_count", l.slot_count},
                       {"slot_size", l.slot_size},
                       {"bytes", l.bytes},
                       {"created_at", l.created_at},
                       {"users", l.users},
                       {"dead_users", l.dead_users},
                       {"leaked", l.leaked},
                       {"problem", l.problem}});
      }
      std::printf("%s\n", out.dump(2).c_str());
      return;
    }
    if (listings.empty()) std::printf("no blocks\n");
    for (const auto& l : listings) {
      std::string status = l.leaked ? "LEAKED (every user is dead)"
                           : l.users.empty()
                               ? "unused"
                               : fmt::format("in use by {} process(es)", l.users.size());
      std::string dead;
      for (pid_t pid : l.dead_users) dead += (dead.empty() ? "" : ",") + std::to_string(pid);
      std::printf("%s  %u slots x %llu bytes  %s%s%s\n", l.name.c_str(), l.slot_count,
                  static_cast<unsigned long long>(l.slot_size), status.c_str(),
                  dead.empty() ? "" : ("  dead users: " + dead).c_str(),
                  l.problem.empty() ? "" : ("  PROBLEM: " + l.problem).c_str());
      if (l.leaked) {
        std::printf(
            "  recover: warden block recover %s --auto   or remove: warden block remove %s\n",
            l.name.c_str(), l.name.c_str());
      }
    }
    (void)context;
  });
}

void add_diagnose(CLI::App& group, RunContext&) {
  auto* cmd = group.add_subcommand("diagnose", "Show every slot's state, locks, readers, is_stuck");
  auto name = std::make_shared<std::string>();
  auto slot = std::make_shared<std::optional<uint32_t>>();
  auto json = std::make_shared<bool>(false);
  auto stuck_after = std::make_shared<std::string>("60s");
  cmd->add_option("NAME", *name, "Block name")->required();
  cmd->add_option("--slot", *slot, "Only this slot");
  cmd->add_flag("--json", *json, "JSON output");
  cmd->add_option("--stuck-after", *stuck_after,
                  "A live writer or waiting writer counts as stuck after this long");
  cmd->footer("Example: warden block diagnose my_datablock --slot 0");
  cmd->callback([name, slot, json, stuck_after] {
    auto seconds = std::chrono::seconds(static_cast<long>(parse_duration_seconds(*stuck_after)));
    auto d = block::diagnose(*name, *slot, seconds);
    if (*json) {
      std::printf("%s\n", d.to_json().dump(2).c_str());
    } else {
      print_diagnosis(d);
    }
  });
}

void add_recover(CLI::App& group, RunContext& context) {
  auto* cmd = group.add_subcommand("recover", "Release a stuck slot, or everything safe (--auto)");
  auto name = std::make_shared<std::string>();
  auto slot = std::make_shared<std::optional<uint32_t>>();
  auto action = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto automatic = std::make_shared<bool>(false);
  auto dry_run = std::make_shared<bool>(false);
  cmd->add_option("NAME", *name, "Block name")->required();
  cmd->add_option("--slot", *slot, "Slot to recover");
  cmd->add_option("--action", *action, "release_writer or release_readers")
      ->check(CLI::IsMember({"release_writer", "release_readers"}));
  cmd->add_flag("--force", *force, "release_readers: also break live readers' holds");
  cmd->add_flag("--auto", *automatic, "Do everything safe without --force, one audit line each");
  cmd->add_flag("--dry-run", *dry_run, "With --auto: only say what would be done");
  cmd->footer(
      "Examples:\n"
      "  warden block recover my_datablock --slot 0 --action release_writer\n"
      "  warden block recover my_datablock --slot 0 --action release_readers --force\n"
      "  warden block recover my_datablock --auto --dry-run");
  cmd->callback([=, &context] {
    if (*automatic) {
      if (*slot || !action->empty() || *force) {
        throw InvalidArgumentError("recover --auto: takes no --slot, --action or --force");
      }
      auto actions = block::recover_auto(*name, *dry_run);
      for (const auto& a : actions) {
        // cleanup is about the consumer table, not a slot.
        std::string where = a.action == "cleanup" ? "" : " slot " + std::to_string(a.slot);
        std::printf("%s: %s %s%s: %s\n", *dry_run ? "dry-run" : "recovered", name->c_str(),
                    a.action.c_str(), where.c_str(), a.detail.c_str());
      }
      if (actions.empty()) std::printf("%s: nothing to recover\n", name->c_str());
      return;
    }
    if (!*slot || action->empty()) {
      throw InvalidArgumentError("recover " + *name +
                                 ": give --slot N --action release_writer|release_readers, "
                                 "or --auto");
    }
    if (*dry_run) throw InvalidArgumentError("recover: --dry-run goes with --auto");
    if (*action == "release_writer") {
      if (*force) throw InvalidArgumentError("recover: --force applies to release_readers only");
      auto done = block::release_writer(*name, **slot);
      if (done) {
        std::printf("slot %u: %s\n", **slot, done->detail.c_str());
      } else {
        std::printf("slot %u: not write-locked; nothing to release\n", **slot);
      }
      return;
    }
    auto result = block::release_readers(*name, **slot, *force);
    for (const auto& r : result.released) {
      std::printf("slot %u: released read hold of %s consumer %u (pid %d)\n", **slot,
                  r.pid == 0 ? "departed"
                  : r.alive  ? "live"
                             : "dead",
                  r.consumer_id, r.pid);
    }
    for (const auto& r : result.kept) {
      std::printf("slot %u: kept read hold of live consumer %u (pid %d)\n", **slot, r.consumer_id,
                  r.pid);
    }
    if (result.released.empty() && result.kept.empty()) {
      std::printf("slot %u: no read holds\n", **slot);
    }
    if (!result.kept.empty()) {
      std::fprintf(stderr,
                   "warden: %zu live reader(s) still hold slot %u of %s; if they are hung, run "
                   "'warden block recover %s --slot %u --action release_readers --force'\n",
                   result.kept.size(), **slot, name->c_str(), name->c_str(), **slot);
      context.exit_code = kExitLockHeld;
    }
  });
}

void add_cleanup(CLI::App& group, RunContext&) {
  auto* cmd = group.add_subcommand("cleanup", "Remove dead consumers (and producers) by heartbeat");
  auto name = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Block name")->required();
  cmd->footer("Example: warden block cleanup my_datablock");
  cmd->callback([name] {
    auto result = block::cleanup_dead_consumers(*name);
    for (const auto& p : result.removed) {
      std::printf("removed dead %s %u (pid %d, last heartbeat %.1fs ago)\n", p.role.c_str(), p.id,
                  p.pid, p.heartbeat_age_seconds);
    }
    for (const auto& p : result.unresponsive) {
      std::printf("kept %s %u (pid %d): alive, but no heartbeat for %.1fs\n", p.role.c_str(), p.id,
                  p.pid, p.heartbeat_age_seconds);
    }
    std::printf("removed %zu; active_consumer_count: %u\n", result.removed.size(),
                result.active_consumer_count);
  });
}

void add_validate(CLI::App& group, RunContext& context) {
  auto* cmd = group.add_subcommand("validate", "Check header, slots and payload checksums");
  auto name = std::make_shared<std::string>();
  auto repair = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("NAME", *name, "Block name")->required();
  cmd->add_flag("--repair", *repair,
                "Recompute checksums (accepting payloads as they are) and reset impossible "
                "slot states, only where no writer is active");
  cmd->add_flag("--json", *json, "JSON output");
  cmd->footer(
      "Exit 3 when problems remain.\n"
      "Examples:\n  warden block validate my_datablock\n"
      "  warden block validate my_datablock --repair");
  cmd->callback([name, repair, json, &context] {
    auto report = block::validate(*name, *repair);
    if (*json) {
      std::printf("%s\n", report.to_json().dump(2).c_str());
    } else {
      for (const auto& f : report.findings) {
        std::printf("%s: %s: %s -> %s\n", f.repaired ? "REPAIRED" : "PROBLEM", f.where.c_str(),
                    f.problem.c_str(), f.action.c_str());
      }
      if (report.findings.empty())
        std::printf("%s: valid\n", name->c_str());
      else
        std::printf("%s: %zu finding(s), %zu unresolved\n", name->c_str(), report.findings.size(),
                    report.unresolved());
    }
    if (report.unresolved() > 0) context.exit_code = kExitVerifyFailed;
  });
}

void add_remove(CLI::App& group, RunContext&) {
  auto* cmd = group.add_subcommand("remove", "Remove a block's name (mappings stay valid)");
  auto name = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Block name")->required();
  cmd->footer("Example: warden block remove my_datablock");
  cmd->callback([name] {
    if (!block::remove_block(*name)) {
      throw IoError("remove block " + *name + ": no such block; 'warden block list' shows them", 0,
                    ErrorCode::kNotFound);
    }
    std::printf("removed block %s\n", name->c_str());
  });
}

void add_write(CLI::App& group, RunContext&) {
  auto* cmd = group.add_subcommand("write", "Write one payload as a producer (to check a block)");
  auto name = std::make_shared<std::string>();
  auto data = std::make_shared<std::string>();
  auto slot = std::make_shared<std::optional<uint32_t>>();
  auto timeout = std::make_shared<std::string>("5s");
  cmd->add_option("NAME", *name, "Block name")->required();
  cmd->add_option("--data", *data, "Payload text")->required();
  cmd->add_option("--slot", *slot, "Slot to write (default: the next free one)");
  cmd->add_option("--timeout", *timeout, "How long to wait for the write lock");
  cmd->footer("Example: warden block write my_datablock --data hello --slot 0");
  cmd->callback([name, data, slot, timeout] {
    auto wait =
        std::chrono::milliseconds(static_cast<long>(parse_duration_seconds(*timeout) * 1000));
    auto producer = block::Producer::open(*name);
    auto target = producer.acquire(wait, *slot);
    uint32_t index = target.index();
    if (data->size() > target.buffer().size()) {
      throw InvalidArgumentError("write " + *name + ": payload larger than the slot size");
    }
    std::memcpy(target.buffer().data(), data->data(), data->size());
    uint64_t sequence = target.commit(data->size());
    std::printf("wrote slot %u sequence %llu (%zu bytes)\n", index,
                static_cast<unsigned long long>(sequence), data->size());
  });
}

void add_read(CLI::App& group, RunContext& context) {
  auto* cmd = group.add_subcommand("read", "Read the newest (or one) slot as a consumer");
  auto name = std::make_shared<std::string>();
  auto slot = std::make_shared<std::optional<uint32_t>>();
  auto timeout = std::make_shared<std::string>("5s");
  cmd->add_option("NAME", *name, "Block name")->required();
  cmd->add_option("--slot", *slot, "Slot to read (default: the newest)");
  cmd->add_option("--timeout", *timeout, "How long to wait for a committed payload");
  cmd->footer(
      "Exit 3 when the payload fails its checksum.\nExample: warden block read my_datablock");
  cmd->callback([name, slot, timeout, &context] {
    auto wait =
        std::chrono::milliseconds(static_cast<long>(parse_duration_seconds(*timeout) * 1000));
    auto consumer = block::Consumer::open(*name, {std::chrono::milliseconds(0)});
    auto held = *slot ? consumer.read_slot(**slot, wait) : consumer.read_newest(wait);
    if (!held) {
      throw Error(ErrorCode::kTimeout, "read " + *name + ": nothing committed within " + *timeout);
    }
    bool ok = held->verify();
    std::fwrite(held->data().data(), 1, held->data().size(), stdout);
    std::printf("\n");
    std::fprintf(stderr, "slot %u sequence %llu: checksum %s\n", held->index(),
                 static_cast<unsigned long long>(held->sequence()), ok ? "ok" : "MISMATCH");
    if (!ok) context.exit_code = kExitVerifyFailed;
  });
}

}  // namespace

void add_block_commands(CLI::App& group, RunContext& context) {
  group.footer(
      "Examples:\n"
      "  warden block create my_datablock --slots 8 --slot-size 4096\n"
      "  warden block diagnose my_datablock --slot 0\n"
      "  warden block recover my_datablock --auto --dry-run");
  add_create(group, context);
  add_list(group, context);
  add_diagnose(group, context);
  add_recover(group, context);
  add_cleanup(group, context);
  add_validate(group, context);
  add_remove(group, context);
  add_write(group, context);
  add_read(group, context);
}

}  // namespace warden::cli
