// Runtime CPU feature detection (x86-64: CPUID + XGETBV). Portable: on other
// architectures every x86 feature reports false.
#pragma once

namespace vae {

struct CpuFeatures {
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool os_saves_ymm = false;  // XCR0 has SSE and AVX state bits (OS context-switches YMM)
  bool avx512f = false;
  bool os_saves_zmm = false;  // XCR0 also has the opmask and both ZMM state bits
};

// Detected once, then cached (thread-safe).
const CpuFeatures& cpu_features();

// True when the CPU has AVX2 and FMA and the OS saves YMM state (XGETBV).
// Also declared in gemm.h. The environment variable VAE_DISABLE_AVX2=1 forces
// false (to test the portable path inside the full addon).
bool cpu_has_avx2_fma();

// True when cpu_has_avx2_fma() and the CPU has AVX-512F and the OS saves ZMM
// and opmask state. VAE_DISABLE_AVX512=1 forces false (the AVX2 kernels then run).
bool cpu_has_avx512f();

}  // namespace vae
