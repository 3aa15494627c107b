// Name operations the lock file needs beyond posix.h: an atomic swap of two names, a symlink
// published atomically (the fencing token), a file named only once it is complete, and an
// open that never blocks on a FIFO. Part of
// the one POSIX layer (src/base/posix_names.cc); errors as in posix.h (IoError naming the path).
#pragma once

#include <optional>
#include <string>

#include "warden/posix.h"

namespace warden {

// renameat2(RENAME_EXCHANGE): swaps the two names atomically (both must exist). Returns false
// when either name does not exist (ENOENT); throws otherwise. Lets a caller replace a file
// and then check what it replaced, and undo the swap if it was not what it expected.
bool rename_exchange(const std::string& a, const std::string& b);

// Points `path` at `target` atomically: a symlink at a temp name beside it, renamed over
// `path`. A symlink's target lives in its inode, so an fsync of the directory alone makes it
// durable (no file data to fsync). Does not fsync the directory.
void replace_symlink(const std::string& target, const std::string& path);
// readlink(2). nullopt when `path` does not exist; throws IoError (EINVAL) when it is not a
// symlink.
std::optional<std::string> read_symlink(const std::string& path);

// A file with no name yet in directory `dir` (open O_TMPFILE, write-only), to be filled and
// fsynced before link_unnamed() publishes it: nothing is ever visible at a name half-written,
// and a crash before the link leaves nothing behind. nullopt when the file system cannot
// (EOPNOTSUPP, EISDIR from old kernels, EINVAL) or /proc/self/fd, which the link goes
// through, is not mounted; the caller then writes a named temp file. Throws IoError otherwise.
std::optional<UniqueFd> create_unnamed(const std::string& dir, mode_t mode = 0644);
// Gives the unnamed file `fd` (create_unnamed) the name `path`, never replacing one: linkat
// through /proc/self/fd (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH). Returns false when
// `path` exists (EEXIST); throws IoError otherwise. Does not fsync the directory.
bool link_unnamed(int fd, const std::string& path);

// Opens for reading with O_NOFOLLOW and O_NONBLOCK, so a FIFO or a symlink planted at the
// path can neither block nor redirect us. nullopt when the path does not exist; throws
// IoError (kMalformed for a symlink) otherwise. Check the type with stat_fd().
std::optional<UniqueFd> open_read_nonblocking(const std::string& path);

}  // namespace warden
