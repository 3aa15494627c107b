// `warden lock status | force-unlock | run`: see, resolve, and run under single-writer locks
// (DESIGN.md "Lock file"; docs/runbooks/lock-recovery.md). status and force-unlock also show
// and handle the lease rows of a shared store (lease_lock.h; docs/adr/0003).
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/lease_lock.h"
#include "warden/lock.h"
#include "warden/posix.h"
#include "warden/process.h"

namespace warden::cli {

namespace {

// A guarded job's exit codes (DESIGN.md "Exit codes", as coreutils timeout).
constexpr int kExitRunnerFailed = 125;
constexpr int kExitCannotRun = 126;
constexpr int kExitNotFound = 127;

std::string resolve_lock_dir(const std::string& given, const RunContext& context) {
  std::string dir = given.empty() ? context.globals.lock_dir() : given;
  std::error_code ignored;
  auto absolute = std::filesystem::absolute(dir, ignored);
  return ignored ? dir : absolute.lexically_normal().string();
}

// The store whose lease rows status and force-unlock look at: --store (or WARDEN_STORE), else
// the pipeline's SQLite file when it exists (a look never creates one). nullptr: no store.
std::unique_ptr<sql::Database> open_lease_store(const std::string& spec,
                                                const RunContext& context) {
  if (!spec.empty()) return sql::open_store(spec, "");
  std::string path = context.globals.data_dir + "/pipeline/state.sqlite";
  if (!stat_path(path)) return nullptr;
  std::error_code ignored;
  auto absolute = std::filesystem::absolute(path, ignored);
  return sql::open_sqlite(ignored ? path : absolute.lexically_normal().string());
}

constexpr const char* kStoreHelp =
    "Also the lease locks of this store: sqlite:PATH or postgresql://... (default: "
    "WARDEN_STORE, else DATA_DIR/pipeline/state.sqlite if it exists)";

std::chrono::milliseconds to_millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000.0)));
}

std::string holder_text(const LockStatus& s) {
  if (!s.record) return "-";
  std::string text = "pid " + std::to_string(s.record->pid) + " on " + s.record->hostname;
  if (s.record->hostname == host_name()) text += s.holder_alive ? " (alive)" : " (gone)";
  return text;
}

std::string lease_text(const LockStatus& s) {
  if (!s.record) return "-";
  if (s.expires_in.count() >= 0) return format_duration(s.expires_in) + " left";
  return "expired " + format_duration(s.expires_in) + " ago";
}

nlohmann::json status_json(const LockStatus& s) {
  nlohmann::json out = {
      {"name", s.name},
      {"backend", s.backend},
      {"path", s.path},
      {"verdict", lock_verdict_name(s.verdict)},
      {"stale", is_stale(s.verdict)},
      {"reason", s.reason},
      {"holder_alive", s.holder_alive},
      {"max_hold_exceeded", s.max_hold_exceeded},
      {"resolve_command",
       s.resolve_command.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.resolve_command)},
      {"record", nullptr},
      {"age_seconds", nullptr},
      {"expires_in_seconds", nullptr},
  };
  if (s.record) {
    out["record"] = nlohmann::json::parse(s.record->to_json());
    out["age_seconds"] = static_cast<double>(s.age.count()) / 1000.0;
    out["expires_in_seconds"] = static_cast<double>(s.expires_in.count()) / 1000.0;
  }
  return out;
}

void print_table(const std::string& dir, const sql::Database* store,
                 const std::vector<LockStatus>& locks) {
  if (locks.empty()) {
    std::cout << "no locks in " << dir;
    if (store) std::cout << " and no leases in " << store->location();
    std::cout << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"LOCK", "STATE", "HOLDER", "TOKEN", "AGE", "LEASE", "BACKEND"}};
  for (const auto& s : locks) {
    rows.push_back({s.name, lock_verdict_name(s.verdict), holder_text(s),
                    s.record ? std::to_string(s.record->token) : "-",
                    s.record ? format_duration(s.age) : "-", lease_text(s), s.backend});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  for (const auto& s : locks) {
    if (s.verdict == LockVerdict::kHeld && !s.max_hold_exceeded) continue;
    std::cout << "\n" << s.name << ": " << lock_verdict_name(s.verdict) << ": " << s.reason << "\n";
    if (s.max_hold_exceeded) {
      std::cout << "  held longer than the 4h maximum: check that its job is still working\n";
    }
    if (s.backend != "file" && is_stale(s.verdict)) {
      std::cout << "  in " << s.path << " (table warden_leases); "
                << (s.verdict == LockVerdict::kStaleExpired
                        ? "the next acquisition takes it over on its own; to remove it now:\n"
                        : "to free it now:\n");
    } else if (is_stale(s.verdict)) {
      std::cout << "  the next acquisition recovers it on its own; to remove it now:\n";
    } else if (s.verdict == LockVerdict::kMalformed) {
      std::cout << "  warden never removes it on its own; inspect " << s.path << ", then:\n";
    } else if (s.verdict == LockVerdict::kRemoteUnverifiable) {
      std::cout << "  wait for its lease to end, or check the remote process, then:\n";
    }
    if (!s.resolve_command.empty()) std::cout << "  " << s.resolve_command << "\n";
  }
}

