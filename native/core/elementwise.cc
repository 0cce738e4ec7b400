#include "core/elementwise.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/activation_backward.h"
#include "core/gemm.h"
#include "core/simd.h"
#include "core/thread_pool.h"
#include "core/vec_math.h"

namespace vae {
namespace {

// ---- kernel bodies: written once, compiled for each instruction set ----------

// Sum of one block (<= 1024 values) with 8 float lanes, so the loop vectorizes
// without reassociation flags and the result does not depend on the ISA.
VAE_INLINE float bce_block(float* __restrict dlogits, const float* __restrict logits,
                           const float* __restrict target, float scale, int n) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; j++) {
      const float l = logits[i + j], x = target[i + j];
      const float e = vec_math::exp(-vec_math::abs(l));           // in (0, 1]
      const float inv = 1.0f / (1.0f + e);
      const float sigmoid = l >= 0.0f ? inv : e * inv;
      dlogits[i + j] = scale * (sigmoid - x);
      lanes[j] += (l > 0.0f ? l : 0.0f) - x * l + vec_math::log1p_unit(e);
    }
  }
  for (; i < n; i++) {
    const float l = logits[i], x = target[i];
    const float e = vec_math::exp(-vec_math::abs(l));
    const float inv = 1.0f / (1.0f + e);
    dlogits[i] = scale * ((l >= 0.0f ? inv : e * inv) - x);
    lanes[0] += (l > 0.0f ? l : 0.0f) - x * l + vec_math::log1p_unit(e);
  }
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
}

constexpr int64_t kBceBlock = 1024;

// Blocks [first, last) of the whole array; block b's sum goes to sums[b].
VAE_INLINE void bce_body(float* dlogits, const float* logits, const float* target, float scale, int64_t n,
                         int64_t first, int64_t last, double* sums) {
  for (int64_t b = first; b < last; b++) {
    const int64_t start = b * kBceBlock;
    const int count = static_cast<int>(std::min<int64_t>(kBceBlock, n - start));
    sums[b] = bce_block(dlogits + start, logits + start, target + start, scale, count);
  }
}

// Hidden-layer activations, forward (out may be in); sigmoid also serves as
// the decoder's bernoulli output. Tanh uses expm1 so that small |x| keeps its
// relative accuracy: tanh|x| = -m / (2 + m), m = expm1(-2|x|). Sigmoid takes
// the stable form of the loss kernel: e = exp(-|x|), then 1 / (1 + e) for
// x >= 0 and e / (1 + e) below.
VAE_INLINE void activation_body(Activation act, float* out, const float* in, int64_t n) {
  switch (act) {
    case Activation::Relu:
      for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
      break;
    case Activation::LeakyRelu:
      for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : kLeakySlope * in[i];
      break;
    case Activation::Tanh:
      for (int64_t i = 0; i < n; i++) {
        const float x = in[i], m = vec_math::expm1(-2.0f * vec_math::abs(x));
        const float t = -m / (2.0f + m);
        out[i] = x < 0.0f ? -t : t;
      }
      break;
    case Activation::Sigmoid:
      for (int64_t i = 0; i < n; i++) {
        const float x = in[i], e = vec_math::exp(-vec_math::abs(x));
        const float inv = 1.0f / (1.0f + e);
        out[i] = x >= 0.0f ? inv : e * inv;
      }
      break;
    case Activation::Softplus:
      // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
      for (int64_t i = 0; i < n; i++) {
        const float x = in[i];
        out[i] = (x > 0.0f ? x : 0.0f) + vec_math::log1p_unit(vec_math::exp(-vec_math::abs(x)));
      }
      break;
  }
}

VAE_INLINE void adam_body(float* __restrict params, const float* __restrict grads, float* __restrict m,
                          float* __restrict v, int64_t begin, int64_t end, AdamStep c) {
  for (int64_t i = begin; i < end; i++) {
    const float g = grads[i];
    const float mi = c.beta1 * m[i] + (1.0f - c.beta1) * g;
    const float vi = c.beta2 * v[i] + (1.0f - c.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] -= c.lr * (mi * c.correction1) / (std::sqrt(vi * c.correction2) + c.eps) + c.decay * params[i];
  }
}

