// Packed, cache-blocked SGEMM in the GotoBLAS/BLIS structure (see gemm.h).
//
//   for jc in N by kNC:                       (per thread region)
//     for pc in K by kc:        pack B[pc:pc+kc, jc:jc+nc]  -> kNR-wide panels (L3/L2)
//       for ic in M by kMC:     pack A[ic:ic+mc, pc:pc+kc]  -> kMR-tall panels (L2)
//         for jr in nc by kNR:                              B micro-panel stays in L1
//           for ir in mc by kMR:  micro-kernel: C[kMR x kNR] tile in registers
//
// Packing reads op(A)/op(B) through their transposes and strides, so no
// operand is ever transposed as a whole. Ragged edges: packed panels are
// zero-padded; a short bottom tile runs a kernel compiled for its row count;
// a narrow right tile is computed into a scratch tile and copied out.
// Tiny batches (a thread region of <= kMaxRowsUnpackedB rows) read a row-major
// op(B) in place instead of packing it; when B is packed, a row-major op(A) may
// be read in place instead (read_a_in_place).
//
// The kernels are templates over a SIMD ops struct (simd.h) and are written
// once; each backend is one flattened entry point (AVX2+FMA or portable C++;
// the AVX-512 one packs with the AVX2 ops and runs the Avx512Ops micro-kernel).
//
// Determinism: the K blocking depends only on K (and, for a prepacked B, on
// its KBlocking), tiles sit on a global
// kMR x kNR grid (thread regions start at multiples of kMR/kNR), and every C
// element is produced by the same sequence of operations wherever it lands, so
// results are bit-identical for any thread count.
#include "gemm.h"

#include <algorithm>
#include <cstddef>
#include <new>

#include "cpu_features.h"
#include "simd.h"
#include "thread_pool.h"

