// Private to src/base/: the one place errno becomes an IoError, and the EINTR loop.
#pragma once

#include <cerrno>
#include <string>

#include "warden/error.h"

namespace warden::internal {

// Throws IoError "<operation> <path>: <strerror>" for a saved errno; ENOSPC and EDQUOT get
// code kDiskFull so callers can quarantine and stop cleanly.
[[noreturn]] void throw_errno(const std::string& operation, const std::string& path,
                              int saved_errno);

// Calls f() until it does not fail with EINTR.
template <typename F>
auto retry_eintr(F f) {
  decltype(f()) result;
  do {
    result = f();
  } while (result == -1 && errno == EINTR);
  return result;
}

}  // namespace warden::internal
