// Waiting on a socket or pipe with a deadline (libpq's socket, child pipes).
#include <poll.h>

#include "posix_internal.h"
#include "warden/posix.h"

namespace warden {

bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    struct pollfd entry {
      fd, POLLIN, 0
    };
    int n = ::poll(&entry, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) internal::throw_errno("poll", "fd " + std::to_string(fd), errno);
  }
}

}  // namespace warden
