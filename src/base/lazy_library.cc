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
  static LoadedLibrary loaded[4];
  return loaded[static_cast<int>(library)];
}

// Where to look, in order. The bare name goes through the loader's search (the executable's
// RUNPATH, which the build points at .deps/duckdb/lib, then LD_LIBRARY_PATH and the system
// paths); the absolute path is where CMake found the library when warden was built.
std::vector<std::string> candidates(LazyLibrary library) {
  std::vector<std::string> names{lazy_library_name(library)};
  switch (library) {
    case LazyLibrary::kDuckDb:
#ifdef WARDEN_DUCKDB_LIBRARY
      names.push_back(WARDEN_DUCKDB_LIBRARY);
#endif
      break;
    case LazyLibrary::kLibpq:
      names.push_back("libpq.so");
      break;
    case LazyLibrary::kSqlite:
      names.push_back("libsqlite3.so");
      break;
    case LazyLibrary::kCrypto:
      names.push_back("libcrypto.so");
      break;
  }
  return names;
}

const char* package(LazyLibrary library) {
  switch (library) {
    case LazyLibrary::kDuckDb:
      return "DuckDB into .deps/duckdb";
    case LazyLibrary::kLibpq:
      return "the Debian package libpq5";
    case LazyLibrary::kSqlite:
      return "the Debian package libsqlite3-0";
    case LazyLibrary::kCrypto:
      return "the Debian package libssl3";
  }
  return "it";
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
                   "\nfix: run scripts/bootstrap (it installs " + package(library) +
                   "), or point LD_LIBRARY_PATH at the directory that holds it";
}

}  // namespace

const char* lazy_library_name(LazyLibrary library) {
  switch (library) {
    case LazyLibrary::kDuckDb:
      return "libduckdb.so";
    case LazyLibrary::kLibpq:
      return "libpq.so.5";
    case LazyLibrary::kSqlite:
      return "libsqlite3.so.0";
    case LazyLibrary::kCrypto:
      return "libcrypto.so.3";
  }
  return "?";
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