namespace vae {

namespace {

// Micro-tile 6 x 16: 6 x 2 accumulators + 2 B vectors + 1 A broadcast = 15 of
// the 16 YMM registers; 12 FMAs per 2 loads + 6 broadcasts. (4 x 24 measured
// the same on Zen 3; 16 divides the model's 400 and 784 exactly.)
constexpr int kMR = kGemmTileRows;  // micro-tile rows
constexpr int kNR = 16;    // micro-tile columns
constexpr int kKC = 320;   // max packed depth: B micro-panel kKC*kNR*4 = 20 KB (L1 is 32 KB)
constexpr int kKCDeep = 1024;  // max depth of KBlocking::Deep (its micro-panel, 64 KB, lives in L2)
constexpr int kMC = 144;   // packed A block rows: kMC*kKC*4 = 184 KB (L2 is 512 KB)
constexpr int kNC = 3072;  // packed B block columns: kKC*kNC*4 = 3.9 MB (L3)
static_assert(kMC % kMR == 0 && kNC % kNR == 0, "blocks must hold whole panels");
constexpr int kPackSlack = 8;  // floats pack_a may write past its block

inline int round_up(int x, int multiple) { return (x + multiple - 1) / multiple * multiple; }
inline int ceil_div(int x, int y) { return (x + y - 1) / y; }

// Depth of the K blocks for a given K and maximum depth: balanced, so every
// block but the last has this depth (e.g. K=784 -> 3 blocks of 262, not
// 320+320+144).
inline int k_block_depth(int K, int max_depth) { return ceil_div(K, ceil_div(K, max_depth)); }
inline int max_block_depth(KBlocking blocking) { return blocking == KBlocking::Deep ? kKCDeep : kKC; }

// A thread region with at most this many rows reads op(B) straight from memory
// (when op(B) = B is row-major) instead of packing it: with so few rows, the
// packed panel would be reused too few times to repay the copy (tiny batches).
constexpr int kMaxRowsUnpackedB = 32;
// Up to one packed A block of rows (e.g. a batch of 128), the copy is skipped
// too when B's rows are a whole, odd number of 16-float groups apart (the
// model's 400 and 784): then a kc x kNR micro-panel read in place spreads over
// every L1 set and stays in L1 across the block's row panels like a packed one.
// (Power-of-two strides would alias a few sets and thrash, so those pack.)

// Below this much work per extra thread the dispatch latency is not repaid.
constexpr double kMinFlopsPerThread = 4.0e5;

// Element (r, c) of op(X), where X is row-major with row stride ld.
struct OperandView {
  const float* data;
  long ld;
  bool trans;
};

// See kMaxRowsUnpackedB.
inline bool read_b_in_place(const OperandView& b, int rows) {
  if (b.trans) return false;
  if (rows <= kMaxRowsUnpackedB) return true;
  return rows <= kMC && b.ld % kNR == 0 && (b.ld / kNR) % 2 == 1;
}

// A row-major op(A) beside a packed B may be read in place by the
// micro-kernel (its rows are contiguous along k), saving the copy. (Beside a B
// read in place, two strided operands contend for L1 and the TLB: measured
// 2-9% slower, so A is packed.) The packed-A kernel runs fewer instructions
// per FMA (see micro_kernel), which repays the copy once it serves enough
// column panels, while the packed block still leaves L2 to B's panels:
// measured on 64 rows x 784 deep x 400 or 784 wide, packed A ran 1.09-1.20x as
// fast in noisy spells and the same at best; on 132 rows (a 414 KB block) at
// best 7% slower, and on 40 columns 12% slower.
constexpr int kMinPanelsPackedA = 8;
constexpr long kMaxPackedABlockFloats = 64 * 1024;  // 256 KB: half the 512 KB L2 of the Zen 3 core it was measured on
inline bool read_a_in_place(const OperandView& a, bool b_packed, int rows, int cols, int kc) {
  if (a.trans || !b_packed) return false;
  const long block = static_cast<long>(std::min(rows, kMC)) * kc;
  return ceil_div(cols, kNR) < kMinPanelsPackedA || block > kMaxPackedABlockFloats;
}

// How one K block's accumulators combine with C.
struct Epilogue {
  float alpha;
  float beta;          // 0 for "overwrite" (C not read), 1 for later K blocks
  bool alpha_is_one;
  bool beta_is_zero;
  bool beta_is_one;
  bool relu;           // only on the last K block
};

struct Problem {
  OperandView a, b;
  float* c;
  long ldc;
  int M, N, K;
  int kc;  // K block depth (balanced: every block but the last has this depth)
  float alpha, beta;
  const float* bias;
  bool relu;
  const float* relu_out;  // relu-backward mask, row stride ldc (or nullptr)
  const PackedMatrix* packed_b;
};

// Rows [m0, m1) x columns [n0, n1) of C, computed by one thread.
struct Region {
  int m0, m1, n0, n1;
};

// GCC notes that the default-target template bodies below pass __m256 by value
// (-Wpsabi). Those bodies are never emitted on their own: they are
// always_inline (VAE_INLINE) into the AVX2 entry points, so the note does not
// apply. (flatten alone is not enough: at -O0 it inlines nothing, and a
// default-target body taking __m256 from AVX2 code computes garbage.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // to the end of this file: GCC reports it at end of TU
#endif

// ---------------------------------------------------------------------------
// Packing.

// op(A)[i0:i0+mc, p0:p0+kc] -> dst[ceil(mc/kMR)][kc][kMR], rows past mc zeroed.
// May write up to kPackSlack floats past the packed block (scratch lanes).
template <class Ops>
VAE_INLINE void pack_a(const OperandView& A, int i0, int mc, int p0, int kc, float* dst) {
  for (int ip = 0; ip < mc; ip += kMR) {
    const int mr = std::min(kMR, mc - ip);
    if (!A.trans) {
      // Row i of op(A) is contiguous along k: interleave kMR row streams.
      const float* rows[kMR];
      for (int ii = 0; ii < kMR; ++ii) {
        rows[ii] = A.data + static_cast<long>(i0 + ip + std::min(ii, mr - 1)) * A.ld + p0;
      }
      if (mr == kMR) {
        // 8 k at a time: transpose 6 rows (+2 repeated as scratch) x 8 k; the
        // overlapping 8-float stores leave exactly the 6 real lanes per k.
        static_assert(kMR <= 8, "transpose covers at most 8 rows");
        int k = 0;
        for (; k + 8 <= kc; k += 8) {
          const float* block[8];
          for (int q = 0; q < 8; ++q) block[q] = rows[q < kMR ? q : kMR - 1] + k;
          Ops::transpose8x8(block, dst + k * kMR, kMR);
        }
        for (; k < kc; ++k) {
          for (int ii = 0; ii < kMR; ++ii) dst[k * kMR + ii] = rows[ii][k];
        }
      } else {
        for (int k = 0; k < kc; ++k) {
          for (int ii = 0; ii < kMR; ++ii) dst[k * kMR + ii] = ii < mr ? rows[ii][k] : 0.0f;
        }
      }
    } else {
      // op(A)(i, k) = A[k][i]: kMR contiguous floats per k.
      const float* src = A.data + static_cast<long>(p0) * A.ld + i0 + ip;
      if (mr == kMR) {
        for (int k = 0; k < kc; ++k) {
          const float* s = src + k * A.ld;
          for (int ii = 0; ii < kMR; ++ii) dst[k * kMR + ii] = s[ii];
        }
      } else {
        for (int k = 0; k < kc; ++k) {
          const float* s = src + k * A.ld;
          for (int ii = 0; ii < kMR; ++ii) dst[k * kMR + ii] = ii < mr ? s[ii] : 0.0f;
        }
      }
    }
    dst += static_cast<long>(kc) * kMR;
  }
}

// op(B)[p0:p0+kc, j0:j0+nc] -> dst[ceil(nc/kNR)][kc][kNR], columns past nc zeroed.
template <class Ops>
VAE_INLINE void pack_b(const OperandView& B, int p0, int kc, int j0, int nc, float* dst) {
  for (int jp = 0; jp < nc; jp += kNR) {
    const int nr = std::min(kNR, nc - jp);
    if (!B.trans) {
      // Row k of op(B) is contiguous: copy kNR floats per k.
      const float* src = B.data + static_cast<long>(p0) * B.ld + j0 + jp;
      for (int k = 0; k < kc; ++k) {
        const float* s = src + k * B.ld;
        float* d = dst + k * kNR;
        if (nr == kNR) {
          for (int jj = 0; jj < kNR; jj += Ops::kLanes) Ops::store(d + jj, Ops::load(s + jj));
        } else {
          for (int jj = 0; jj < kNR; ++jj) d[jj] = jj < nr ? s[jj] : 0.0f;
        }
      }
    } else {
      // op(B)(k, j) = B[j][k]: column j of the panel is a contiguous row of B.
      // Full panels are transposed in 8x8 blocks; ragged ones element-wise.
      const float* src = B.data + static_cast<long>(j0 + jp) * B.ld + p0;
      int k = 0;
      if (nr == kNR) {
        for (; k + 8 <= kc; k += 8) {
          for (int jj = 0; jj < kNR; jj += 8) {
            const float* block[8];
            for (int q = 0; q < 8; ++q) block[q] = src + (jj + q) * B.ld + k;
            Ops::transpose8x8(block, dst + k * kNR + jj, kNR);
          }
        }
      }
      for (int jj = 0; jj < kNR; ++jj) {
        const float* s = src + jj * B.ld;
        for (int kk = k; kk < kc; ++kk) dst[kk * kNR + jj] = jj < nr ? s[kk] : 0.0f;
      }
    }
    dst += static_cast<long>(kc) * kNR;
  }
}

// ---------------------------------------------------------------------------
// One k step of a micro-tile: acc[i][:] += op(A)[i][k] * B panel row k.
// Row i's value is a[k * kMR + i] in a packed panel, rows[i][k] in place.
template <class Ops, int Rows, int kPassVecs, bool kPackedA>
VAE_INLINE void kernel_step(typename Ops::Vec (&acc)[Rows][kPassVecs], const float* a, const float* const* rows,
                            int k, const float* bp) {
  constexpr int L = Ops::kLanes;
  typename Ops::Vec bv[kPassVecs];
  for (int v = 0; v < kPassVecs; ++v) bv[v] = Ops::load(bp + v * L);
  for (int i = 0; i < Rows; ++i) {
    const typename Ops::Vec ai = Ops::broadcast(kPackedA ? a[k * kMR + i] : rows[i][k]);
    for (int v = 0; v < kPassVecs; ++v) acc[i][v] = Ops::fma(ai, bv[v], acc[i][v]);
  }
}

// Micro-kernel: C[0:Rows, 0:kNR] (row stride ldc) <- epilogue(A_panel * B_panel).
//   a: with lda == 0, a packed A panel [kc][kMR] (only the first Rows entries
//      of each k are used); otherwise Rows rows of A read in place, row stride lda
//   b: B panel [kc][kNR] with row stride b_stride (kNR when packed, ldb when not)
//   bias: kNR entries or nullptr
//   mask: relu output with row stride ldc (zeroes C where <= 0), or nullptr
// Rows < kMR serves the ragged bottom edge without wasted FMAs (tiny batches).
// Each element's arithmetic does not depend on Rows, so edges stay bit-identical.
template <class Ops, int Rows, bool kPackedA>
VAE_INLINE void micro_kernel(int kc, const float* a, long lda, const float* b, long b_stride, float* c,
                         long ldc, const Epilogue& e, const float* bias, const float* mask) {
  using Vec = typename Ops::Vec;
  constexpr int L = Ops::kLanes;
  constexpr int kTileVecs = kNR / L;  // 2 for AVX2, 4 for the 4-lane portable ops
  static_assert(kNR % L == 0, "micro-tile is whole vectors wide");
  static_assert(Rows >= 1 && Rows <= kMR, "row count out of range");

  // Start pulling the C tile into cache now; it is only touched after the k loop.
  for (int i = 0; i < Rows; ++i) {
    VAE_PREFETCH_WRITE(c + i * ldc);
    VAE_PREFETCH_WRITE(c + i * ldc + kNR - 1);
  }

  // Columns are computed in passes of kPassVecs vectors so the accumulators
  // fit the register file: AVX2 does the whole tile at once (12 YMM); the
  // portable path (16 x 128-bit registers) does two 8-column passes.
  constexpr int kPassVecs = Ops::kVecsPerPass;
  static_assert(kTileVecs % kPassVecs == 0, "passes must cover the tile");
  const Vec valpha = Ops::broadcast(e.alpha);
  const Vec vbeta = Ops::broadcast(e.beta);
  // Copies: C's stores might alias e, which would reload every flag per store.
  const bool alpha_is_one = e.alpha_is_one, beta_is_zero = e.beta_is_zero, beta_is_one = e.beta_is_one;
  const bool relu = e.relu;
  // The plain epilogues (no scaling, bias or activation: the weight gradients'
  // products) store or add the accumulators without a test per vector.
  const bool plain = alpha_is_one && (beta_is_zero || beta_is_one) && !bias && !relu && !mask;
  for (int v0 = 0; v0 < kTileVecs; v0 += kPassVecs) {
    Vec acc[Rows][kPassVecs];
    for (int i = 0; i < Rows; ++i) {
      for (int v = 0; v < kPassVecs; ++v) acc[i][v] = Ops::zero();
    }

    // In place, row i's k-th value is at a[i * lda + k]: Rows sequential
    // streams, one cache line per 16 k per row, as cheap to read as a packed
    // panel without the copy.
    const float* rows[Rows];
    for (int i = 0; i < Rows; ++i) rows[i] = a + i * lda;
    const float* bp = b + v0 * L;
    if constexpr (kPackedA) {
      // Four k steps per loop count and pointer update, at constant offsets
      // into the packed panel: fewer instructions per FMA, which is what
      // limits a short product (the weight gradients' K = batch rows) on a
      // core shared with another tenant. Measured on 144 x 400 x 128: 4% faster
      // at best, 4-20% in noisy spells. (A read in place gained nothing.)
#pragma GCC unroll 4
      for (int k = 0; k < kc; ++k) kernel_step<Ops, Rows, kPassVecs, true>(acc, a, rows, k, bp + k * b_stride);
    } else {
      for (int k = 0; k < kc; ++k) kernel_step<Ops, Rows, kPassVecs, false>(acc, a, rows, k, bp + k * b_stride);
    }

    // Fully unrolled, so that the accumulators stay in registers.
    if (plain) {
#pragma GCC unroll 8
      for (int i = 0; i < Rows; ++i) {
#pragma GCC unroll 4
        for (int v = 0; v < kPassVecs; ++v) {
          float* cp = c + i * ldc + (v0 + v) * L;
          Ops::store(cp, beta_is_zero ? acc[i][v] : Ops::add(acc[i][v], Ops::load(cp)));
        }
      }
      continue;
    }
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) {
#pragma GCC unroll 4
      for (int v = 0; v < kPassVecs; ++v) {
        const int col = (v0 + v) * L;
        float* cp = c + i * ldc + col;
        Vec r = alpha_is_one ? acc[i][v] : Ops::mul(valpha, acc[i][v]);
        if (!beta_is_zero) {
          const Vec old = Ops::load(cp);
          r = beta_is_one ? Ops::add(r, old) : Ops::fma(vbeta, old, r);
        }
        if (bias) r = Ops::add(r, Ops::load(bias + col));
        if (relu) r = Ops::max(r, Ops::zero());
        if (mask) r = Ops::keep_where_positive(r, Ops::load(mask + i * ldc + col));
        Ops::store(cp, r);
      }
    }
  }
}

// `tiles` row tiles down one column panel: tile t reads A's rows from
// t * kMR and writes C's (and reads the mask's) from row t * kMR.
template <class Ops, int Rows, bool kPackedA>
VAE_INLINE void column_of_tiles(int tiles, int kc, const float* a, long lda, const float* b, long b_stride, float* c,
                                long ldc, const Epilogue& e, const float* bias, const float* mask) {
  const long a_step = kPackedA ? static_cast<long>(kc) * kMR : kMR * lda, c_step = kMR * ldc;
  for (int t = 0; t < tiles; ++t, a += a_step, c += c_step, mask = mask ? mask + c_step : nullptr) {
    micro_kernel<Ops, Rows, kPackedA>(kc, a, lda, b, b_stride, c, ldc, e, bias, mask);
  }
}

// One compiled micro-kernel per backend and row count. Deliberately not
// inlined into the (huge, flattened) region loop: as a small function of its
// own the 12 accumulators get registers without spills. It runs a whole
// column of tiles per call, so the call's own cost is paid once per column.
// Each backend's overload (below) only adds its target attribute.
template <class Ops, int Rows>
VAE_INLINE void run_tiles_body(int tiles, int kc, const float* a, long lda, const float* b, long b_stride, float* c,
                               long ldc, const Epilogue& e, const float* bias, const float* mask) {
  if (lda == 0) {
    column_of_tiles<Ops, Rows, true>(tiles, kc, a, 0, b, b_stride, c, ldc, e, bias, mask);
  } else {
    column_of_tiles<Ops, Rows, false>(tiles, kc, a, lda, b, b_stride, c, ldc, e, bias, mask);
  }
}
template <int Rows>
VAE_FLATTEN VAE_NOINLINE void run_tiles(simd::PortableOps, int tiles, int kc, const float* a, long lda,
                                        const float* b, long b_stride, float* c, long ldc,
                                        const Epilogue& e, const float* bias, const float* mask) {
  run_tiles_body<simd::PortableOps, Rows>(tiles, kc, a, lda, b, b_stride, c, ldc, e, bias, mask);
}
#if VAE_SIMD_X86
template <int Rows>
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE void run_tiles(simd::Avx2Ops, int tiles, int kc, const float* a,
                                                        long lda, const float* b, long b_stride, float* c,
                                                        long ldc, const Epilogue& e, const float* bias,
                                                        const float* mask) {
  run_tiles_body<simd::Avx2Ops, Rows>(tiles, kc, a, lda, b, b_stride, c, ldc, e, bias, mask);
}
template <int Rows>
VAE_TARGET_AVX512 VAE_FLATTEN VAE_NOINLINE void run_tiles(simd::Avx512Ops, int tiles, int kc, const float* a,
                                                          long lda, const float* b, long b_stride, float* c,
                                                          long ldc, const Epilogue& e, const float* bias,
                                                          const float* mask) {
  run_tiles_body<simd::Avx512Ops, Rows>(tiles, kc, a, lda, b, b_stride, c, ldc, e, bias, mask);
}
#endif

// A tile of mr (1..kMR) full-width rows; lda as in micro_kernel. With mr ==
// kMR, `tiles` such tiles down the column panel (see column_of_tiles).
template <class Ops>
VAE_INLINE void rows_tile(int mr, int kc, const float* a, long lda, const float* b, long b_stride,
                      float* c, long ldc, const Epilogue& e, const float* bias, const float* mask, int tiles = 1) {
  static_assert(kMR == 6, "update the switch below");
  switch (mr) {
    case 6: run_tiles<6>(Ops{}, tiles, kc, a, lda, b, b_stride, c, ldc, e, bias, mask); break;
    case 5: run_tiles<5>(Ops{}, 1, kc, a, lda, b, b_stride, c, ldc, e, bias, mask); break;
    case 4: run_tiles<4>(Ops{}, 1, kc, a, lda, b, b_stride, c, ldc, e, bias, mask); break;
    case 3: run_tiles<3>(Ops{}, 1, kc, a, lda, b, b_stride, c, ldc, e, bias, mask); break;
    case 2: run_tiles<2>(Ops{}, 1, kc, a, lda, b, b_stride, c, ldc, e, bias, mask); break;
    default: run_tiles<1>(Ops{}, 1, kc, a, lda, b, b_stride, c, ldc, e, bias, mask); break;
  }
}

// Ragged right edge (nr < kNR): run the same kernel on a scratch tile so the
// arithmetic per element is identical to a full tile.
template <class Ops>
VAE_INLINE void edge_tile(int kc, const float* a, long lda, const float* b, long b_stride, float* c,
                      long ldc, int mr, int nr, const Epilogue& e, const float* bias,
                      const float* mask) {
  alignas(64) float tile[kMR * kNR];
  alignas(64) float tile_bias[kNR];
  alignas(64) float tile_mask[kMR * kNR];
  for (int i = 0; i < mr; ++i) {
    for (int j = 0; j < kNR; ++j) {
      tile[i * kNR + j] = (!e.beta_is_zero && j < nr) ? c[i * ldc + j] : 0.0f;
    }
  }
  if (bias) {
    for (int j = 0; j < kNR; ++j) tile_bias[j] = j < nr ? bias[j] : 0.0f;
  }
  if (mask) {
    for (int i = 0; i < mr; ++i) {
      for (int j = 0; j < kNR; ++j) tile_mask[i * kNR + j] = j < nr ? mask[i * ldc + j] : 0.0f;
    }
  }
  rows_tile<Ops>(mr, kc, a, lda, b, b_stride, tile, kNR, e, bias ? tile_bias : nullptr,
                 mask ? tile_mask : nullptr);
  for (int i = 0; i < mr; ++i) {
    for (int j = 0; j < nr; ++j) c[i * ldc + j] = tile[i * kNR + j];
  }
}

// One thread's region of C. packed_a holds kMC*kc floats, packed_b kc*round_up(nc, kNR).
// Ops packs; TileOps runs the micro-kernel.
template <class Ops, class TileOps = Ops>
VAE_INLINE void compute_region(const Problem& p, const Region& r, float* packed_a, float* packed_b) {
  const bool prepacked_b = p.packed_b != nullptr;
  const bool pack_whole_b = !prepacked_b && !read_b_in_place(p.b, r.m1 - r.m0);
  const bool a_in_place = read_a_in_place(p.a, prepacked_b || pack_whole_b, r.m1 - r.m0, r.n1 - r.n0, p.kc);
  const long lda = a_in_place ? p.a.ld : 0;
  for (int jc = r.n0; jc < r.n1; jc += kNC) {
    const int nc = std::min(kNC, r.n1 - jc);
    const int nc_full = nc / kNR * kNR;  // columns in whole kNR panels
    for (int pc = 0; pc < p.K; pc += p.kc) {
      const int kc = std::min(p.kc, p.K - pc);
      const bool first_k = pc == 0, last_k = pc + kc == p.K;
      Epilogue e;
      e.alpha = p.alpha;
      e.alpha_is_one = p.alpha == 1.0f;
      e.beta = first_k ? p.beta : 1.0f;
      e.beta_is_zero = e.beta == 0.0f;
      e.beta_is_one = e.beta == 1.0f;
      e.relu = last_k && p.relu;
      const float* bias = last_k ? p.bias : nullptr;
      const float* relu_out = last_k ? p.relu_out : nullptr;

      if (prepacked_b) {
        // nothing to pack
      } else if (pack_whole_b) {
        pack_b<Ops>(p.b, pc, kc, jc, nc, packed_b);
      } else if (nc_full < nc) {
        pack_b<Ops>(p.b, pc, kc, jc + nc_full, nc - nc_full, packed_b);  // only the ragged panel
      }

      for (int ic = r.m0; ic < r.m1; ic += kMC) {
        const int mc = std::min(kMC, r.m1 - ic);
        if (!a_in_place) pack_a<Ops>(p.a, ic, mc, pc, kc, packed_a);

        for (int jr = 0; jr < nc; jr += kNR) {
          const int nr = std::min(kNR, nc - jr);
          const float* b_panel;
          long b_stride;
          if (prepacked_b) {
            b_panel = p.packed_b->panel(pc, jc + jr);
            b_stride = kNR;
          } else if (pack_whole_b) {
            b_panel = packed_b + static_cast<long>(jr / kNR) * kc * kNR;
            b_stride = kNR;
          } else if (jr < nc_full) {
            b_panel = p.b.data + static_cast<long>(pc) * p.b.ld + jc + jr;
            b_stride = p.b.ld;
          } else {
            b_panel = packed_b;
            b_stride = kNR;
          }
          const float* tile_bias = bias ? bias + jc + jr : nullptr;

          // A row tile's A panel, and its C offset (also the mask's).
          auto a_panel = [&](int ir) {
            return a_in_place ? p.a.data + static_cast<long>(ic + ir) * p.a.ld + pc
                              : packed_a + static_cast<long>(ir / kMR) * kc * kMR;
          };
          auto c_offset = [&](int ir) { return static_cast<long>(ic + ir) * p.ldc + jc + jr; };
          // A full-width panel's whole row tiles run in one call; then the
          // ragged bottom tile, or each tile of a narrow panel.
          const int whole_tiles = nr == kNR ? mc / kMR : 0;
          if (whole_tiles) {
            rows_tile<TileOps>(kMR, kc, a_panel(0), lda, b_panel, b_stride, p.c + c_offset(0), p.ldc, e, tile_bias,
                               relu_out ? relu_out + c_offset(0) : nullptr, whole_tiles);
          }
          for (int ir = whole_tiles * kMR; ir < mc; ir += kMR) {
            const int mr = std::min(kMR, mc - ir);
            float* c = p.c + c_offset(ir);
            const float* mask = relu_out ? relu_out + c_offset(ir) : nullptr;
            if (nr == kNR) {
              rows_tile<TileOps>(mr, kc, a_panel(ir), lda, b_panel, b_stride, c, p.ldc, e, tile_bias, mask);
            } else {
              edge_tile<TileOps>(kc, a_panel(ir), lda, b_panel, b_stride, c, p.ldc, mr, nr, e, tile_bias, mask);
            }
          }
        }
      }
    }
  }
}

// Backend entry points: everything is inlined (flatten) into these, so the
// AVX2 one is compiled entirely for AVX2+FMA and the portable one for the
// baseline ISA.
#if VAE_SIMD_X86
VAE_TARGET_AVX2 VAE_FLATTEN void compute_region_avx2(const Problem& p, const Region& r,
                                                     float* packed_a, float* packed_b) {
  compute_region<simd::Avx2Ops>(p, r, packed_a, packed_b);
}
VAE_TARGET_AVX512 VAE_FLATTEN void compute_region_avx512(const Problem& p, const Region& r,
                                                         float* packed_a, float* packed_b) {
  compute_region<simd::Avx2Ops, simd::Avx512Ops>(p, r, packed_a, packed_b);
}
#endif

VAE_FLATTEN void compute_region_portable(const Problem& p, const Region& r, float* packed_a,
                                         float* packed_b) {
  compute_region<simd::PortableOps>(p, r, packed_a, packed_b);
}


// ---------------------------------------------------------------------------
// Per-thread packing buffers: grown on demand (by half again at least, so a
// slowly growing size does not reallocate every call), reused by every later
// call, so steady-state GEMMs allocate nothing.
class PackBuffer {
 public:
  float* get(size_t floats) {
    const size_t capacity = storage_.capacity();
    return floats > capacity ? storage_.reserve(std::max(floats, capacity + capacity / 2)) : storage_.data();
  }

