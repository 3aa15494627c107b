#include "warden/error.h"

#include <cstring>

namespace warden {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kLockHeld:
      return "lock_held";
    case ErrorCode::kLockLost:
      return "lock_lost";
    case ErrorCode::kMalformed:
      return "malformed";
    case ErrorCode::kVerificationFailed:
      return "verification_failed";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kSchema:
      return "schema";
    case ErrorCode::kDiskFull:
      return "disk_full";
    case ErrorCode::kStaleToken:
      return "stale_token";
  }
  return "unknown";
}

int exit_code_for(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kLockHeld:
      return kExitLockHeld;
    case ErrorCode::kVerificationFailed:
      return kExitVerifyFailed;
    case ErrorCode::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitError;
  }
}

std::string errno_text(int errno_value) {
  char buffer[256];
  // GNU strerror_r returns a pointer that may or may not be buffer.
  return std::string(strerror_r(errno_value, buffer, sizeof buffer));
}

}  // namespace warden
