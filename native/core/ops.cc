#include "core/ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/activation_backward.h"
#include "core/gemm.h"
#include "core/thread_pool.h"

namespace vae {

// ---- dense ------------------------------------------------------------------

void dense_forward(float* out, const float* in, const float* W, const float* b, int B, int K, int N,
                   int threads, bool relu, int ldw, const PackedMatrix* packed_w) {
  GemmArgs g;
  g.M = B; g.N = N; g.K = K;
  g.A = in; g.lda = K;
  g.B = W; g.ldb = ldw > 0 ? ldw : N;
  g.beta = 0.0f;
  g.C = out; g.ldc = N;
  g.bias = b;
  g.act = relu ? GemmActivation::Relu : GemmActivation::None;
  g.packed_b = packed_w;
  sgemm(g, threads);
}

void dense_backward_weights(float* dW, const float* dout, const float* in, int B, int K, int N, int threads,
                            bool accumulate, int ld_in, const PackedMatrix* packed_dout) {
  // dW[K,N] (+)= in^T[K,B] dout[B,N]
  GemmArgs g;
  g.trans_a = Trans::T;
  g.M = K; g.N = N; g.K = B;
  g.A = in; g.lda = ld_in > 0 ? ld_in : K;
  g.B = dout; g.ldb = N;
  g.beta = accumulate ? 1.0f : 0.0f;
  g.C = dW; g.ldc = N;
  g.packed_b = packed_dout;
  sgemm(g, threads);
}

void dense_backward_bias(float* db, const float* dout, int B, int N, int threads, bool accumulate) {
  // db[N] (+)= column sums of dout, split over columns (each sum stays in one thread, in row order).
  parallel_for_range(N, B * static_cast<int64_t>(N) >= (1 << 15) ? threads : 1, 64, [&](long long j0, long long j1) {
    if (!accumulate) std::fill(db + j0, db + j1, 0.0f);
    for (int r = 0; r < B; r++) {
      const float* row = dout + static_cast<int64_t>(r) * N;
      for (long long j = j0; j < j1; j++) db[j] += row[j];
    }
  });
}

void dense_backward_input(float* din, const float* dout, const float* W, int B, int K, int N, int threads,
                          const float* relu_out, const PackedMatrix* packed_wt) {
  // din[B,K] = dout[B,N] W^T[N,K]
  GemmArgs g;
  g.trans_b = Trans::T;
  g.M = B; g.N = K; g.K = N;
  g.A = dout; g.lda = N;
  g.B = W; g.ldb = N;
  g.beta = 0.0f;
  g.C = din; g.ldc = K;
  g.relu_out = relu_out;
  g.packed_b = packed_wt;
  sgemm(g, threads);
}

void dense_backward(float* din, float* dW, float* db, const float* dout, const float* in,
                    const float* W, int B, int K, int N, int threads, bool accumulate,
                    bool din_relu) {
  dense_backward_weights(dW, dout, in, B, K, N, threads, accumulate);
  dense_backward_bias(db, dout, B, N, threads, accumulate);
  // in [B,K] has din's shape and row stride, so it serves as the relu mask.
  if (din) dense_backward_input(din, dout, W, B, K, N, threads, din_relu ? in : nullptr);
}

// ---- activations ------------------------------------------------------------

void activation_forward(Activation act, float* out, const float* in, int64_t n) {
  switch (act) {
    case Activation::Relu:
      for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
      break;
    case Activation::LeakyRelu:
      for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : kLeakySlope * in[i];
      break;
    case Activation::Tanh:
      for (int64_t i = 0; i < n; i++) out[i] = std::tanh(in[i]);
      break;
    case Activation::Sigmoid:
      for (int64_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + std::exp(-in[i]));
      break;
    case Activation::Softplus:
      // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
      for (int64_t i = 0; i < n; i++) out[i] = std::max(in[i], 0.0f) + std::log1p(std::exp(-std::fabs(in[i])));
      break;
  }
}

namespace {
float libm_expm1(float x) { return std::expm1(x); }
}  // namespace

void activation_backward(Activation act, float* din, const float* dout, const float* out, int64_t n) {
  activation_backward_body<libm_expm1>(act, din, dout, out, n);
}

// ---- encoder head -------------------------------------------------------------

void gaussian_head_forward(float* mean, float* logvar, const float* head, int B, int d) {
  for (int r = 0; r < B; r++) {
    const float* row = head + static_cast<int64_t>(r) * 2 * d;
    std::copy(row, row + d, mean + static_cast<int64_t>(r) * d);
    std::copy(row + d, row + 2 * d, logvar + static_cast<int64_t>(r) * d);
  }
}

void gaussian_head_backward(float* dhead, const float* dmean, const float* dlogvar, int B, int d) {
  for (int r = 0; r < B; r++) {
    float* row = dhead + static_cast<int64_t>(r) * 2 * d;
    std::copy(dmean + static_cast<int64_t>(r) * d, dmean + static_cast<int64_t>(r + 1) * d, row);
    std::copy(dlogvar + static_cast<int64_t>(r) * d, dlogvar + static_cast<int64_t>(r + 1) * d, row + d);
  }
}

// ---- reparameterization ----------------------------------------------------------

void reparameterize_forward(float* z, const float* mean, const float* logvar, const float* eps,
                            int64_t n) {
  for (int64_t i = 0; i < n; i++) z[i] = mean[i] + std::exp(0.5f * logvar[i]) * eps[i];
}

void reparameterize_backward(float* dmean, float* dlogvar, const float* dz, const float* logvar,
                             const float* eps, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    dmean[i] += dz[i];
    dlogvar[i] += dz[i] * eps[i] * 0.5f * std::exp(0.5f * logvar[i]);
  }
}

