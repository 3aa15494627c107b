#include "warden/lazy_library.h"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <vector>

#include "warden/error.h"

namespace warden {
namespace {

struct LoadedLibrary {
  std::once_flag once;
  void* handle = nullptr;
  std::string failure;  // why it could not be loaded; empty once loaded
};

LoadedLibrary& slot(LazyLibrary library) {
  static LoadedLibrary loaded[4];  // one per LazyLibrary, as kLibraries below
  return loaded[static_cast<int>(library)];
}

// What warden knows of each library, indexed by LazyLibrary. Where to look, in order: the
// bare name goes through the loader's search (the executable's RUNPATH, which the build points
// at .deps/duckdb/lib, then LD_LIBRARY_PATH and the system paths); the fallback is the
// unversioned name, or for DuckDB where CMake found it when warden was built.
struct LibraryFacts {
  const char* name;
  const char* fallback;  // nullptr: none
  const char* package;   // what scripts/bootstrap installs that holds it
};

#ifdef WARDEN_DUCKDB_LIBRARY
constexpr const char* kDuckDbFallback = WARDEN_DUCKDB_LIBRARY;
#else
constexpr const char* kDuckDbFallback = nullptr;
#endif

constexpr LibraryFacts kLibraries[] = {
    {"libduckdb.so", kDuckDbFallback, "DuckDB into .deps/duckdb"},
    {"libpq.so.5", "libpq.so", "the Debian package libpq5"},
    {"libsqlite3.so.0", "libsqlite3.so", "the Debian package libsqlite3-0"},
    {"libcrypto.so.3", "libcrypto.so", "the Debian package libssl3"},
};

static_assert(sizeof kLibraries / sizeof kLibraries[0] == 4, "one entry per LazyLibrary");

const LibraryFacts& facts(LazyLibrary library) { return kLibraries[static_cast<int>(library)]; }

std::vector<std::string> candidates(LazyLibrary library) {
  std::vector<std::string> names{facts(library).name};
  if (facts(library).fallback) names.push_back(facts(library).fallback);
  return names;
}

void load(LazyLibrary library, LoadedLibrary& loaded) {
  std::string tried;
  for (const std::string& name : candidates(library)) {
    loaded.handle = ::dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (loaded.handle) return;
    const char* reason = ::dlerror();
    tried += "\n  " + name + ": " + (reason ? reason : "not found");
  }
  loaded.failure = std::string("cannot load ") + lazy_library_name(library) + "; tried:" + tried +
                   "\nfix: run scripts/bootstrap (it installs " + facts(library).package +
                   "), or point LD_LIBRARY_PATH at the directory that holds it";
}

}  // namespace

const char* lazy_library_name(LazyLibrary library) { return facts(library).name; }

void* lazy_symbol(LazyLibrary library, const char* symbol) {
  LoadedLibrary& loaded = slot(library);
  std::call_once(loaded.once, [&] { load(library, loaded); });
  if (!loaded.handle) throw IoError(loaded.failure, 0);
  void* address = ::dlsym(loaded.handle, symbol);
  if (!address) {
    throw IoError(std::string(lazy_library_name(library)) + " has no function " + symbol +
                      " (a different version than warden was built against?); fix: run "
                      "scripts/bootstrap and rebuild",
                  0);
  }
  return address;
}

}  // namespace warden
