// The connection pool: few connections, reused, so a WRDS second-factor prompt happens once.
#include <condition_variable>
#include <deque>
#include <mutex>

#include "warden/events.h"
#include "warden/postgres.h"

namespace warden::pg {

struct Pool::State {
  Settings settings;
  mutable std::mutex mutex;
  std::condition_variable released;
  std::deque<std::unique_ptr<Connection>> idle;
  int open = 0;    // idle + leased
  int opened = 0;  // over the pool's life
  int max_open = 0;
};

Pool::Pool(Settings settings) : state_(std::make_unique<State>()) {
  state_->settings = std::move(settings);
  int wanted = std::max(1, state_->settings.pool_size + state_->settings.max_overflow);
  state_->max_open = std::min(wanted, std::max(1, state_->settings.server_connection_limit));
}

Pool::~Pool() = default;

Pool::Lease Pool::lease() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  for (;;) {
    while (!state_->idle.empty()) {
      std::unique_ptr<Connection> connection = std::move(state_->idle.front());
      state_->idle.pop_front();
      if (connection->healthy()) return Lease(this, std::move(connection));
      // The server dropped it (restart, idle timeout, pg_terminate_backend): replace it.
      --state_->open;
      emit_event(EventLevel::kWarning, "source.reconnect", "dropping a broken pooled connection",
                 {{"target", connection->redacted_target()}});
    }
    if (state_->open < state_->max_open) {
      ++state_->open;
      lock.unlock();
      try {
        auto connection = std::make_unique<Connection>(state_->settings);
        lock.lock();
        ++state_->opened;
        return Lease(this, std::move(connection));
      } catch (...) {
        lock.lock();
        --state_->open;
        state_->released.notify_one();
        throw;
      }
    }
    state_->released.wait(lock);
  }
}

void Pool::give_back(std::unique_ptr<Connection> connection) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  // Overflow connections close when returned; a broken one is never kept.
  if (connection->healthy() && static_cast<int>(state_->idle.size()) < state_->settings.pool_size) {
    state_->idle.push_back(std::move(connection));
  } else {
    --state_->open;
  }
  state_->released.notify_one();
}

int Pool::open_connections() const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return state_->open;
}

int Pool::idle_connections() const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return static_cast<int>(state_->idle.size());
}

int Pool::max_connections() const { return state_->max_open; }

int Pool::connections_opened() const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return state_->opened;
}

const Settings& Pool::settings() const { return state_->settings; }

Pool::Lease::Lease(Pool* pool, std::unique_ptr<Connection> connection)
    : pool_(pool), connection_(std::move(connection)) {}

Pool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), connection_(std::move(other.connection_)) {}

Pool::Lease::~Lease() {
  if (connection_) pool_->give_back(std::move(connection_));
}

}  // namespace warden::pg
