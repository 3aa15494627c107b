// XXH3 kernel for avx2 (compiled with its -m flag on x86-64; see CMakeLists.txt).
#define WARDEN_XXH3_ISA avx2
#include "xxh3_kernel.inc"
