#include "cpu_features.h"

#include <cstdint>
#include <cstdlib>

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>
#include <intrin.h>
#define VAE_CPUID_MSVC 1
#elif defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define VAE_CPUID_GCC 1
#endif

namespace vae {

namespace {

#if defined(VAE_CPUID_MSVC) || defined(VAE_CPUID_GCC)
// regs = {eax, ebx, ecx, edx}; returns false if the leaf is not supported.
bool cpuid(unsigned leaf, unsigned subleaf, unsigned regs[4]) {
#if defined(VAE_CPUID_MSVC)
  int info[4];
  __cpuid(info, 0);
  if (static_cast<unsigned>(info[0]) < leaf) return false;
  __cpuidex(info, static_cast<int>(leaf), static_cast<int>(subleaf));
  for (int i = 0; i < 4; ++i) regs[i] = static_cast<unsigned>(info[i]);
  return true;
#else
  if (__get_cpuid_max(0, nullptr) < leaf) return false;
  __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
  return true;
#endif
}

// XCR0: which register states the OS saves on context switch. Only valid to
// call when CPUID reports OSXSAVE.
uint64_t read_xcr0() {
#if defined(VAE_CPUID_MSVC)
  return _xgetbv(0);
#else
  uint32_t lo = 0, hi = 0;
  // Inline asm rather than _xgetbv(): needs no -mxsave compile flag.
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(VAE_CPUID_MSVC) || defined(VAE_CPUID_GCC)
  unsigned r[4] = {0, 0, 0, 0};
  if (!cpuid(1, 0, r)) return f;
  const bool osxsave = (r[2] >> 27) & 1;
  f.avx = (r[2] >> 28) & 1;
  f.fma = (r[2] >> 12) & 1;
  if (osxsave) {
    const uint64_t xcr0 = read_xcr0();
    f.os_saves_ymm = (xcr0 & 0x6) == 0x6;  // bit 1 SSE state, bit 2 AVX (upper YMM) state
    // bits 5-7: opmask, upper halves of ZMM0-15, ZMM16-31
    f.os_saves_zmm = f.os_saves_ymm && (xcr0 & 0xE0) == 0xE0;
  }
  if (cpuid(7, 0, r)) {
    f.avx2 = (r[1] >> 5) & 1;
    f.avx512f = (r[1] >> 16) & 1;
  }
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

namespace {

bool disabled_by_env(const char* name) {
  const char* value = std::getenv(name);
  return value && value[0] && value[0] != '0';
}

}  // namespace

bool cpu_has_avx2_fma() {
  static const bool usable = [] {
    if (disabled_by_env("VAE_DISABLE_AVX2")) return false;
    const CpuFeatures& f = cpu_features();
    return f.avx && f.avx2 && f.fma && f.os_saves_ymm;
  }();
  return usable;
}

bool cpu_has_avx512f() {
  static const bool usable = [] {
    if (!cpu_has_avx2_fma() || disabled_by_env("VAE_DISABLE_AVX512")) return false;
    const CpuFeatures& f = cpu_features();
    return f.avx512f && f.os_saves_zmm;
  }();
  return usable;
}

}  // namespace vae
