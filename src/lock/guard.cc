// LockGuard: hold a lock for a scope, refresh it in the background, report a lost lease
// before it runs out. AtomicLock: the seed's atomic_lock().
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "warden/events.h"
#include "warden/lock.h"

namespace warden {

// Shared by the guard and its refresher thread, which keeps it alive until it has seen
// `stopping`: stop() does not wait for the thread to end (a join costs a wake-up of the
// thread, about half a millisecond on an idle 2-vCPU VM, paid by every short job under
// `warden guard run`), only for it to be outside refresh() and on_lost.
//
// So the refresher may run on after the guard and the Lock are gone (it may not even have
// started when stop() returns, and the process may be exiting): it touches `lock` only while
// it holds `mutex` and `stopping` is false, which stop() ends under that same mutex.
struct LockGuard::State {
  State(Lock& l, LostCallback callback)
      : lock(l),
        on_lost(std::move(callback)),
        refresh_interval(l.options().refresh_interval),
        lease(l.options().lease) {}
  Lock& lock;
  LostCallback on_lost;
  const std::chrono::milliseconds refresh_interval;
  const std::chrono::milliseconds lease;
  std::mutex mutex;  // serialises refresh() and release() on the lock
  std::condition_variable wake;
  std::condition_variable callback_done;
  bool stopping = false;
  bool released = false;
  bool in_callback = false;  // on_lost runs without the mutex held
  LockToken token;
  std::atomic<bool> lost{false};
  std::thread refresher;

  // How close to expiry a failing refresh gives up and reports the lease lost: the holder
  // must hear it while the lease still protects it, so it can stop before another writer
  // can legitimately start.
  std::chrono::milliseconds safety_margin() const {
    return std::clamp(lease / 5, std::chrono::milliseconds(1), std::chrono::milliseconds(30000));
  }

  void run() {
    std::unique_lock<std::mutex> held(mutex);
    auto next = SteadyClock::now() + refresh_interval;
    while (!stopping) {
      if (wake.wait_until(held, next, [&] { return stopping; })) break;
      try {
        token = lock.refresh(token);
        next = SteadyClock::now() + refresh_interval;
      } catch (const LockRecoveryError& e) {
        report_lost(held, e.what());
        return;
      } catch (const std::exception& e) {
        // Maybe transient (a slow disk): retry soon, but give up while the lease still holds.
        auto left = token.expires_at - WallClock::now();
        if (left <= safety_margin()) {
          report_lost(held,
                      std::string("refresh kept failing, the lease is about to end: ") + e.what());
          return;
        }
        auto retry = std::clamp(
            std::chrono::duration_cast<std::chrono::milliseconds>((left - safety_margin()) / 4),
            std::chrono::milliseconds(1), refresh_interval);
        emit_event(EventLevel::kWarning, "lock.refresh_failed",
                   std::string("refresh failed, retrying: ") + e.what(),
                   {{"lock", token.name}, {"token", token.token}});
        next = SteadyClock::now() + retry;
      }
    }
  }

  void report_lost(std::unique_lock<std::mutex>& held, const std::string& reason) {
    lost.store(true);
    LockToken copy = token;
    in_callback = true;
    held.unlock();  // the callback may call lost() or release()
    if (on_lost) {
      try {
        on_lost(copy, reason);
      } catch (...) {
        // Nothing escapes a callback into the refresher thread.
      }
    }
    held.lock();
    in_callback = false;
    callback_done.notify_all();
  }

  // From here on the refresher neither refreshes nor calls on_lost. From the callback
  // itself (release() inside on_lost) it cannot wait for the callback to end.
  void stop() {
    {
      std::unique_lock<std::mutex> held(mutex);
      stopping = true;
      if (refresher.get_id() != std::this_thread::get_id()) {
        callback_done.wait(held, [&] { return !in_callback; });
      }
    }
    wake.notify_all();
    if (refresher.joinable() && refresher.get_id() != std::this_thread::get_id()) {
      refresher.detach();
    }
  }
};

LockGuard::LockGuard(Lock& lock, std::chrono::milliseconds timeout, LostCallback on_lost)
    : state_(std::make_shared<State>(lock, std::move(on_lost))) {
  state_->token = lock.acquire(timeout);
  state_->refresher = std::thread([s = state_] { s->run(); });
}

LockGuard::~LockGuard() {
  state_->stop();
  if (state_->refresher.joinable()) state_->refresher.detach();  // only if stopped from itself
  std::lock_guard<std::mutex> held(state_->mutex);
  if (state_->released || state_->lost.load()) return;
  try {
    state_->lock.release(state_->token);
  } catch (const std::exception& e) {
    emit_event(EventLevel::kError, "lock.release_failed",
               std::string("release at the end of the guard failed: ") + e.what(),
               {{"lock", state_->token.name}, {"token", state_->token.token}});
  }
}

const LockToken& LockGuard::token() const { return state_->token; }
bool LockGuard::lost() const { return state_->lost.load(); }

void LockGuard::release() {
  state_->stop();
  std::lock_guard<std::mutex> held(state_->mutex);
  if (state_->released) return;
  state_->lock.release(state_->token);
  state_->released = true;
}

AtomicLock::AtomicLock(const std::string& lock_dir, const std::string& name,
                       std::chrono::milliseconds timeout, LockOptions options,
                       LockGuard::LostCallback on_lost)
    : lock_(lock_dir, name, std::move(options)), guard_(lock_, timeout, std::move(on_lost)) {}

}  // namespace warden
