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

// 64-bit XXH3 of a buffer.
uint64_t xxh3_64(const void* data, size_t size);

}  // namespace warden
