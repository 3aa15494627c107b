// warden's errors.
//
// Exceptions are for errors that abort an operation; expected outcomes (a lock held by
// someone else, a file that does not exist yet) are return values. Every error carries an
// ErrorCode chosen by what the caller should do next, and a message that reads
// "<operation> <object>: <cause>" and, where one exists, names the command that fixes it.
//
// The CLI's main() catches warden::Error once and maps code() to an exit code through
// exit_code_for(); the Python module maps each subclass to a Python exception of the same name.
#pragma once

#include <stdexcept>
#include <string>

namespace warden {

// What the caller should do next.
enum class ErrorCode {
  kInternal,            // a bug in warden: report it
  kInvalidArgument,     // fix the call (usage error)
  kNotFound,            // the named thing does not exist
  kIo,                  // the system refused (permissions, disk, ...): fix the system first
  kLockHeld,            // someone else holds the lock: wait, or resolve the holder
  kLockLost,            // we no longer hold a lock we thought we held: stop writing
  kMalformed,           // a file does not parse: repair or remove it (the message says how)
  kVerificationFailed,  // data does not match its manifest or checksum
  kUnavailable,         // transient (network, server restart): retry the call later
  kTimeout,             // gave up waiting
  kSchema,              // the source's schema changed incompatibly
  kDiskFull,            // below the disk watermark or ENOSPC
  kStaleToken,          // a newer fencing token has committed: this writer is fenced off
};

// Short stable name of a code ("lock_held", ...), used in JSON output.
const char* error_code_name(ErrorCode code);

// Base of every error warden throws.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// A system call failed. errno_value is the saved errno (0 when not from a syscall).
class IoError : public Error {
 public:
  IoError(const std::string& message, int errno_value, ErrorCode code = ErrorCode::kIo)
      : Error(code, message), errno_value_(errno_value) {}
  int errno_value() const { return errno_value_; }

 private:
  int errno_value_;
};

// The lock could not be acquired (held by another writer and the wait ran out).
class LockAcquisitionError : public Error {
 public:
  explicit LockAcquisitionError(const std::string& message)
      : Error(ErrorCode::kLockHeld, message) {}
};

// A stale lock could not be recovered, or a token did not match on release/refresh.
class LockRecoveryError : public Error {
 public:
  explicit LockRecoveryError(const std::string& message, ErrorCode code = ErrorCode::kLockLost)
      : Error(code, message) {}
};

// A lock file (or another warden state file) does not parse under its strict schema.
class MalformedLockFileError : public Error {
 public:
  explicit MalformedLockFileError(const std::string& message)
      : Error(ErrorCode::kMalformed, message) {}
};

// A commit carried a fencing token older than one already committed.
class StaleTokenError : public Error {
 public:
  explicit StaleTokenError(const std::string& message) : Error(ErrorCode::kStaleToken, message) {}
};

// The source's schema changed in a way the drift policy rejects.
class SchemaError : public Error {
 public:
  explicit SchemaError(const std::string& message) : Error(ErrorCode::kSchema, message) {}
};

// Data did not verify against its checksum or manifest.
class VerificationError : public Error {
 public:
  explicit VerificationError(const std::string& message)
      : Error(ErrorCode::kVerificationFailed, message) {}
};

// A usage error: a bad argument or name.
class InvalidArgumentError : public Error {
 public:
  explicit InvalidArgumentError(const std::string& message)
      : Error(ErrorCode::kInvalidArgument, message) {}
};

// Exit codes (DESIGN.md "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitLockHeld = 2;
inline constexpr int kExitVerifyFailed = 3;
inline constexpr int kExitUsage = 64;

// Maps an error to the CLI's exit code: kLockHeld -> 2, kVerificationFailed -> 3,
// kInvalidArgument -> 64, everything else -> 1.
int exit_code_for(const Error& error);

// "strerror(errno_value)" in a thread-safe way.
std::string errno_text(int errno_value);

}  // namespace warden
