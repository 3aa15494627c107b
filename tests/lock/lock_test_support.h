// Helpers for the lock tests: forged lock records (a dead holder, a reused pid, another
// host), options with short leases, and a process that holds a lock until told to stop.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "helpers/test_support.h"
#include "warden/lock.h"
#include "warden/posix.h"

namespace warden::lock_testing {

using namespace std::chrono_literals;

// Short leases so refresh paths run within a test; the remote grace stays at the default
// unless a test sets it.
inline LockOptions quick_options() {
  LockOptions options;
  options.lease = 5s;
  options.refresh_interval = 100ms;
  return options;
}

// A pid that no process has right now: a child that exited and was reaped.
inline pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

// A record as this host would write it for `pid` (start time read from /proc, or 1 when the
// pid does not exist), with a lease ending `expires_in` from now.
inline LockRecord forged_record(const std::string& name, pid_t pid, uint64_t token,
                                std::chrono::milliseconds expires_in = 5min) {
  LockRecord r;
  r.name = name;
  r.pid = pid;
  r.pid_start = process_start_time(pid).value_or(1);
  r.boot_id = boot_id();
  r.hostname = host_name();
  r.writer_id = "forged-" + std::to_string(token);
  r.token = token;
  r.acquired_at = WallClock::now() - 1min;
  r.refreshed_at = r.acquired_at;
  r.expires_at = WallClock::now() + expires_in;
  return r;
}

// The same record as written by a process on another machine.
inline LockRecord foreign_record(const std::string& name, uint64_t token,
                                 std::chrono::milliseconds expires_in) {
  LockRecord r = forged_record(name, 4242, token, expires_in);
  r.pid_start = 987654;
  r.hostname = "batch-7.remote.example";
  r.boot_id = "00000000-0000-4000-8000-000000000007";
  return r;
}

inline std::string lock_path(const std::string& dir, const std::string& name) {
  return dir + "/" + name + ".lock";
}

// Plants a record at the lock name, as a crashed holder would leave it.
inline void plant(const std::string& dir, const LockRecord& record) {
  make_directories(dir);
  testing::spit(lock_path(dir, record.name), record.to_json());
}

// A child process that acquires `name` and holds it until killed. Returns once it holds it
// (the child writes its token to `<dir>/<name>.held-by-child`).
inline testing::Child hold_in_child(const std::string& dir, const std::string& name,
                                    LockOptions options = quick_options()) {
  const std::string ready = dir + "/" + name + ".held-by-child";
  ::unlink(ready.c_str());
  testing::Child child = testing::Child::fork_function([=] {
    FileLock lock(dir, name, options);
    LockToken token = lock.acquire(10s);
    testing::spit(ready + ".tmp", std::to_string(token.token));
    rename_replace(ready + ".tmp", ready);
    for (;;) ::pause();
    return 0;
  });
  EXPECT_TRUE(testing::wait_until([&] { return stat_path(ready).has_value(); }));
  return child;
}

inline uint64_t child_token(const std::string& dir, const std::string& name) {
  return std::stoull(testing::slurp(dir + "/" + name + ".held-by-child"));
}

}  // namespace warden::lock_testing