 private:
  AlignedFloats storage_;
};

struct ThreadPackBuffers {
  PackBuffer a, b;
};

ThreadPackBuffers& thread_pack_buffers() {
  thread_local ThreadPackBuffers buffers;
  return buffers;
}


// Split the problem into a tm x tn grid of regions for `threads` threads,
// choosing the grid that minimises per-thread cost in rough cycles: compute at
// ~32 FLOP/cycle plus ~1 cycle per packed element (splitting N makes every
// thread pack its own copy of A's rows, splitting M of B's columns).
void choose_grid(int M, int N, int K, int threads, int* tm_out, int* tn_out) {
  const int m_panels = ceil_div(M, kMR), n_panels = ceil_div(N, kNR);
  double best = -1.0;
  *tm_out = 1;
  *tn_out = 1;
  for (int tm = 1; tm <= threads; ++tm) {
    if (threads % tm != 0) continue;
    const int tn = threads / tm;
    if (tm > m_panels || tn > n_panels) continue;
    const double rows = static_cast<double>(ceil_div(m_panels, tm)) * kMR;
    const double cols = static_cast<double>(ceil_div(n_panels, tn)) * kNR;
    const double cost = 2.0 * rows * cols * K / 32.0 + (rows + cols) * K;
    if (best < 0.0 || cost < best) {
      best = cost;
      *tm_out = tm;
      *tn_out = tn;
    }
  }
}

// C = beta * C (+ bias, act): the whole product is zero (K == 0 or alpha == 0).
void scale_only(const GemmArgs& g) {
  for (int i = 0; i < g.M; ++i) {
    float* c = g.C + static_cast<long>(i) * g.ldc;
    for (int j = 0; j < g.N; ++j) {
      float v = g.beta == 0.0f ? 0.0f : g.beta * c[j];
      if (g.bias) v += g.bias[j];
      if (g.act == GemmActivation::Relu) v = v > 0.0f ? v : 0.0f;
      if (g.relu_out && !(g.relu_out[static_cast<long>(i) * g.ldc + j] > 0.0f)) v = 0.0f;
      c[j] = v;
    }
  }
}

bool use_avx2(GemmBackend backend) {
#if VAE_SIMD_X86
  return backend != GemmBackend::Scalar && cpu_has_avx2_fma();
#else
  (void)backend;
  return false;
#endif
}

// The backend that runs: the one asked for, or the next narrower the CPU has.
GemmBackend resolve_backend(GemmBackend backend) {
  if (!use_avx2(backend)) return GemmBackend::Scalar;
  if (backend == GemmBackend::Avx2 || !cpu_has_avx512f()) return GemmBackend::Avx2;
  return GemmBackend::Avx512;
}

struct GemmJob {
  Problem problem;
  GemmBackend backend;  // resolved: Scalar, Avx2 or Avx512
  int tm, tn;

