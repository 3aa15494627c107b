// Shared by the PostgreSQL test programs: a password-protected role and a scoped environment
// variable.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "helpers/test_support.h"
#include "warden/posix.h"

namespace warden::testing {

// A role that must give its password (scripts/test's pg_hba trusts only postgres).
class PasswordRole {
 public:
  explicit PasswordRole(const PostgresDatabase& db) : db_(db) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random_u64()));
    name_ = std::string("warden_pw_") + suffix;
    db_.exec("CREATE ROLE " + name_ + " LOGIN PASSWORD 's3cret-Pa55'");
  }
  // DROP OWNED also revokes what was granted to the role in this database.
  ~PasswordRole() { db_.exec("DROP OWNED BY " + name_ + "; DROP ROLE IF EXISTS " + name_); }
  const std::string& name() const { return name_; }
  std::string conninfo() const { return db_.conninfo() + " user=" + name_; }

 private:
  const PostgresDatabase& db_;
  std::string name_;
};

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    if (old) old_ = old;
    had_ = old != nullptr;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace warden::testing
