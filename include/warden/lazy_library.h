// Loading libduckdb and libpq on first use instead of at process start.
//
// Linked normally, the warden executable makes the dynamic loader map and relocate libduckdb
// and libpq's dependency chain (about 35 libraries) before main(): ~40 ms of CPU that every
// command paid, including `guard run`, `lock` and `block`, which never touch a database. The
// library code calls DuckDB and libpq through src/source/lazy_duckdb.h and lazy_libpq.h, which
// resolve each function here the first time it is called.
#pragma once

namespace warden {

enum class LazyLibrary { kDuckDb, kLibpq };

// The file name the loader looks for first ("libduckdb.so", "libpq.so.5").
const char* lazy_library_name(LazyLibrary library);

// The address of `symbol` in `library`. The library is loaded (dlopen, RTLD_NOW | RTLD_GLOBAL)
// the first time any of its symbols is asked for, once per process; thread-safe. A library
// the process already has loaded (the tests link DuckDB directly) is the one used.
// Throws IoError naming the library, every path tried, the loader's reason and the fix
// (`scripts/bootstrap`) when the library cannot be loaded or lacks the symbol.
void* lazy_symbol(LazyLibrary library, const char* symbol);

}  // namespace warden
