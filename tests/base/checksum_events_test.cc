#include <gtest/gtest.h>
#include <xxhash.h>  // libxxhash: the reference for warden's own XXH3 kernels

#include <algorithm>
#include <random>
#include <vector>

#include "helpers/test_support.h"
#include "warden/checksum.h"
#include "warden/events.h"

namespace warden {
namespace {

TEST(Checksum, Sha256KnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Checksum, StreamingFileMatchesOneShot) {
  testing::TempDir dir;
  std::string data(3 * 1024 * 1024 + 17, 'q');
  testing::spit(dir / "big", data);
  EXPECT_EQ(sha256_file(dir / "big"), sha256_hex(data));
}

// Every kernel (generic, AVX2, AVX-512) must give the reference value: payload checksums are
// written by one process and checked by another, possibly on a CPU that picks another kernel.
extern "C" unsigned long long warden_xxh3_oneshot_generic(const void* data, size_t size);
extern "C" unsigned long long warden_xxh3_oneshot_avx2(const void* data, size_t size);
extern "C" unsigned long long warden_xxh3_oneshot_avx512(const void* data, size_t size);
extern "C" unsigned long long warden_xxh3_copy_generic(void* dst, const void* src, size_t size);
extern "C" unsigned long long warden_xxh3_copy_avx2(void* dst, const void* src, size_t size);
extern "C" unsigned long long warden_xxh3_copy_avx512(void* dst, const void* src, size_t size);

std::vector<unsigned char> random_bytes(size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> bytes(size);
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  return bytes;
}

TEST(Checksum, Xxh3KernelsMatchTheReferenceAtEverySizeClass) {
  EXPECT_EQ(xxh3_64("", 0), 0x2D06800538D394C2ULL);  // XXH3_64bits of nothing, from the spec
  // The sizes cross XXH3's branches: 0-16, 17-128, 129-240 bytes, stripes, blocks, long input.
  for (size_t size :
       {0, 1, 3, 8, 16, 17, 100, 128, 129, 240, 241, 1023, 1024, 1025, 65536, (1 << 20) + 7}) {
    auto bytes = random_bytes(size, static_cast<unsigned>(size));
    uint64_t reference = XXH3_64bits(bytes.data(), size);
    EXPECT_EQ(xxh3_64(bytes.data(), size), reference) << size << " bytes, " << Xxh3::kernel_name();
    EXPECT_EQ(warden_xxh3_oneshot_generic(bytes.data(), size), reference) << size;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
      EXPECT_EQ(warden_xxh3_oneshot_avx2(bytes.data(), size), reference) << size;
    }
    if (__builtin_cpu_supports("avx512f")) {
      EXPECT_EQ(warden_xxh3_oneshot_avx512(bytes.data(), size), reference) << size;
    }
#endif
  }
}

// The producer's copy+hash must store exactly the payload and give the checksum the consumer
// recomputes with xxh3_64: at every size class, at offsets across XXH3's 1024-byte blocks,
// on every kernel, into a dst at a 64-byte boundary (large payloads take the cache-bypassing
// stripe loop) and 1, 16 and 32 bytes past one (each kernel's store width is 16, 32 or 64
// bytes: a wrong alignment check shows up as a crash here), leaving the bytes around alone.
TEST(Checksum, Xxh3CopyCopiesExactlyAndMatchesTheReferenceOnEveryKernel) {
  using Copy = unsigned long long (*)(void*, const void*, size_t);
  std::vector<std::pair<const char*, Copy>> kernels{
      {"public",
       [](void* d, const void* s, size_t n) -> unsigned long long {
         return xxh3_64_copy(d, s, n);
       }},
      {"generic", warden_xxh3_copy_generic}};
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) kernels.emplace_back("avx2", warden_xxh3_copy_avx2);
  if (__builtin_cpu_supports("avx512f")) kernels.emplace_back("avx512", warden_xxh3_copy_avx512);
#endif
  constexpr size_t kStreamMin = 256 * 1024;  // WARDEN_XXH3_STREAM_MIN
  std::vector<size_t> sizes{0,          1,
                            16,         17,
                            128,        129,
                            240,        241,
                            255,        256,
                            1024,       1025,
                            65536,      kStreamMin - 1,
                            kStreamMin, kStreamMin + 1,
                            (1 << 20),  (1 << 20) + 7};
  for (size_t size = 960; size <= 2200; size += 13) sizes.push_back(size);
  for (size_t size = kStreamMin + 960; size <= kStreamMin + 2200; size += 61) {
    sizes.push_back(size);
  }
  for (size_t size : sizes) {
    auto bytes = random_bytes(size, static_cast<unsigned>(size) + 1);
    const uint64_t reference = XXH3_64bits(bytes.data(), size);
    for (const auto& [name, copy] : kernels) {
      for (size_t misalign : {0, 1, 16, 32}) {
        std::vector<unsigned char> out(size + 192, 0xA5);
        auto base = reinterpret_cast<uintptr_t>(out.data());
        unsigned char* dst = out.data() + (64 - base % 64) + 64 + misalign;
        const std::string where =
            std::to_string(size) + " bytes, " + name + (misalign ? ", misaligned" : ", aligned");
        EXPECT_EQ(copy(dst, bytes.data(), size), reference) << where;
        EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), dst)) << where;
        EXPECT_EQ(dst[-1], 0xA5) << where << ": wrote before the start";
        EXPECT_EQ(dst[size], 0xA5) << where << ": wrote past the end";
      }
    }
  }
}

TEST(Checksum, Xxh3StreamingInAnyPiecesMatchesOneShot) {
  auto bytes = random_bytes(3 * 1024 * 1024 + 5, 42);
  std::mt19937 rng(7);
  Xxh3 hash;
  for (size_t done = 0; done < bytes.size();) {
    size_t n = std::min<size_t>(bytes.size() - done, rng() % 70000);
    hash.update(bytes.data() + done, n);
    done += n;
  }
  EXPECT_EQ(hash.digest(), XXH3_64bits(bytes.data(), bytes.size()));
  EXPECT_EQ(hash.digest(), hash.digest()) << "digest() does not consume the state";
}

TEST(Events, RecordHasStableFields) {
  start_event_capture();
  emit_event(EventLevel::kWarning, "sync.disk.warning", "disk 81% full", {{"percent", 81}});
  auto events = stop_event_capture();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["event"], "sync.disk.warning");
  EXPECT_EQ(events[0]["level"], "warning");
  EXPECT_EQ(events[0]["msg"], "disk 81% full");
  EXPECT_EQ(events[0]["percent"], 81);
  EXPECT_TRUE(events[0]["ts"].is_string());
}

}  // namespace
}  // namespace warden
