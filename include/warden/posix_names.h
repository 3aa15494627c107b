// Name operations the lock file needs beyond posix.h: an atomic swap of two names, a symlink
// published atomically (the fencing token), and an open that never blocks on a FIFO. Part of
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

// Opens for reading with O_NOFOLLOW and O_NONBLOCK, so a FIFO or a symlink planted at the
// path can neither block nor redirect us. nullopt when the path does not exist; throws
// IoError (kMalformed for a symlink) otherwise. Check the type with stat_fd().
std::optional<UniqueFd> open_read_nonblocking(const std::string& path);

}  // namespace warden
