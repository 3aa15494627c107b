// SQLite: every function warden calls, resolved on first use (include/warden/lazy_library.h)
// so that the executable does not load the library at start. Include this instead of the
// library's header. A function missing from this list links against the library directly, and
// the warden executable (which does not link it) fails to link: add its name here.
#pragma once

#include <sqlite3.h>

#include "warden/lazy_library.h"

#define sqlite3_bind_null(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_bind_null)(__VA_ARGS__)
#define sqlite3_bind_parameter_count(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_bind_parameter_count)(__VA_ARGS__)
#define sqlite3_bind_parameter_index(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_bind_parameter_index)(__VA_ARGS__)
#define sqlite3_bind_text(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_bind_text)(__VA_ARGS__)
#define sqlite3_busy_timeout(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_busy_timeout)(__VA_ARGS__)
#define sqlite3_close(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_close)(__VA_ARGS__)
#define sqlite3_column_bytes(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_column_bytes)(__VA_ARGS__)
#define sqlite3_column_count(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_column_count)(__VA_ARGS__)
#define sqlite3_column_text(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_column_text)(__VA_ARGS__)
#define sqlite3_column_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_column_type)(__VA_ARGS__)
#define sqlite3_errmsg(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_errmsg)(__VA_ARGS__)
#define sqlite3_errstr(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_errstr)(__VA_ARGS__)
#define sqlite3_exec(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_exec)(__VA_ARGS__)
#define sqlite3_finalize(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_finalize)(__VA_ARGS__)
#define sqlite3_free(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_free)(__VA_ARGS__)
#define sqlite3_get_autocommit(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_get_autocommit)(__VA_ARGS__)
#define sqlite3_open_v2(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_open_v2)(__VA_ARGS__)
#define sqlite3_prepare_v2(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_prepare_v2)(__VA_ARGS__)
#define sqlite3_step(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kSqlite, sqlite3_step)(__VA_ARGS__)
