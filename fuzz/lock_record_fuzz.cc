// libFuzzer target for the lock-file parser, LockRecord::parse (include/warden/lock.h).
//
// A lock file is written by other processes, other hosts, other versions, editors and broken
// disks, so the parser must treat its bytes as hostile. For any input this checks:
//   1. parse either returns a record or throws MalformedLockFileError. Any other exception
//      (a JSON library error leaking out, std::out_of_range, ...) escapes, and libFuzzer
//      reports it as a crash: callers such as observe() catch only MalformedLockFileError.
//   2. the error message carries " is malformed: ": observe() cuts the problem out of the
//      message at that marker for `warden lock status`.
//   3. a record that parses survives to_json() -> parse() unchanged (every field), and
//      to_json() of that is byte-identical: what warden accepts, warden can write back.
// ASan and UBSan (signed overflow in time arithmetic included) turn memory and arithmetic
// errors into crashes. Build and run: scripts/fuzz SECONDS.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "warden/error.h"
#include "warden/lock.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "lock_record_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

bool same_record(const warden::LockRecord& a, const warden::LockRecord& b) {
  return a.version == b.version && a.name == b.name && a.pid == b.pid &&
         a.pid_start == b.pid_start && a.boot_id == b.boot_id && a.hostname == b.hostname &&
         a.writer_id == b.writer_id && a.token == b.token && a.acquired_at == b.acquired_at &&
         a.refreshed_at == b.refreshed_at && a.expires_at == b.expires_at;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string path = "fuzz.lock";
  warden::LockRecord record;
  try {
    record = warden::LockRecord::parse(text, path);
  } catch (const warden::MalformedLockFileError& e) {
    if (std::string_view(e.what()).find(" is malformed: ") == std::string_view::npos) {
      fail("MalformedLockFileError without the \" is malformed: \" marker", e.what());
    }
    return 0;
  }
  const std::string written = record.to_json();
  warden::LockRecord again;
  try {
    again = warden::LockRecord::parse(written, path);
  } catch (const warden::MalformedLockFileError& e) {
    fail("a record that parsed does not parse after to_json()", written + e.what());
  }
  if (!same_record(record, again)) fail("to_json() -> parse() changed the record", written);
  if (again.to_json() != written) fail("to_json() is not stable", written);
  return 0;
}