  void operator()(int task, int /*n_tasks*/) const {
    const int m_panels = ceil_div(problem.M, kMR), n_panels = ceil_div(problem.N, kNR);
    const int ti = task / tn, tj = task % tn;
    Region r;
    r.m0 = std::min(problem.M, m_panels * ti / tm * kMR);
    r.m1 = std::min(problem.M, m_panels * (ti + 1) / tm * kMR);
    r.n0 = std::min(problem.N, n_panels * tj / tn * kNR);
    r.n1 = std::min(problem.N, n_panels * (tj + 1) / tn * kNR);
    if (r.m0 >= r.m1 || r.n0 >= r.n1) return;

    ThreadPackBuffers& buffers = thread_pack_buffers();
    const size_t kc = static_cast<size_t>(problem.kc);
    float* packed_a = buffers.a.get(kc * kMC + kPackSlack);
    float* packed_b = buffers.b.get(kc * round_up(std::min(kNC, r.n1 - r.n0), kNR));
#if VAE_SIMD_X86
    if (backend == GemmBackend::Avx512) return compute_region_avx512(problem, r, packed_a, packed_b);
    if (backend == GemmBackend::Avx2) return compute_region_avx2(problem, r, packed_a, packed_b);
#endif
    compute_region_portable(problem, r, packed_a, packed_b);
  }
};

// Where a PackedMatrix keeps its panels (see PackedMatrix::panel).
struct PackGeometry {
  float* data;
  int K, N, kc, padded_n;
};

// Rows [k0, k1) of a row-major B into the panels: kNR floats per row and
// panel. Panel by panel, so the writes are sequential.
template <class Ops>
VAE_INLINE void pack_rows_body(const PackGeometry& g, const float* B, int ldb, int k0, int k1) {
  for (int pc = k0 / g.kc * g.kc; pc < k1; pc += g.kc) {
    const int depth = std::min(g.kc, g.K - pc), first = std::max(k0, pc), end = std::min(k1, pc + depth);
    float* block = g.data + static_cast<size_t>(pc) * g.padded_n;
    for (int col = 0; col < g.N; col += kNR) {
      const int width = std::min(kNR, g.N - col);
      float* dst = block + static_cast<size_t>(col) * depth + static_cast<size_t>(first - pc) * kNR;
      const float* src = B + static_cast<long>(first) * ldb + col;
      for (int k = first; k < end; ++k, dst += kNR, src += ldb) {
        if (width == kNR) {
          for (int j = 0; j < kNR; j += Ops::kLanes) Ops::store(dst + j, Ops::load(src + j));
        } else {
          for (int j = 0; j < kNR; ++j) dst[j] = j < width ? src[j] : 0.0f;
        }
      }
    }
  }
}

// Columns [n0, n1) of op(B) = W^T (rows of W) into the panels of every K block.
template <class Ops>
VAE_INLINE void pack_transposed_cols_body(const PackGeometry& g, const float* W, int ldw, int n0, int n1) {
  const OperandView view{W, ldw, true};
  for (int pc = 0; pc < g.K; pc += g.kc) {
    const int depth = std::min(g.kc, g.K - pc);
    float* dst = g.data + static_cast<size_t>(pc) * g.padded_n + static_cast<size_t>(n0 / kNR) * depth * kNR;
    pack_b<Ops>(view, pc, depth, n0, n1 - n0, dst);
  }
}

#if VAE_SIMD_X86
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE void pack_rows_avx2(const PackGeometry& g, const float* B, int ldb, int k0,
                                                             int k1) {
  pack_rows_body<simd::Avx2Ops>(g, B, ldb, k0, k1);
}
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE void pack_transposed_cols_avx2(const PackGeometry& g, const float* W,
                                                                        int ldw, int n0, int n1) {
  pack_transposed_cols_body<simd::Avx2Ops>(g, W, ldw, n0, n1);
}
#endif

}  // namespace

