// Checksums: streaming SHA-256 (manifests, verify) and xxh3 (shared-memory payloads).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace warden {

// Incremental SHA-256. Not thread-safe; one instance per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Finishes and returns the lowercase hex digest (64 chars). Call once.
  std::string hex_digest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// SHA-256 of a whole file, read in 1 MiB blocks; lowercase hex. Throws IoError.
std::string sha256_file(const std::string& path);
// SHA-256 of a string; lowercase hex.
std::string sha256_hex(std::string_view data);

// 64-bit XXH3 of a buffer, computed with the widest vector unit the CPU has (AVX-512, AVX2 or
// the baseline); every variant gives the same value. Never fails.
uint64_t xxh3_64(const void* data, size_t size);

// Copies `size` bytes from src to dst and returns xxh3_64(src, size): cheaper than memcpy
// then xxh3_64. From 256 KiB, into a dst aligned to the kernel's vector width, each 64-byte
// stripe is stored around the cache as it is hashed (one pass over memory, ended by a store
// fence, so a later release store publishes the copy); otherwise it copies and hashes 32 KiB
// at a time. The ranges must not overlap. Same kernel choice as xxh3_64(). Never fails.
uint64_t xxh3_64_copy(void* dst, const void* src, size_t size);

// Incremental 64-bit XXH3: update() in pieces of any size gives the same digest() as
// xxh3_64() over the concatenation. Same kernel choice as xxh3_64(). Not thread-safe; lives on
// the stack (no allocation). Never fails.
class Xxh3 {
 public:
  static constexpr size_t kStateBytes = 640;  // xxh3_kernel.inc asserts XXH3_state_t fits
  Xxh3();
  Xxh3(const Xxh3&) = delete;
  Xxh3& operator=(const Xxh3&) = delete;
  void update(const void* data, size_t size);
  // The hash of everything passed to update() so far; may be called more than once.
  uint64_t digest() const;
  // Which kernel this process uses: "avx512", "avx2" or "generic" (for benchmarks and logs).
  static const char* kernel_name();

 private:
  alignas(64) unsigned char state_[kStateBytes];
};

}  // namespace warden