// ---- status ---------------------------------------------------------------------------

struct StatusArgs {
  std::string lock_dir;
  std::string store;
  std::string dataset;
  bool json = false;
};

void add_status(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = group.add_subcommand("status", "Show every lock: holder, age, lease, verdict");
  cmd->add_option("--lock-dir", args->lock_dir, "Lock directory (default DATA_DIR/locks)");
  cmd->add_option("--store", args->store, kStoreHelp)->envname("WARDEN_STORE");
  cmd->add_option("--dataset", args->dataset,
                  "Only this lock, and its last fencing token even when it is free");
  cmd->add_flag("--json", args->json, "One JSON object for machines");
  cmd->footer(
      "File locks and the store's lease locks (table warden_leases) side by side, each with\n"
      "its BACKEND (file, sqlite, postgresql). Each stale or malformed lock is shown with the\n"
      "exact command that resolves it. A lease's times are the database's clock.\n"
      "With --dataset, also the file lock's last fencing token issued (the next holder gets\n"
      "a higher one).\n"
      "Verdicts: held, stale_dead_pid, stale_pid_reused, stale_expired, remote_unverifiable,\n"
      "malformed.\n"
      "Example:\n  warden lock status\n  warden lock status --dataset crsp\n"
      "  warden lock status --lock-dir /shared/data/locks --json\n"
      "  warden lock status --store postgresql://batch@db.example/warden\n"
      "Exit codes: 0 reported (whatever the verdicts), 1 error.");
  cmd->callback([args, &context] {
    const std::string dir = resolve_lock_dir(args->lock_dir, context);
    if (!args->dataset.empty()) validate_lock_name(args->dataset);
    std::vector<LockStatus> locks = lock_status(dir);
    std::unique_ptr<sql::Database> store = open_lease_store(args->store, context);
    if (store) {
      for (auto& lease : lease_status(*store)) locks.push_back(std::move(lease));
    }
    std::optional<uint64_t> last_token;
    if (!args->dataset.empty()) {
      std::erase_if(locks, [&](const LockStatus& s) { return s.name != args->dataset; });
      last_token = last_fencing_token(dir, args->dataset);
    }
    if (args->json) {
      nlohmann::json out = {{"lock_dir", dir},
                            {"store", store ? nlohmann::json(store->location()) : nullptr},
                            {"locks", nlohmann::json::array()}};
      for (const auto& s : locks) out["locks"].push_back(status_json(s));
      if (last_token) out["last_token"] = *last_token;
      std::cout << out.dump(2) << "\n";
    } else if (last_token) {
      if (locks.empty()) {
        std::cout << "lock " << args->dataset << " is free in " << dir;
        if (store) std::cout << " and in " << store->location();
        std::cout << "\n";
      } else {
        print_table(dir, store.get(), locks);
      }
      std::cout << "last fencing token of " << args->dataset << ": " << *last_token
                << (*last_token == 0 ? " (none issued yet)" : "") << "\n";
    } else {
      print_table(dir, store.get(), locks);
    }
    context.exit_code = kExitOk;
  });
}

// ---- force-unlock ---------------------------------------------------------------------

struct ForceUnlockArgs {
  std::string dataset;
  std::string lock_dir;
  std::string store;
  bool yes = false;
  bool force = false;
};

