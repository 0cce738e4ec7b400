// SIMD building blocks: one tiny "ops" struct per instruction set, mapping
// load/store/broadcast/fma/... onto that ISA. Kernels are templates over the
// ops struct, so each kernel is written once (ggml-style) and instantiated for
// every backend.
//
// Build model: the project compiles with plain -O3 (no -mavx2) and must run on
// any x86-64, so AVX2 code is confined to functions marked VAE_TARGET_AVX2.
// GCC/Clang refuse to inline a target("avx2") function into a function without
// that target, therefore a backend entry point must be marked
//   VAE_TARGET_AVX2 VAE_FLATTEN
// which inlines the whole (default-target) template body into the AVX2 entry,
// where the AVX2 ops are then legal. Every template body that handles Vec
// values must itself be VAE_INLINE (always_inline): flatten does nothing at
// -O0 (debug and sanitizer builds), and a default-target body exchanging
// __m256 values with AVX2 code uses another calling convention and computes
// garbage. Only call Avx2Ops from such entry points, and only after checking
// cpu_has_avx2_fma().
#pragma once

// Define VAE_NO_X86_SIMD to build only the portable kernels (as on non-x86).
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(VAE_NO_X86_SIMD)
#define VAE_SIMD_X86 1
#include <immintrin.h>
#else
#define VAE_SIMD_X86 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define VAE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define VAE_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define VAE_FLATTEN __attribute__((flatten))
#define VAE_INLINE inline __attribute__((always_inline))
#define VAE_PREFETCH_WRITE(p) __builtin_prefetch((p), 1)
#define VAE_NOINLINE __attribute__((noinline))
#else  // MSVC: intrinsics are usable without target attributes
#define VAE_TARGET_AVX2
#define VAE_TARGET_AVX512
#define VAE_FLATTEN
#define VAE_INLINE __forceinline
#define VAE_PREFETCH_WRITE(p) ((void)(p))
#define VAE_NOINLINE __declspec(noinline)
#endif

