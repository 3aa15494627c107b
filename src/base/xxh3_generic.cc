// XXH3 kernel for the baseline instruction set (SSE2 on x86-64).
#define WARDEN_XXH3_ISA generic
#include "xxh3_kernel.inc"