// One row of the latent layer (see latent_forward_fused); returns its KL sum.
VAE_INLINE float latent_forward_row(float* __restrict mean, float* __restrict logvar, float* __restrict z,
                                    const float* __restrict head, const float* __restrict eps, int d) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  auto element = [&](int i) {
    const float mu = head[i], lv = head[d + i];
    const float sigma = vec_math::exp(0.5f * lv);  // exp(lv) = sigma^2 overflows to inf with it
    mean[i] = mu;
    logvar[i] = lv;
    z[i] = mu + sigma * eps[i];
    return sigma * sigma - lv - 1.0f + mu * mu;
  };
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    for (int j = 0; j < 8; j++) lanes[j] += element(i + j);
  }
  for (; i < d; i++) lanes[i & 7] += element(i);
  return 0.5f * (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])));
}

VAE_INLINE double latent_forward_body(float* mean, float* logvar, float* z, const float* head, const float* eps,
                                      int B, int d) {
  double kl = 0.0;
  for (int r = 0; r < B; r++) {
    const int64_t o = static_cast<int64_t>(r) * d;
    kl += latent_forward_row(mean + o, logvar + o, z + o, head + 2 * o, eps + o, d);
  }
  return kl;
}

VAE_INLINE void latent_backward_body(float* __restrict dhead, const float* __restrict dz,
                                     const float* __restrict mean, const float* __restrict logvar,
                                     const float* __restrict eps, float kl_scale, int B, int d) {
  for (int r = 0; r < B; r++) {
    const int64_t o = static_cast<int64_t>(r) * d;
    for (int i = 0; i < d; i++) {
      const float g = dz[o + i], lv = logvar[o + i];
      dhead[2 * o + i] = g + kl_scale * mean[o + i];
      dhead[2 * o + d + i] =
          g * eps[o + i] * 0.5f * vec_math::exp(0.5f * lv) + kl_scale * 0.5f * vec_math::expm1(lv);
    }
  }
}

// ---- entry points per instruction set -------------------------------------------

VAE_NOINLINE void activation_portable(Activation act, float* out, const float* in, int64_t n) {
  activation_body(act, out, in, n);
}
VAE_NOINLINE void activation_backward_portable(Activation act, float* din, const float* dout, const float* out,
                                               int64_t n) {
  activation_backward_body<vec_math::expm1>(act, din, dout, out, n);
}
VAE_NOINLINE void bce_portable(float* d, const float* l, const float* x, float s, int64_t n, int64_t first,
                               int64_t last, double* sums) {
  bce_body(d, l, x, s, n, first, last, sums);
}
VAE_NOINLINE void adam_portable(float* p, const float* g, float* m, float* v, int64_t b, int64_t e, AdamStep c) {
  adam_body(p, g, m, v, b, e, c);
}
VAE_NOINLINE double latent_forward_portable(float* m, float* lv, float* z, const float* h, const float* e, int B,
                                            int d) {
  return latent_forward_body(m, lv, z, h, e, B, d);
}
VAE_NOINLINE void latent_backward_portable(float* dh, const float* dz, const float* m, const float* lv, const float* e,
                                           float s, int B, int d) {
  latent_backward_body(dh, dz, m, lv, e, s, B, d);
}
#if VAE_SIMD_X86
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE double latent_forward_avx2(float* m, float* lv, float* z, const float* h,
                                                                   const float* e, int B, int d) {
  return latent_forward_body(m, lv, z, h, e, B, d);
}
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE void latent_backward_avx2(float* dh, const float* dz, const float* m,
                                                                  const float* lv, const float* e, float s, int B,
                                                                  int d) {
  latent_backward_body(dh, dz, m, lv, e, s, B, d);
}
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE void activation_avx2(Activation act, float* out, const float* in, int64_t n) {
  activation_body(act, out, in, n);
}
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE void activation_backward_avx2(Activation act, float* din, const float* dout,
                                                                       const float* out, int64_t n) {
  activation_backward_body<vec_math::expm1>(act, din, dout, out, n);
}
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE void bce_avx2(float* d, const float* l, const float* x, float s, int64_t n,
                                                        int64_t first, int64_t last, double* sums) {
  bce_body(d, l, x, s, n, first, last, sums);
}
VAE_TARGET_AVX2 VAE_FLATTEN VAE_NOINLINE void adam_avx2(float* p, const float* g, float* m, float* v, int64_t b,
                                                        int64_t e, AdamStep c) {
  adam_body(p, g, m, v, b, e, c);
}
#endif

