// Helpers for the DataBlock tests: a block with a name no other test (or test run) uses,
// removed at the end, and children that park inside the block until they are killed.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "helpers/test_support.h"
#include "warden/block.h"

namespace warden::block::testing {

using warden::testing::Child;
using warden::testing::wait_until;

// "t<pid>-<n>-<what>": unique per process and per call, so parallel ctest runs never share.
inline std::string unique_block_name(const std::string& what) {
  static std::atomic<int> counter{0};
  return "t" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" + what;
}

// Creates a block with a unique name; removes it on destruction.
class ScopedBlock {
 public:
  explicit ScopedBlock(const std::string& what, uint32_t slots = 4, uint64_t slot_size = 256,
                       std::chrono::milliseconds heartbeat_timeout = std::chrono::seconds(5))
      : name_(unique_block_name(what)) {
    create_block(
        name_,
        {.slot_count = slots, .slot_size = slot_size, .heartbeat_timeout = heartbeat_timeout});
  }
  ~ScopedBlock() { remove_block(name_); }
  ScopedBlock(const ScopedBlock&) = delete;
  ScopedBlock& operator=(const ScopedBlock&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// Sleeps until killed (a child parks here while it holds something in the block).
[[noreturn]] inline int park() {
  while (true) std::this_thread::sleep_for(std::chrono::hours(1));
}

inline std::span<const std::byte> bytes(const std::string& text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}
inline std::string text(std::span<const std::byte> data) {
  return std::string(reinterpret_cast<const char*>(data.data()), data.size());
}

inline SlotDiagnosis slot_of(const std::string& name, uint32_t slot) {
  return diagnose(name, slot).slots.at(0);
}

// Kills a child with SIGKILL and reaps it, so its pid is gone when the test looks.
inline void kill_and_reap(Child& child) {
  child.kill(SIGKILL);
  child.wait();
}

}  // namespace warden::block::testing