float* AlignedFloats::reserve(size_t floats) {
  if (floats > capacity_) {
    release();  // first, so that a throwing allocation leaves nothing to free twice
    data_ = static_cast<float*>(::operator new(floats * sizeof(float), std::align_val_t(64)));
    capacity_ = floats;
  }
  return data_;
}

void AlignedFloats::release() noexcept {
  if (data_) ::operator delete(data_, std::align_val_t(64));
  data_ = nullptr;
  capacity_ = 0;
}

void PackedMatrix::pack(const float* B, int ldb, Trans trans, int K, int N, KBlocking blocking) {
  reshape(K, N, blocking);
  if (trans == Trans::N) pack_rows(B, ldb, 0, K);
  else pack_transposed_cols(B, ldb, 0, N);
}

void PackedMatrix::reshape(int K, int N, KBlocking blocking) {
  const size_t floats = static_cast<size_t>(K) * round_up(N, kNR);
  storage_.reserve(floats);
  K_ = K;
  N_ = N;
  kc_ = k_block_depth(K, max_block_depth(blocking));
  padded_n_ = round_up(N, kNR);
}

// The K block starting at row pc holds its panels back to back: the same
// layout compute_region packs into, for every block at once. Copying only, so
// the portable build gives the same bits as the AVX2 one.
void PackedMatrix::pack_rows(const float* B, int ldb, int k0, int k1) {
  const PackGeometry g{storage_.data(), K_, N_, kc_, padded_n_};
#if VAE_SIMD_X86
  if (use_avx2(GemmBackend::Auto)) return pack_rows_avx2(g, B, ldb, k0, k1);
#endif
  pack_rows_body<simd::PortableOps>(g, B, ldb, k0, k1);
}