bool use_avx2(Kernel kernel) {
#if VAE_SIMD_X86
  if (kernel == Kernel::Portable) return false;
  return cpu_has_avx2_fma();
#else
  (void)kernel;
  return false;
#endif
}

}  // namespace

void activation_fused(Activation act, float* out, const float* in, int64_t n, Kernel kernel) {
#if VAE_SIMD_X86
  if (use_avx2(kernel)) return activation_avx2(act, out, in, n);
#endif
  activation_portable(act, out, in, n);
}

void activation_backward_fused(Activation act, float* din, const float* dout, const float* out, int64_t n,
                               Kernel kernel) {
#if VAE_SIMD_X86
  if (use_avx2(kernel)) return activation_backward_avx2(act, din, dout, out, n);
#endif
  activation_backward_portable(act, din, dout, out, n);
}

double bce_logits_fused(float* dlogits, const float* logits, const float* target, float scale, int64_t n,
                        int threads, Kernel kernel) {
  const int64_t blocks = (n + kBceBlock - 1) / kBceBlock;
  thread_local std::vector<double> block_sums;  // grows once, then reused every batch
  if (static_cast<int64_t>(block_sums.size()) < blocks) block_sums.resize(blocks);
  double* sums = block_sums.data();
  const bool avx2 = use_avx2(kernel);
  parallel_for_range(blocks, threads, 16, [&](long long first, long long last) {
#if VAE_SIMD_X86
    if (avx2) return bce_avx2(dlogits, logits, target, scale, n, first, last, sums);
#endif
    bce_portable(dlogits, logits, target, scale, n, first, last, sums);
  });
  double total = 0.0;
  for (int64_t b = 0; b < blocks; b++) total += sums[b];
  return total;
}

double latent_forward_fused(float* mean, float* logvar, float* z, const float* head, const float* eps, int B,
                            int d, Kernel kernel) {
#if VAE_SIMD_X86
  if (use_avx2(kernel)) return latent_forward_avx2(mean, logvar, z, head, eps, B, d);
#endif
  return latent_forward_portable(mean, logvar, z, head, eps, B, d);
}

void latent_backward_fused(float* dhead, const float* dz, const float* mean, const float* logvar,
                           const float* eps, float kl_scale, int B, int d, Kernel kernel) {
#if VAE_SIMD_X86
  if (use_avx2(kernel)) return latent_backward_avx2(dhead, dz, mean, logvar, eps, kl_scale, B, d);
#endif
  latent_backward_portable(dhead, dz, mean, logvar, eps, kl_scale, B, d);
}

AdamStep adam_step_constants(const AdamHyper& h, int64_t t) {
  AdamStep c;
  c.lr = h.lr;
  c.beta1 = h.beta1;
  c.beta2 = h.beta2;
  c.eps = h.eps;
  c.correction1 = 1.0f / (1.0f - static_cast<float>(std::pow(h.beta1, static_cast<double>(t))));
  c.correction2 = 1.0f / (1.0f - static_cast<float>(std::pow(h.beta2, static_cast<double>(t))));
  c.decay = h.lr * h.weight_decay;
  return c;
}

void adam_update_fused(float* params, const float* grads, float* m, float* v, int64_t n, const AdamHyper& h,
                       int64_t t, int threads, Kernel kernel) {
  adam_update_fused(params, grads, m, v, n, adam_step_constants(h, t), threads, kernel);
}

void adam_update_fused(float* params, const float* grads, float* m, float* v, int64_t n, const AdamStep& c,
                       int threads, Kernel kernel) {
  const bool avx2 = use_avx2(kernel);
  // Contiguous chunks of whole cache lines, one per task; small blocks run inline.
  const int tasks = n >= (1 << 16) ? std::max(1, threads) : 1;
  auto body = [&](int task, int n_tasks) {
    const int64_t chunk = ((n + n_tasks - 1) / n_tasks + 15) / 16 * 16;
    const int64_t begin = std::min<int64_t>(n, chunk * task), end = std::min<int64_t>(n, begin + chunk);
#if VAE_SIMD_X86
    if (avx2) return adam_avx2(params, grads, m, v, begin, end, c);
#endif
    adam_portable(params, grads, m, v, begin, end, c);
  };
  if (tasks == 1) return body(0, 1);
  ThreadPool::shared().parallel(tasks, threads, body);
}

}  // namespace vae
