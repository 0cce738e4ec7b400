// Fused, vectorized elementwise kernels of the training step. Each has a
// portable build (the scalar twin: plain C++ the compiler may vectorize for
// the baseline ISA) and an AVX2+FMA build of the same source, chosen at run
// time; the libm-based ops in ops.h are the accuracy oracle in tests.
#pragma once
#include <cstdint>

#include "core/ops.h"

namespace vae {

enum class Kernel { Auto, Portable, Avx2 };

// A hidden layer's activation, out[i] = act(in[i]) over [0, n) (out may be
// in); within about 2e-7 of the libm forms of activation_forward in ops.h.
// Sigmoid is also the decoder's bernoulli output (logits to probabilities).
void activation_fused(Activation act, float* out, const float* in, int64_t n, Kernel kernel = Kernel::Auto);
// Its backward, din = dout * act'(x) from out = act(x) (din may be dout).
void activation_backward_fused(Activation act, float* din, const float* dout, const float* out, int64_t n,
                               Kernel kernel = Kernel::Auto);

// Bernoulli loss and its gradient in one pass over logits, target: [n].
// dlogits = scale * (sigmoid(l) - x) (overwritten); returns
// sum_i [max(l,0) - x l + log1p(exp(-|l|))] (float lanes within blocks of 1024, double across).
// Blocks of 1024 values are spread over `threads` threads and their sums added
// in block order, so the result is the same for any thread count.
double bce_logits_fused(float* dlogits, const float* logits, const float* target, float scale, int64_t n,
                        int threads = 1, Kernel kernel = Kernel::Auto);

// The Gaussian latent layer of a training step, one pass each way: the
// head split, reparameterization and analytic KL of ops.h fused. head: [B,2d]
// (each row: d means, then d log-variances); eps, mean, logvar, z: [B,d].
// Writes mean, logvar and z = mean + exp(logvar / 2) * eps; returns the KL sum
// 1/2 sum(exp(lv) - lv - 1 + mean^2) (float within a row, double across rows;
// infinite once exp(lv) overflows a float).
double latent_forward_fused(float* mean, float* logvar, float* z, const float* head, const float* eps, int B,
                            int d, Kernel kernel = Kernel::Auto);
// dhead [B,2d] (overwritten) from dz [B,d]: the gradient through z plus
// kl_scale times the gradient of the KL sum.
void latent_backward_fused(float* dhead, const float* dz, const float* mean, const float* logvar,
                           const float* eps, float kl_scale, int B, int d, Kernel kernel = Kernel::Auto);

// Adam over [0, n) (bias-corrected, decoupled weight decay), on `threads` threads.
void adam_update_fused(float* params, const float* grads, float* m, float* v, int64_t n, const AdamHyper& h,
                       int64_t t, int threads, Kernel kernel = Kernel::Auto);
// The constants of Adam's step t (its bias corrections), for updating many
// small ranges of one step without recomputing them.
struct AdamStep {
  float lr, beta1, beta2, eps, correction1, correction2, decay;
};
AdamStep adam_step_constants(const AdamHyper& h, int64_t t);
void adam_update_fused(float* params, const float* grads, float* m, float* v, int64_t n, const AdamStep& step,
                       int threads, Kernel kernel = Kernel::Auto);

}  // namespace vae
