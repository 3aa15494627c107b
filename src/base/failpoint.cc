#include "warden/failpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "warden/error.h"

namespace warden {

namespace {

struct Failpoints {
  std::mutex mutex;
  std::map<std::string, std::string, std::less<>> armed;
  std::map<std::string, uint64_t, std::less<>> hits;  // of armed failpoints, for "N:action"
  std::atomic<bool> any_armed{false};
  std::atomic<bool> loaded{false};
};

Failpoints& registry() {
  static Failpoints* f = new Failpoints();
  return *f;
}

void parse_environment(Failpoints& f) {
  f.armed.clear();
  f.hits.clear();
  const char* spec = std::getenv("WARDEN_FAILPOINTS");
  std::string text = spec ? spec : "";
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t eq = item.find('=');
    if (eq != std::string::npos) f.armed[item.substr(0, eq)] = item.substr(eq + 1);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  f.any_armed.store(!f.armed.empty());
  f.loaded.store(true);
}

}  // namespace

void failpoints_reload() {
  Failpoints& f = registry();
  std::lock_guard<std::mutex> guard(f.mutex);
  parse_environment(f);
}

void failpoint_arm(const std::string& name, const std::string& action) {
  Failpoints& f = registry();
  std::lock_guard<std::mutex> guard(f.mutex);
  if (!f.loaded.load()) parse_environment(f);
  f.armed[name] = action;
  f.hits.erase(name);
  f.any_armed.store(true);
}

void failpoints_clear() {
  Failpoints& f = registry();
  std::lock_guard<std::mutex> guard(f.mutex);
  f.armed.clear();
  f.hits.clear();
  f.any_armed.store(false);
  f.loaded.store(true);
}

void failpoint_hit(std::string_view name) {
  Failpoints& f = registry();
  if (!f.loaded.load(std::memory_order_acquire)) failpoints_reload();
  if (!f.any_armed.load(std::memory_order_relaxed)) return;
  std::string action;
  {
    std::lock_guard<std::mutex> guard(f.mutex);
    auto it = f.armed.find(name);
    if (it == f.armed.end()) return;
    action = it->second;
    // "N:action" acts at the N-th hit only (a test holds a process at, say, the third year).
    size_t digits = 0;
    while (digits < action.size() && action[digits] >= '0' && action[digits] <= '9') ++digits;
    if (digits > 0 && digits < action.size() && action[digits] == ':') {
      const uint64_t hit = ++f.hits[std::string(name)];
      if (hit != std::strtoull(action.c_str(), nullptr, 10)) return;
      action = action.substr(digits + 1);
    }
  }
  if (action == "crash") {
    // SIGKILL, not abort(): no handler, no atexit, no flush: exactly a kill -9 here.
    ::kill(::getpid(), SIGKILL);
    ::_exit(137);
  }
  if (action == "error") {
    throw Error(ErrorCode::kInternal, "failpoint " + std::string(name) + ": injected error");
  }
  if (action.rfind("sleep:", 0) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(action.c_str() + 6)));
    return;
  }
  if (action.rfind("wait:", 0) == 0) {
    // Held until the test creates the file: no sleep to size, however slow the machine.
    const std::string path = action.substr(5);
    // Says it got here, so a test can act knowing every step before the failpoint is done.
    const int reached = ::open((path + ".reached").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (reached >= 0) ::close(reached);
    while (::access(path.c_str(), F_OK) != 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return;
  }
  if (action == "pause") {
    std::this_thread::sleep_for(std::chrono::hours(1));
  }
}

}  // namespace warden
