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
  static LoadedLibrary duckdb;
  static LoadedLibrary libpq;
  return library == LazyLibrary::kDuckDb ? duckdb : libpq;
}

// Where to look, in order. The bare name goes through the loader's search (the executable's
// RUNPATH, which the build points at .deps/duckdb/lib, then LD_LIBRARY_PATH and the system
// paths); the absolute path is where CMake found the library when warden was built.
std::vector<std::string> candidates(LazyLibrary library) {
  std::vector<std::string> names{lazy_library_name(library)};
  if (library == LazyLibrary::kDuckDb) {
#ifdef WARDEN_DUCKDB_LIBRARY
    names.push_back(WARDEN_DUCKDB_LIBRARY);
#endif
  } else {
    names.push_back("libpq.so");
  }
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
                   "\nfix: run scripts/bootstrap (it installs " +
                   (library == LazyLibrary::kDuckDb ? "DuckDB into .deps/duckdb" : "libpq5") +
                   "), or point LD_LIBRARY_PATH at the directory that holds it";
}

}  // namespace

const char* lazy_library_name(LazyLibrary library) {
  return library == LazyLibrary::kDuckDb ? "libduckdb.so" : "libpq.so.5";
}

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
