// OpenSSL's libcrypto (SHA-256): every function warden calls, resolved on first use
// (include/warden/lazy_library.h) so that the executable does not load the library at start.
// Include this instead of the library's header. A function missing from this list links against the
// library directly, and the warden executable (which does not link it) fails to link: add its name
// here.
#pragma once

#include <openssl/evp.h>

#include "warden/lazy_library.h"

#define EVP_DigestFinal_ex(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kCrypto, EVP_DigestFinal_ex)(__VA_ARGS__)
#define EVP_DigestInit_ex(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kCrypto, EVP_DigestInit_ex)(__VA_ARGS__)
#define EVP_DigestUpdate(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kCrypto, EVP_DigestUpdate)(__VA_ARGS__)
#define EVP_MD_CTX_free(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kCrypto, EVP_MD_CTX_free)(__VA_ARGS__)
#define EVP_MD_CTX_new(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kCrypto, EVP_MD_CTX_new)(__VA_ARGS__)
#define EVP_sha256(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kCrypto, EVP_sha256)(__VA_ARGS__)