// ---- KL ---------------------------------------------------------------------------

double kl_forward(const float* mean, const float* logvar, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const double lv = logvar[i], mu = mean[i];
    sum += std::exp(lv) - lv - 1.0 + mu * mu;
  }
  return 0.5 * sum;
}

void kl_backward(float* dmean, float* dlogvar, const float* mean, const float* logvar, float scale,
                 int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    dmean[i] += scale * mean[i];
    dlogvar[i] += scale * 0.5f * std::expm1(logvar[i]);
  }
}

// ---- reconstruction losses --------------------------------------------------------

double bce_logits_forward(const float* logits, const float* target, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const float l = logits[i];
    sum += std::max(l, 0.0f) - target[i] * l + std::log1p(std::exp(-std::fabs(l)));
  }
  return sum;
}

void bce_logits_backward(float* dlogits, const float* logits, const float* target, float scale,
                         int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float p = 1.0f / (1.0f + std::exp(-logits[i]));
    dlogits[i] = scale * (p - target[i]);
  }
}

double gaussian_sse_forward(const float* mean, const float* target, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const double e = static_cast<double>(mean[i]) - target[i];
    sum += e * e;
  }
  return 0.5 * sum;
}

void gaussian_sse_backward(float* dmean, const float* mean, const float* target, float scale,
                           int64_t n) {
  for (int64_t i = 0; i < n; i++) dmean[i] = scale * (mean[i] - target[i]);
}

namespace {
// Lowers `first` to `candidate` if smaller (threads race to report).
void store_min(std::atomic<int64_t>& first, int64_t candidate) {
  int64_t seen = first.load();
  while (candidate < seen && !first.compare_exchange_weak(seen, candidate)) {
  }
}

// Index of the first x[i] in [begin, end) for which bad(x[i]), or -1. Whole
// blocks are tested branch-free (the loop vectorizes); only a block that fails
// is scanned element by element.
template <class Bad>
int64_t find_first_serial(const float* x, int64_t begin, int64_t end, Bad bad) {
  constexpr int64_t kBlock = 4096;
  for (int64_t start = begin; start < end; start += kBlock) {
    const int64_t stop = std::min(end, start + kBlock);
    uint32_t any = 0;
    for (int64_t i = start; i < stop; i++) any |= static_cast<uint32_t>(bad(x[i]));
    if (!any) continue;
    for (int64_t i = start; i < stop; i++)
      if (bad(x[i])) return i;
  }
  return -1;
}

// The same over x[0..n) in parallel slices: each finds its own first, the smallest wins.
template <class Bad>
int64_t find_first(const float* x, int64_t n, int threads, Bad bad) {
  std::atomic<int64_t> first{n};
  parallel_for_range(n, threads, 1 << 20, [&](long long begin, long long end) {
    const int64_t found = find_first_serial(x, begin, end, bad);
    if (found >= 0) store_min(first, found);
  });
  return first.load() < n ? first.load() : -1;
}

// Lambdas rather than functions, so that each find_first is compiled (and vectorized) with its test inlined.
// NaN or infinity: all-ones exponent bits.
const auto non_finite = [](float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x7f800000u) == 0x7f800000u;
};
const auto outside_unit = [](float v) { return !(v >= 0.0f && v <= 1.0f); };  // NaN too
}  // namespace

int64_t find_non_finite(const float* x, int64_t n, int threads) { return find_first(x, n, threads, non_finite); }

int64_t find_outside_unit(const float* x, int64_t n, int threads) { return find_first(x, n, threads, outside_unit); }

bool InputCheck::scan(const float* part, int64_t n) {
  const int64_t bad = find_first_serial(part, 0, n, non_finite);
  if (bad >= 0) store_min(first_, (part - input_) + bad);
  return !failed();
}

}  // namespace vae
