#include "warden/checksum.h"

#include <unistd.h>

#include <vector>

#include "lazy_crypto.h"
#include "warden/error.h"
#include "warden/posix.h"

namespace warden {

struct Sha256::State {
  EVP_MD_CTX* context = nullptr;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->context = EVP_MD_CTX_new();
  if (!state_->context || EVP_DigestInit_ex(state_->context, EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorCode::kInternal, "initialise SHA-256: OpenSSL refused");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(state_->context); }

void Sha256::update(const void* data, size_t size) {
  EVP_DigestUpdate(state_->context, data, size);
}

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(state_->context, digest, &length);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

std::string sha256_file(const std::string& path) {
  UniqueFd fd = open_read(path);
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    ssize_t n;
    do {
      n = ::read(fd.get(), buffer.data(), buffer.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw IoError("read " + path + ": " + errno_text(errno), errno);
    if (n == 0) break;
    hash.update(buffer.data(), static_cast<size_t>(n));
  }
  return hash.hex_digest();
}

std::string sha256_hex(std::string_view data) {
  Sha256 hash;
  hash.update(data);
  return hash.hex_digest();
}

// The kernels are xxh3_generic.cc, xxh3_avx2.cc and xxh3_avx512.cc (one source,
// xxh3_kernel.inc, compiled with different -m flags).
#define WARDEN_DECLARE_XXH3_KERNEL(isa)                                                   \
  extern "C" unsigned long long warden_xxh3_oneshot_##isa(const void* data, size_t size); \
  extern "C" void warden_xxh3_reset_##isa(void* state);                                   \
  extern "C" void warden_xxh3_update_##isa(void* state, const void* data, size_t size);   \
  extern "C" unsigned long long warden_xxh3_digest_##isa(const void* state);              \
  extern "C" unsigned long long warden_xxh3_copy_##isa(void* dst, const void* src, size_t size);
WARDEN_DECLARE_XXH3_KERNEL(generic)
WARDEN_DECLARE_XXH3_KERNEL(avx2)
WARDEN_DECLARE_XXH3_KERNEL(avx512)

namespace {

struct Xxh3Kernel {
  const char* name;
  unsigned long long (*oneshot)(const void*, size_t);
  void (*reset)(void*);
  void (*update)(void*, const void*, size_t);
  unsigned long long (*digest)(const void*);
  unsigned long long (*copy)(void*, const void*, size_t);
};

constexpr Xxh3Kernel kGenericKernel{"generic",
                                    warden_xxh3_oneshot_generic,
                                    warden_xxh3_reset_generic,
                                    warden_xxh3_update_generic,
                                    warden_xxh3_digest_generic,
                                    warden_xxh3_copy_generic};
constexpr Xxh3Kernel kAvx2Kernel{"avx2",
                                 warden_xxh3_oneshot_avx2,
                                 warden_xxh3_reset_avx2,
                                 warden_xxh3_update_avx2,
                                 warden_xxh3_digest_avx2,
                                 warden_xxh3_copy_avx2};
constexpr Xxh3Kernel kAvx512Kernel{"avx512",
                                   warden_xxh3_oneshot_avx512,
                                   warden_xxh3_reset_avx512,
                                   warden_xxh3_update_avx512,
                                   warden_xxh3_digest_avx512,
                                   warden_xxh3_copy_avx512};

Xxh3Kernel choose_xxh3_kernel() {
#if defined(__x86_64__) && defined(WARDEN_XXH3_X86_KERNELS)
  // __builtin_cpu_supports also checks that the kernel saves the wider registers (XGETBV).
  if (__builtin_cpu_supports("avx512f")) return kAvx512Kernel;
  if (__builtin_cpu_supports("avx2")) return kAvx2Kernel;
#endif
  return kGenericKernel;
}

const Xxh3Kernel& xxh3_kernel() {
  static const Xxh3Kernel kernel = choose_xxh3_kernel();
  return kernel;
}

}  // namespace

uint64_t xxh3_64(const void* data, size_t size) { return xxh3_kernel().oneshot(data, size); }
uint64_t xxh3_64_copy(void* dst, const void* src, size_t size) {
  return xxh3_kernel().copy(dst, src, size);
}

Xxh3::Xxh3() { xxh3_kernel().reset(state_); }

void Xxh3::update(const void* data, size_t size) { xxh3_kernel().update(state_, data, size); }

uint64_t Xxh3::digest() const { return xxh3_kernel().digest(state_); }

const char* Xxh3::kernel_name() { return xxh3_kernel().name; }

}  // namespace warden