namespace vae {
namespace simd {

// Portable 4-lane vector: the compiler maps it onto whatever the baseline ISA
// offers (SSE2 on x86-64, NEON on arm64). With
// GCC/Clang it is a generic vector type (vector_size), which vectorises
// reliably; elsewhere a plain array. fma is a*b+c with two roundings: a real
// fmaf() is a slow library call on CPUs without FMA.
struct PortableOps {
  static constexpr int kLanes = 4;        // 128-bit: SSE2 / NEON baseline
  static constexpr int kVecsPerPass = 2;  // 6 x 2 accumulators fit 16 registers
#if defined(__GNUC__) || defined(__clang__)
  typedef float Vec __attribute__((vector_size(16), aligned(4)));
  static VAE_INLINE Vec zero() { return Vec{} ; }
  static VAE_INLINE Vec broadcast(float x) { return Vec{} + x; }
  static VAE_INLINE Vec load(const float* p) {
    Vec r;
    __builtin_memcpy(&r, p, sizeof(r));
    return r;
  }
  static VAE_INLINE void store(float* p, Vec a) { __builtin_memcpy(p, &a, sizeof(a)); }
  static VAE_INLINE Vec add(Vec a, Vec b) { return a + b; }
  static VAE_INLINE Vec mul(Vec a, Vec b) { return a * b; }
  // a * b + c
  static VAE_INLINE Vec fma(Vec a, Vec b, Vec c) { return a * b + c; }
  static VAE_INLINE Vec max(Vec a, Vec b) { return a > b ? a : b; }
  // x where m > 0, else +0 (the backward of relu, whose output is m)
  static VAE_INLINE Vec keep_where_positive(Vec x, Vec m) { return m > Vec{} ? x : Vec{}; }
#else
  struct Vec {
    float v[kLanes];
  };
  static VAE_INLINE Vec zero() { return broadcast(0.0f); }
  static VAE_INLINE Vec broadcast(float x) {
    Vec r;
    for (int i = 0; i < kLanes; ++i) r.v[i] = x;
    return r;
  }
  static VAE_INLINE Vec load(const float* p) {
    Vec r;
    for (int i = 0; i < kLanes; ++i) r.v[i] = p[i];
    return r;
  }
  static VAE_INLINE void store(float* p, Vec a) {
    for (int i = 0; i < kLanes; ++i) p[i] = a.v[i];
  }
  static VAE_INLINE Vec add(Vec a, Vec b) {
    for (int i = 0; i < kLanes; ++i) a.v[i] += b.v[i];
    return a;
  }
  static VAE_INLINE Vec mul(Vec a, Vec b) {
    for (int i = 0; i < kLanes; ++i) a.v[i] *= b.v[i];
    return a;
  }
  // a * b + c
  static VAE_INLINE Vec fma(Vec a, Vec b, Vec c) {
    for (int i = 0; i < kLanes; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static VAE_INLINE Vec max(Vec a, Vec b) {
    for (int i = 0; i < kLanes; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return a;
  }
  static VAE_INLINE Vec keep_where_positive(Vec x, Vec m) {
    for (int i = 0; i < kLanes; ++i) x.v[i] = m.v[i] > 0.0f ? x.v[i] : 0.0f;
    return x;
  }
#endif
  // 8x8 transpose: dst[c * dst_stride + r] = rows[r][c]. Output rows are
  // written whole (8 floats) in ascending c, so with dst_stride < 8 a later
  // output row overwrites the tail of the previous one (used to pack 6-row
  // panels: lanes 6 and 7 are scratch).
  static VAE_INLINE void transpose8x8(const float* const rows[8], float* dst, long dst_stride) {
    for (int c = 0; c < 8; ++c) {
      for (int r = 0; r < 8; ++r) dst[c * dst_stride + r] = rows[r][c];
    }
  }
};

#if VAE_SIMD_X86
// AVX2 + FMA3, 8 x fp32 per register. Not always_inline on purpose (see the
// file comment): they inline once the caller is an AVX2 target.
struct Avx2Ops {
  static constexpr int kLanes = 8;
  static constexpr int kVecsPerPass = 2;  // 6 x 2 ymm accumulators fit 16 ymm
  using Vec = __m256;
  VAE_TARGET_AVX2 static inline Vec zero() { return _mm256_setzero_ps(); }
  VAE_TARGET_AVX2 static inline Vec broadcast(float x) { return _mm256_set1_ps(x); }
  VAE_TARGET_AVX2 static inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
  VAE_TARGET_AVX2 static inline void store(float* p, Vec a) { _mm256_storeu_ps(p, a); }
  VAE_TARGET_AVX2 static inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  VAE_TARGET_AVX2 static inline Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  // a * b + c, one rounding
  VAE_TARGET_AVX2 static inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  VAE_TARGET_AVX2 static inline Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  VAE_TARGET_AVX2 static inline Vec keep_where_positive(Vec x, Vec m) {
    return _mm256_and_ps(_mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ), x);
  }
  // Same contract as PortableOps::transpose8x8 (stores in ascending order).
  VAE_TARGET_AVX2 static inline void transpose8x8(const float* const rows[8], float* dst,
                                                  long dst_stride) {
    __m256 r0 = _mm256_loadu_ps(rows[0]), r1 = _mm256_loadu_ps(rows[1]);
    __m256 r2 = _mm256_loadu_ps(rows[2]), r3 = _mm256_loadu_ps(rows[3]);
    __m256 r4 = _mm256_loadu_ps(rows[4]), r5 = _mm256_loadu_ps(rows[5]);
    __m256 r6 = _mm256_loadu_ps(rows[6]), r7 = _mm256_loadu_ps(rows[7]);
    // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
    r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
    r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
    r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
    r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
    r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
    r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
    r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
    _mm256_storeu_ps(dst + 0 * dst_stride, r0);
    _mm256_storeu_ps(dst + 1 * dst_stride, r1);
    _mm256_storeu_ps(dst + 2 * dst_stride, r2);
    _mm256_storeu_ps(dst + 3 * dst_stride, r3);
    _mm256_storeu_ps(dst + 4 * dst_stride, r4);
    _mm256_storeu_ps(dst + 5 * dst_stride, r5);
    _mm256_storeu_ps(dst + 6 * dst_stride, r6);
    _mm256_storeu_ps(dst + 7 * dst_stride, r7);
  }
};

// AVX-512F, 16 x fp32 per register: only what the matrix multiply's
// micro-kernel uses (packing and the elementwise kernels stay AVX2). Its
// 16-float micro-tile row is one register instead of two, and the FMA
// broadcasts A's value from memory itself, so a k step issues 7 instructions
// (1 load of B, 6 FMAs) instead of 20 (2 loads, 6 broadcasts, 12 FMAs) for the
// same multiply-adds, in the same order: the results are bit-identical to
// Avx2Ops'. The same rules as Avx2Ops: call only from VAE_TARGET_AVX512 entry
// points, after checking cpu_has_avx512f().
struct Avx512Ops {
  static constexpr int kLanes = 16;
  static constexpr int kVecsPerPass = 1;  // a 6 x 16 tile in 6 ZMM accumulators
  using Vec = __m512;
  VAE_TARGET_AVX512 static inline Vec zero() { return _mm512_setzero_ps(); }
  VAE_TARGET_AVX512 static inline Vec broadcast(float x) { return _mm512_set1_ps(x); }
  VAE_TARGET_AVX512 static inline Vec load(const float* p) { return _mm512_loadu_ps(p); }
  VAE_TARGET_AVX512 static inline void store(float* p, Vec a) { _mm512_storeu_ps(p, a); }
  VAE_TARGET_AVX512 static inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  VAE_TARGET_AVX512 static inline Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  // a * b + c, one rounding
  VAE_TARGET_AVX512 static inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  // Same operand rule as _mm256_max_ps (b when either is NaN), so relu agrees
  // bit for bit. The masked form with every lane set is the same instruction;
  // GCC 12's _mm512_max_ps trips -Wmaybe-uninitialized in its own header.
  VAE_TARGET_AVX512 static inline Vec max(Vec a, Vec b) { return _mm512_mask_max_ps(a, 0xFFFF, a, b); }
  VAE_TARGET_AVX512 static inline Vec keep_where_positive(Vec x, Vec m) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ), x);
  }
};
#endif

}  // namespace simd
}  // namespace vae
