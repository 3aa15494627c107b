// Helpers for the lease-lock tests: a store of either backend that child processes can open
// too, short lease options, planted rows, and a child process that holds a lease.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "helpers/test_support.h"
#include "warden/lease_lock.h"
#include "warden/posix.h"
#include "warden/sql.h"

namespace warden::lease_testing {

using namespace std::chrono_literals;

// Both backends run every test: "sqlite" (a file in a temp directory) and "postgresql" (a
// fresh database on the server scripts/test started).
class StoreFixture {
 public:
  explicit StoreFixture(const std::string& backend) {
    if (backend == "postgresql") {
      postgres_.emplace();
      spec_ = "postgresql:" + postgres_->conninfo();
    } else {
      spec_ = "sqlite:" + dir_ / "state.sqlite";
    }
  }
  // What `--store` takes; a child process opens its own connection from it.
  const std::string& spec() const { return spec_; }
  std::shared_ptr<sql::Database> open() const { return sql::open_store(spec_, ""); }
  const testing::TempDir& dir() const { return dir_; }

 private:
  testing::TempDir dir_;
  std::optional<testing::PostgresDatabase> postgres_;
  std::string spec_;
};

// A time as the table stores it: milliseconds since the epoch.
inline int64_t lease_ms(WallClock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

inline LockOptions short_lease(std::chrono::milliseconds lease,
                               std::chrono::milliseconds refresh = 50ms) {
  LockOptions options;
  options.lease = lease;
  options.refresh_interval = refresh;
  return options;
}

// Plants a row as some holder would have left it, its lease ending `expires_in` from the
// database's now (negative: expired). Its token comes from the store's sequence, as every
// holder's does; returns it.
inline uint64_t plant_lease(sql::Database& db, const std::string& name, const std::string& hostname,
                            const std::string& boot, pid_t pid, uint64_t pid_start,
                            std::chrono::milliseconds expires_in) {
  db.ensure_schema(kLeaseTableDdl);
  const uint64_t token = db.next_token();
  const std::string now = db.now_ms();
  db.query(
      "INSERT INTO warden_leases (name, writer_id, token, hostname, boot_id, pid, "
      "pid_start, acquired_ms, refreshed_ms, expires_ms) VALUES ($1, $2, CAST($3 AS BIGINT), "
      "$4, $5, CAST($6 AS BIGINT), CAST($7 AS BIGINT), " +
          now + " - 60000, " + now + " - 60000, " + now + " + CAST($8 AS BIGINT))",
      {name, "planted-" + std::to_string(token), std::to_string(token), hostname, boot,
       std::to_string(pid), std::to_string(pid_start), std::to_string(expires_in.count())});
  return token;
}

// A child process that opens the store, acquires `name` (holding it under a LockGuard, which
// refreshes it) and waits to be killed. Returns once it holds it; its token is in
// `<ready_dir>/<name>.token`.
inline testing::Child hold_lease_in_child(const std::string& spec, const std::string& name,
                                          const std::string& ready_dir, LockOptions options) {
  const std::string ready = ready_dir + "/" + name + ".token";
  ::unlink(ready.c_str());
  testing::Child child = testing::Child::fork_function([=] {
    TableLock lock(sql::open_store(spec, ""), name, options);
    LockGuard guard(lock, 10s);
    testing::spit(ready + ".tmp", std::to_string(guard.token().token));
    rename_replace(ready + ".tmp", ready);
    for (;;) ::pause();
    return 0;
  });
  EXPECT_TRUE(testing::wait_until([&] { return stat_path(ready).has_value(); }, 30s));
  return child;
}

inline uint64_t child_lease_token(const std::string& ready_dir, const std::string& name) {
  return std::stoull(testing::slurp(ready_dir + "/" + name + ".token"));
}

inline std::string backend_test_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace warden::lease_testing
