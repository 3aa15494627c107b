// XXH3 kernel for avx512 (compiled with its -m flag on x86-64; see CMakeLists.txt).
#define WARDEN_XXH3_ISA avx512
#include "xxh3_kernel.inc"