void PackedMatrix::pack_transposed_cols(const float* W, int ldw, int n0, int n1) {
  const PackGeometry g{storage_.data(), K_, N_, kc_, padded_n_};
#if VAE_SIMD_X86
  if (use_avx2(GemmBackend::Auto)) return pack_transposed_cols_avx2(g, W, ldw, n0, n1);
#endif
  pack_transposed_cols_body<simd::PortableOps>(g, W, ldw, n0, n1);
}

const float* PackedMatrix::panel(int k0, int col) const {
  const int depth = std::min(kc_, K_ - k0);
  return storage_.data() + static_cast<size_t>(k0) * padded_n_ + static_cast<size_t>(col / kNR) * depth * kNR;
}

void sgemm(const GemmArgs& g, int threads, GemmBackend backend) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0 || g.alpha == 0.0f) {
    scale_only(g);
    return;
  }

  GemmJob job;
  Problem& p = job.problem;
  p.a = {g.A, g.lda, g.trans_a == Trans::T};
  p.b = {g.B, g.ldb, g.trans_b == Trans::T};
  p.c = g.C;
  p.ldc = g.ldc;
  p.M = g.M;
  p.N = g.N;
  p.K = g.K;
  p.alpha = g.alpha;
  p.beta = g.beta;
  p.bias = g.bias;
  p.relu = g.act == GemmActivation::Relu;
  p.relu_out = g.relu_out;
  // A packed B of another shape is ignored (B itself is then read).
  const bool packed_fits = g.packed_b && g.packed_b->K() == g.K && g.packed_b->N() >= g.N;
  p.packed_b = packed_fits ? g.packed_b : nullptr;
  p.kc = p.packed_b ? p.packed_b->block_depth() : k_block_depth(g.K, kKC);
  job.backend = resolve_backend(backend);

  ThreadPool& pool = ThreadPool::shared();
  const double flops = 2.0 * g.M * g.N * g.K;
  const int worth_threads = static_cast<int>(std::min(1.0e6, std::max(1.0, flops / kMinFlopsPerThread)));
  const int n_threads = std::max(1, std::min({threads, pool.capacity(), worth_threads}));
  choose_grid(g.M, g.N, g.K, n_threads, &job.tm, &job.tn);

  const int n_tasks = job.tm * job.tn;
  if (n_tasks == 1) {
    job(0, 1);
  } else {
    pool.parallel(n_tasks, n_tasks, job);
  }
}

