// Loading libduckdb, libpq, libsqlite3 and libcrypto on first use instead of at process start.
//
// Linked normally, the warden executable makes the dynamic loader map and relocate libduckdb
// and libpq's dependency chain (about 35 libraries) before main(): ~40 ms of CPU that every
// command paid, including `guard run`, `lock` and `block`, which never touch a database;
// libcrypto and libsqlite3 alone cost ~5,000 symbol bindings at start. The code calls them
// through lazy_duckdb.h, lazy_libpq.h, lazy_sqlite.h (src/source) and lazy_crypto.h (src/base),
// which resolve each function here the first time it is called.
#pragma once

namespace warden {

enum class LazyLibrary { kDuckDb, kLibpq, kSqlite, kCrypto };

// The file name the loader looks for first ("libduckdb.so", "libpq.so.5", ...).
const char* lazy_library_name(LazyLibrary library);

// The address of `symbol` in `library`. The library is loaded (dlopen, RTLD_NOW | RTLD_GLOBAL)
// the first time any of its symbols is asked for, once per process; thread-safe. A library
// the process already has loaded (the tests link DuckDB directly) is the one used.
// Throws IoError naming the library, every path tried, the loader's reason and the fix
// (`scripts/bootstrap`) when the library cannot be loaded or lacks the symbol.
void* lazy_symbol(LazyLibrary library, const char* symbol);

}  // namespace warden

// The function `name` of `library` (a LazyLibrary value), with its declared type: each use
// caches its own pointer, resolved by the first call (which may throw IoError, see above).
// The lazy_*.h headers define one macro per function with it, e.g.
//   #define PQclear(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQclear)(__VA_ARGS__)
// so code keeps calling PQclear(result). Taking a function's address (&PQclear) bypasses the
// macro and links the library directly: wrap the call in a lambda or functor instead.
#define WARDEN_LAZY_FUNCTION(library, name)                                         \
  ([]() {                                                                           \
    static const auto function =                                                    \
        reinterpret_cast<decltype(&::name)>(::warden::lazy_symbol(library, #name)); \
    return function;                                                                \
  }())
