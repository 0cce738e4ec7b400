// Runtime CPU feature detection (x86-64: CPUID + XGETBV). Portable: on other
// architectures every x86 feature reports false.
#pragma once

namespace vae {

struct CpuFeatures {
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool os_saves_ymm = false;  // XCR0 has SSE and AVX state bits (OS context-switches YMM)
};

// Detected once, then cached (thread-safe).
const CpuFeatures& cpu_features();

// True when the CPU has AVX2 and FMA and the OS saves YMM state (XGETBV).
// Also declared in gemm.h. The environment variable VAE_DISABLE_AVX2=1 forces
// false (to test the portable path inside the full addon).
bool cpu_has_avx2_fma();

}  // namespace vae