void sgemm_reference(const GemmArgs& g) {
  for (int i = 0; i < g.M; ++i) {
    for (int j = 0; j < g.N; ++j) {
      double sum = 0.0;
      for (int k = 0; k < g.K; ++k) {
        const float a = g.trans_a == Trans::N ? g.A[static_cast<long>(i) * g.lda + k]
                                              : g.A[static_cast<long>(k) * g.lda + i];
        const float b = g.trans_b == Trans::N ? g.B[static_cast<long>(k) * g.ldb + j]
                                              : g.B[static_cast<long>(j) * g.ldb + k];
        sum += static_cast<double>(a) * b;
      }
      float* c = g.C + static_cast<long>(i) * g.ldc + j;
      double v = g.alpha * sum;
      if (g.beta != 0.0f) v += static_cast<double>(g.beta) * *c;
      if (g.bias) v += g.bias[j];
      if (g.act == GemmActivation::Relu && v < 0.0) v = 0.0;
      if (g.relu_out && !(g.relu_out[static_cast<long>(i) * g.ldc + j] > 0.0f)) v = 0.0;
      *c = static_cast<float>(v);
    }
  }
}

GemmBackend gemm_auto_backend() { return resolve_backend(GemmBackend::Auto); }

const char* gemm_backend_name() {
  switch (gemm_auto_backend()) {
    case GemmBackend::Avx512: return "avx512f";
    case GemmBackend::Avx2: return "avx2-fma";
    default: return "scalar";
  }
}

}  // namespace vae
