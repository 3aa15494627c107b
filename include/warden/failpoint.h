// Named failpoints for crash tests (DESIGN.md "Tests").
//
// Code marks each dangerous moment with WARDEN_FAILPOINT("lock.acquire.after_publish").
// They are compiled in always and cost one relaxed atomic load when nothing is armed. A test
// arms them for a child process through the environment:
//   WARDEN_FAILPOINTS="lock.acquire.after_publish=crash,storage.manifest.before_rename=error"
// Actions: crash (SIGKILL of this process, so nothing is flushed or cleaned up), error
// (throws warden::Error with code kInternal naming the failpoint), sleep:<ms> (pauses, to
// widen a race window), pause (blocks until SIGCONT-free: sleeps for an hour; a test
// kills the process there), and wait:<path> (creates <path>.reached, then blocks until
// <path> exists: a test holds the process at the moment for as long as it needs, then
// creates the file to let it go on).
// "N:<action>" runs the action at the N-th hit of that failpoint only (the earlier hits and
// the later ones do nothing), e.g. "sync.partition.after_rename=3:pause".
#pragma once

#include <string>
#include <string_view>

namespace warden {

// Runs the action armed for `name`, if any. See above.
void failpoint_hit(std::string_view name);

// Re-reads WARDEN_FAILPOINTS (done automatically on first use). For tests in-process.
void failpoints_reload();
// Arms a failpoint in this process (tests); action as in the environment syntax.
void failpoint_arm(const std::string& name, const std::string& action);
void failpoints_clear();

}  // namespace warden

#define WARDEN_FAILPOINT(name) ::warden::failpoint_hit(name)
