// Private to src/lock/lease_*.cc: reading a warden_leases row and judging it. The contract is
// include/warden/lease_lock.h.
#pragma once

#include <cstdint>
#include <string>

#include "warden/lease_lock.h"
#include "warden/sql.h"

namespace warden::lease_internal {

// The row's columns in the order parse_row() expects; every SELECT / RETURNING that reads a
// whole row appends the database's now as one more column.
extern const char* const kColumns;

// One row of warden_leases as read, with the database's clock at the moment it was read.
struct LeaseRow {
  LockRecord record;
  int64_t expires_ms = 0;
  int64_t now_ms = 0;  // the database's clock in the same statement
  bool expired() const { return expires_ms <= now_ms; }
};

// Parses kColumns followed by now. Throws SqlError (kIo) naming the store when a value is
// not what the table's DDL allows (a hand-edited row).
LeaseRow parse_row(const sql::Row& row, const sql::Database& db);
// "SELECT <kColumns>, <now> FROM warden_leases WHERE name = $1": nullopt when there is none.
std::optional<LeaseRow> read_row(sql::Database& db, const std::string& name);

WallClock::time_point from_ms(int64_t ms);
int64_t to_ms(WallClock::time_point time);
// "sqlite" or "postgresql" (LockStatus::backend).
const char* backend_name(const sql::Database& db);
// Single-quoted for a POSIX shell when it holds anything but [A-Za-z0-9_/.:=@%+,-].
std::string shell_quote(const std::string& text);

// "pid P on host H (writer W, token N, since T, lease until T: ends in X / ended X ago)".
std::string describe_holder(const LeaseRow& row);
// Judges a row and fills its LockStatus (lease_lock.h's lease_status() says how).
LockStatus describe_row(const sql::Database& db, const LeaseRow& row, const LockOptions& options);

}  // namespace warden::lease_internal