// Shows one lock (a file or a lease row), then removes it with `remove` unless its holder is
// alive on this host (without --force) or the user does not confirm. Returns the exit code.
int force_unlock_one(const ForceUnlockArgs& args, const LockStatus& status,
                     const std::function<ForceUnlockResult()>& remove) {
  const bool file = status.backend == "file";
  std::cout << (file ? "lock " : "lease ") << args.dataset << " (" << status.path
            << (file ? "" : ", table warden_leases") << "): " << lock_verdict_name(status.verdict)
            << "\n";
  if (status.record) {
    std::cout << "  holder: " << holder_text(status) << ", writer " << status.record->writer_id
              << ", token " << status.record->token << ", since "
              << format_utc(status.record->acquired_at) << ", lease " << lease_text(status) << "\n";
  }
  std::cout << "  " << status.reason << "\n";
  const bool live_here = status.verdict == LockVerdict::kHeld && status.holder_alive;
  if (live_here && !args.force) {
    std::cout << "refusing: its holder is alive on this host. Stop it (its "
              << (file ? "lock is released or recovered on its own"
                       : "lease is released when it exits, or ends on its own")
              << "), or add --force.\n";
    return kExitLockHeld;
  }
  if (!args.yes &&
      !confirm(std::string("Remove ") + (file ? "lock " : "lease ") + args.dataset + "?")) {
    std::cout << "not removed: " + std::string(stdin_is_terminal()
                                                   ? "not confirmed"
                                                   : "stdin is not a terminal; add --yes")
              << "\n";
    return kExitError;
  }
  ForceUnlockResult result = remove();
  std::cout << result.message << "\n";
  if (result.removed) return kExitOk;
  return result.before.verdict == LockVerdict::kHeld && result.before.holder_alive ? kExitLockHeld
                                                                                   : kExitError;
}

void add_force_unlock(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<ForceUnlockArgs>();
  CLI::App* cmd = group.add_subcommand(
      "force-unlock", "Remove a lock after showing its holder (stale, remote or malformed)");
  cmd->add_option("--dataset,--name", args->dataset,
                  "The lock's name (the dataset it guards, or a lease's name)")
      ->required();
  cmd->add_option("--lock-dir", args->lock_dir, "Lock directory (default DATA_DIR/locks)");
  cmd->add_option("--store", args->store, kStoreHelp)->envname("WARDEN_STORE");
  cmd->add_flag("--yes", args->yes, "Do not ask (required when stdin is not a terminal)");
  cmd->add_flag("--force", args->force,
                "Also remove a lock whose holder is alive on this host (it loses the lock at "
                "its next refresh; prefer stopping it)");
  cmd->footer(
      "Removes the file lock of that name, and the store's lease row of that name (table\n"
      "warden_leases), whichever exist. The fencing token keeps growing: the next holder's\n"
      "token is above the removed one's.\n"
      "Example:\n  warden lock force-unlock --dataset crsp --yes\n"
      "  warden lock force-unlock --name pipeline.batch.2026-01-15 --store sqlite:data/pipeline/"
      "state.sqlite --yes\n"
      "Exit codes: 0 removed (or nothing to remove), 1 not confirmed or failed, 2 refused: the\n"
      "holder is alive on this host (stop it, or add --force).");
  cmd->callback([args, &context] {
    const std::string dir = resolve_lock_dir(args->lock_dir, context);
    std::unique_ptr<sql::Database> store = open_lease_store(args->store, context);
    LockStatus file = inspect_file_lock(dir, args->dataset);
    std::optional<LockStatus> lease;
    if (store) {
      lease = inspect_lease(*store, args->dataset);
      if (lease->verdict == LockVerdict::kFree) lease.reset();
    }
    if (file.verdict == LockVerdict::kFree && !lease) {
      std::cout << "no lock " << args->dataset << " in " << dir;
      if (store) std::cout << " and no lease in " << store->location();
      std::cout << ": nothing to remove\n";
      context.exit_code = kExitOk;
      return;
    }
    int code = kExitOk;
    if (file.verdict != LockVerdict::kFree) {
      code = force_unlock_one(*args, file, [&] {
        ForceUnlockResult result = force_unlock(dir, args->dataset, args->force);
        const uint64_t issued = last_fencing_token(dir, args->dataset);
        if (result.removed && issued > 0) {
          result.message += "\nfencing token so far: " + std::to_string(issued) +
                            " (the next holder gets a higher one)";
        }
        return result;
      });
    }
    if (lease) {
      int lease_code = force_unlock_one(
          *args, *lease, [&] { return force_unlock_lease(*store, args->dataset, args->force); });
      if (code == kExitOk) code = lease_code;
    }
    context.exit_code = code;
  });
}

// ---- run ------------------------------------------------------------------------------

struct RunArgs {
  std::string dataset;
  std::string lock_dir;
  double wait_seconds = 0;
  double lease_seconds = 300;
  std::vector<std::string> command;
};

void say(const std::string& line) {
  std::fprintf(stderr, "warden lock run: %s\n", line.c_str());
  std::fflush(stderr);
}

