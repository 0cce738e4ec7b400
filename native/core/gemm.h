// Single-precision matrix multiply, row-major, BLAS-like semantics:
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]
// op(X) is X or X^T. lda/ldb/ldc are row strides of the stored matrices.
// beta == 0 overwrites C (C may hold garbage or NaN); beta == 1 accumulates.
// Threads split M and N only (never K), so the result is bit-identical for any
// thread count. (It depends on the K blocking: see KBlocking.)
#pragma once
#include <cstddef>

namespace vae {

enum class Trans { N, T };

// Rows of the micro-tile: a block of rows that is a multiple of it runs no
// ragged bottom tile (which computes fewer rows per k step than a full one).
constexpr int kGemmTileRows = 6;

// How deep the K blocks of a packed op(B) are. A product reading a packed B
// takes its depth from it; otherwise it uses Shallow's.
//   Shallow: at most 320 rows, so that a 320 x 16 micro-panel of B stays in
//     L1. The depth sgemm uses for a B it packs itself or reads in place, so a
//     product gives the same bits whether or not its B was packed beforehand.
//   Deep: at most 1024 rows, one block for most layer widths: each C tile is
//     loaded and stored once instead of once per block, and each micro-kernel
//     call runs 2-3x longer. With A read in place (inference, input gradients)
//     7-11% faster on 4096 x 784 x 400 than Shallow, measured; the bits differ.
enum class KBlocking { Shallow, Deep };

// A 64-byte-aligned block of floats that grows on demand (its contents are
// not kept when it grows): the storage of the packed matrices and of the
// per-thread packing buffers. Movable, not copyable.
class AlignedFloats {
 public:
  AlignedFloats() = default;
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  AlignedFloats(AlignedFloats&& other) noexcept : data_(other.data_), capacity_(other.capacity_) {
    other.data_ = nullptr;
    other.capacity_ = 0;
  }
  ~AlignedFloats() { release(); }

  // At least `floats` floats: a smaller block is replaced by one of exactly
  // `floats`. If that allocation throws, the block is left empty.
  float* reserve(size_t floats);
  float* data() const { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  void release() noexcept;
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

// op(B) [K,N] packed once for many products with the same B (the weights at
// inference): the panels sgemm would otherwise pack on every call. Repacking
// a matrix of the same shape reuses the storage, so a reader never sees it
// freed. Not copyable; 64-byte aligned.
class PackedMatrix {
 public:
  PackedMatrix() = default;
  PackedMatrix(const PackedMatrix&) = delete;
  PackedMatrix& operator=(const PackedMatrix&) = delete;
  PackedMatrix(PackedMatrix&& other) noexcept = default;

  // Packs op(B) (row stride ldb) of K x N.
  void pack(const float* B, int ldb, Trans trans, int K, int N, KBlocking blocking = KBlocking::Shallow);
  // Sizes the storage for a K x N op(B) without packing, so that parts can be
  // packed separately (e.g. by the tasks that update them) with:
  void reshape(int K, int N, KBlocking blocking = KBlocking::Shallow);
  // rows [k0, k1) of op(B) = B (row-major, row stride ldb);
  void pack_rows(const float* B, int ldb, int k0, int k1);
  // columns [n0, n1) of op(B) = W^T, i.e. rows [n0, n1) of W (row stride
  // ldw); n0 must be a multiple of 16 (a panel boundary).
  void pack_transposed_cols(const float* W, int ldw, int n0, int n1);
  int K() const { return K_; }
  int N() const { return N_; }
  // Rows of op(B) per K block (the last block may have fewer).
  int block_depth() const { return kc_; }
  // The kNR-wide column panel starting at column col of the K block starting
  // at row k0: [block depth][kNR] floats.
  const float* panel(int k0, int col) const;

 private:
  AlignedFloats storage_;
  int K_ = 0, N_ = 0, kc_ = 0, padded_n_ = 0;
};

// Avx512 is the AVX2 backend with an AVX-512F micro-kernel (bit-identical
// results, fewer instructions per multiply-add); Auto picks the widest the CPU
// and OS support (see cpu_has_avx512f, cpu_has_avx2_fma).
enum class GemmBackend { Auto, Scalar, Avx2, Avx512 };

// Optional elementwise function applied to C after the bias (fused epilogue).
enum class GemmActivation { None, Relu };

struct GemmArgs {
  Trans trans_a = Trans::N, trans_b = Trans::N;
  int M = 0, N = 0, K = 0;
  float alpha = 1.0f;
  const float* A = nullptr; int lda = 0;
  const float* B = nullptr; int ldb = 0;
  float beta = 0.0f;
  float* C = nullptr; int ldc = 0;
  // Fused epilogue, applied once per element after alpha*op(A)*op(B) + beta*C:
  //   C[i][j] += bias[j] (when bias != nullptr; bias has N entries), then act.
  const float* bias = nullptr;
  GemmActivation act = GemmActivation::None;
  // Backward of relu fused into the epilogue, applied last: C[i][j] = 0 where
  // relu_out[i * ldc + j] <= 0 (relu_out is the relu layer's output, with the
  // same shape and row stride as C). Turns dout * W^T into the input gradient
  // of the layer before, without another pass over it.
  const float* relu_out = nullptr;
  // op(B) already packed, read instead of B when its K is the product's K and
  // its N at least the product's N (the first N columns are used); B must
  // still describe the same matrix (the reference and mismatches read it).
  const PackedMatrix* packed_b = nullptr;
};

// Multi-threaded on the shared pool with at most `threads` threads (small
// problems run on the calling thread). A backend the CPU lacks falls back to
// the next narrower one (Avx512 to Avx2 to Scalar). Safe to call concurrently
// from several threads.
void sgemm(const GemmArgs& g, int threads, GemmBackend backend = GemmBackend::Auto);

// The plain triple loop (double accumulation): the oracle in tests. Honours
// bias and act too.
void sgemm_reference(const GemmArgs& g);

// True when the CPU has AVX2 and FMA and the OS saves YMM state (XGETBV).
bool cpu_has_avx2_fma();
// True when it also has AVX-512F and the OS saves ZMM state.
bool cpu_has_avx512f();

// The backend Auto selects on this machine (Avx512, Avx2 or Scalar), and its
// name ("avx512f", "avx2-fma" or "scalar").
GemmBackend gemm_auto_backend();
const char* gemm_backend_name();

}  // namespace vae