// Runs the command under the lock; returns the exit code.
int run_locked(const RunArgs& args, const std::string& dir) {
  LockOptions options;
  options.lease = to_millis(args.lease_seconds);
  options.refresh_interval =
      std::min<std::chrono::milliseconds>(std::chrono::seconds(60), options.lease / 5);
  FileLock lock(dir, args.dataset, options);

  std::mutex lost_mutex;
  std::string lost_reason;
  std::atomic<bool> lost{false};
  std::optional<LockGuard> guard;
  try {
    guard.emplace(lock, to_millis(args.wait_seconds),
                  [&](const LockToken&, const std::string& reason) {
                    std::lock_guard<std::mutex> held(lost_mutex);
                    lost_reason = reason;
                    lost.store(true);
                  });
  } catch (const LockAcquisitionError& e) {
    say(e.what());
    return kExitLockHeld;
  }

  ChildOptions child_options;
  child_options.argv = args.command;
  child_options.env = {{"WARDEN_LOCK_NAME", args.dataset},
                       {"WARDEN_LOCK_PATH", lock.path()},
                       {"WARDEN_LOCK_TOKEN", std::to_string(guard->token().token)}};
  // The child does not inherit the lock's fd: each refresh publishes a new file, so an
  // inherited fd would stop meaning anything after the first refresh. Instead the child dies
  // with us (die_with_parent): if warden is killed, even by SIGKILL, its watchdog kills the
  // child's group, so the command never goes on writing without the lock.
  child_options.die_with_parent = true;
  std::optional<ChildProcess> child;
  try {
    child.emplace(ChildProcess::start(child_options));
  } catch (const IoError& e) {
    say(e.what());
    guard->release();
    return e.errno_value() == ENOENT ? kExitNotFound : kExitCannotRun;
  }
  ExitStatus status;
  {
    SignalForwarder forward(*child);
    for (;;) {
      if (auto done = child->wait_for(std::chrono::milliseconds(100))) {
        status = *done;
        break;
      }
      if (lost.load()) {
        {
          std::lock_guard<std::mutex> held(lost_mutex);
          say("lost lock " + args.dataset + ": " + lost_reason +
              "; stopping the command so it does not write without the lock");
        }
        child->terminate_group(std::chrono::seconds(10));
        return kExitRunnerFailed;
      }
    }
  }
  if (lost.load()) {
    say("the command ended, but lock " + args.dataset + " was lost while it ran: " + lost_reason);
    return kExitRunnerFailed;
  }
  guard->release();
  return status.shell_code();
}

void add_run(CLI::App& group, RunContext& context) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = group.add_subcommand(
      "run", "Run a command while holding a lock (like flock(1), with lease and recovery)");
  cmd->add_option("--dataset", args->dataset, "The lock's name (the dataset it guards)")
      ->required();
  cmd->add_option("--wait", args->wait_seconds,
                  "Seconds to wait for a held lock before giving up with exit 2 (default 0: "
                  "try once)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--lease", args->lease_seconds,
                  "Lease in seconds (default 300), refreshed every lease/5 (at most 60 s); "
                  "another host may take the lock once it ends plus the remote grace")
      ->check(CLI::Range(1.0, 86400.0));
  cmd->add_option("--lock-dir", args->lock_dir, "Lock directory (default DATA_DIR/locks)");
  cmd->add_option("command", args->command, "The command: -- CMD ARGS...")->required();
  cmd->footer(
      "The command sees WARDEN_LOCK_NAME, WARDEN_LOCK_PATH and WARDEN_LOCK_TOKEN (the fencing\n"
      "token). SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 are passed to it. If warden is\n"
      "killed, the command is killed too; if the lock is lost, the command is stopped.\n"
      "Example:\n  warden lock run --dataset crsp --wait 30 -- python3 sync_crsp.py\n"
      "Exit codes: the command's own, 128+N if it died of signal N, 2 the lock is held and\n"
      "the wait ran out, 125 warden failed (or lost the lock), 126 cannot run, 127 not found.");
  cmd->callback([args, &context] {
    const std::string dir = resolve_lock_dir(args->lock_dir, context);
    try {
      context.exit_code = run_locked(*args, dir);
    } catch (const InvalidArgumentError&) {
      throw;  // a usage error: 64
    } catch (const std::exception& e) {
      say(e.what());
      context.exit_code = kExitRunnerFailed;
    }
  });
}

}  // namespace

void add_lock_commands(CLI::App& group, RunContext& context) {
  add_status(group, context);
  add_force_unlock(group, context);
  add_run(group, context);
}

}  // namespace warden::cli
