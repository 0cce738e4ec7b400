// The layers of a VAE as forward/backward pairs (llm.c style).
// Conventions: row-major; B = rows in the batch. Backward functions ADD into
// parameter gradients (dW, db) so zeroing is the caller's job; input gradients
// are overwritten unless stated. Losses return sums over the batch; the caller
// divides by B (losses are per-sample means, sums over input dimensions).
#pragma once
#include <atomic>
#include <cstdint>

namespace vae {

class PackedMatrix;

enum class Activation : int { Relu = 0, LeakyRelu = 1, Tanh = 2, Sigmoid = 3, Softplus = 4 };
constexpr float kLeakySlope = 0.01f;

// ---- dense layer: out = in W + b ------------------------------------------
// out [B,N], in [B,K], W [K,N] with row stride ldw (0 means N; a larger stride
// reads the first N columns of a wider matrix), b [N]. With relu, the bias and
// relu are applied in the matrix multiply's epilogue (one pass over out).
// packed_w: W prepacked for the matrix multiply (or nullptr).
void dense_forward(float* out, const float* in, const float* W, const float* b, int B, int K, int N,
                   int threads, bool relu = false, int ldw = 0, const PackedMatrix* packed_w = nullptr);
// din [B,K] (overwritten; nullptr to skip), dW [K,N] (+=), db [N] (+=),
// dout [B,N], in [B,K], W [K,N]. accumulate = false overwrites dW and db
// instead, which saves zeroing the gradient block when each layer's gradient
// is written exactly once per step (the training loop). din_relu: when `in`
// is the output of a relu, passing it here also applies relu's backward to
// din (in the matrix multiply's epilogue), so din is the gradient w.r.t. the
// relu's input.
void dense_backward(float* din, float* dW, float* db, const float* dout, const float* in,
                    const float* W, int B, int K, int N, int threads, bool accumulate = true,
                    bool din_relu = false);
// The three parts of dense_backward, for callers that split them up (the
// training step computes input gradients by rows and weight gradients by
// pieces of W):
// dW [K,N] (+)= in^T dout, where in's row stride is ld_in (0 means K; a
// larger one reads K columns of a wider input, e.g. some rows of dW);
// packed_dout: dout prepacked as the product's op(B) (or nullptr);
void dense_backward_weights(float* dW, const float* dout, const float* in, int B, int K, int N, int threads,
                            bool accumulate, int ld_in = 0, const PackedMatrix* packed_dout = nullptr);
// db [N] (+)= column sums of dout, each added in row order;
void dense_backward_bias(float* db, const float* dout, int B, int N, int threads, bool accumulate);
// din [B,K] = dout W^T, zeroed where relu_out [B,K] <= 0 when relu_out is
// given (relu's backward); packed_wt: W^T prepacked (or nullptr).
void dense_backward_input(float* din, const float* dout, const float* W, int B, int K, int N, int threads,
                          const float* relu_out = nullptr, const PackedMatrix* packed_wt = nullptr);

// ---- activations (elementwise over n values) -----------------------------
// Every derivative here is a function of the OUTPUT y, so only outputs are
// stored for backward. In-place (out == in) is allowed.
void activation_forward(Activation act, float* out, const float* in, int64_t n);
// din = dout * f'(x) computed from y = f(x); din may alias dout.
void activation_backward(Activation act, float* din, const float* dout, const float* out, int64_t n);

// ---- encoder head: split [B,2d] into mean [B,d] and log-variance [B,d] -----
void gaussian_head_forward(float* mean, float* logvar, const float* head, int B, int d);
// dhead [B,2d] (overwritten) from dmean [B,d], dlogvar [B,d]
void gaussian_head_backward(float* dhead, const float* dmean, const float* dlogvar, int B, int d);

// ---- reparameterization: z = mean + exp(logvar / 2) * eps --------------------
// z, mean, logvar, eps: [n] (n = B * d)
void reparameterize_forward(float* z, const float* mean, const float* logvar, const float* eps,
                            int64_t n);
// dmean += dz; dlogvar += dz * eps * exp(logvar / 2) / 2
void reparameterize_backward(float* dmean, float* dlogvar, const float* dz, const float* logvar,
                             const float* eps, int64_t n);

// ---- analytic KL(q(z|x) || N(0, I)) = 1/2 sum(exp(lv) - lv - 1 + mean^2) ---
// Returns the sum over all n = B * d entries (double accumulation).
double kl_forward(const float* mean, const float* logvar, int64_t n);
// dmean += scale * mean; dlogvar += scale * (exp(lv) - 1) / 2
void kl_backward(float* dmean, float* dlogvar, const float* mean, const float* logvar, float scale,
                 int64_t n);

// ---- Bernoulli reconstruction: binary cross-entropy from logits ------------
// sum_i [max(l,0) - x l + log1p(exp(-|l|))]: stable for any logit, valid for
// grey levels x in [0,1]. logits, x: [n]. Returns the sum (double accumulation).
double bce_logits_forward(const float* logits, const float* target, int64_t n);
// dlogits = scale * (sigmoid(l) - x) (overwritten)
void bce_logits_backward(float* dlogits, const float* logits, const float* target, float scale,
                         int64_t n);

// ---- Gaussian reconstruction with unit variance: 1/2 sum (x - mean)^2 ------
double gaussian_sse_forward(const float* mean, const float* target, int64_t n);
// dmean = scale * (mean - x) (overwritten)
void gaussian_sse_backward(float* dmean, const float* mean, const float* target, float scale,
                           int64_t n);

// ---- input checks -----------------------------------------------------------
// Index of the first NaN or infinity in x[0..n), or -1. Large arrays are
// scanned on up to `threads` threads.
int64_t find_non_finite(const float* x, int64_t n, int threads = 1);
// Index of the first value outside [0, 1] (NaN included) in x[0..n), or -1: the
// targets a bernoulli likelihood accepts.
int64_t find_outside_unit(const float* x, int64_t n, int threads = 1);

// Checks an inference call's input for NaN and infinity while the call runs:
// each block of rows scans its own rows just before its first product reads
// them, so the scan runs on every thread and brings into cache data that is
// needed next anyway, instead of being a serial pass of its own. A block
// whose scan fails, or that starts after one failed, computes nothing; every
// block still scans, so first_bad() is the input's first bad value.
class InputCheck {
 public:
  explicit InputCheck(const float* input) : input_(input) {}
  // Scans part[0..n) of the input; false if a bad value was found in it or
  // elsewhere already (the caller then skips its work).
  bool scan(const float* part, int64_t n);
  bool failed() const { return first_.load(std::memory_order_relaxed) != kNone; }
  // Flat index into the input of the first bad value, or -1.
  int64_t first_bad() const { return failed() ? first_.load() : -1; }

 private:
  static constexpr int64_t kNone = INT64_MAX;
  const float* input_;
  std::atomic<int64_t> first_{kNone};
};

// ---- Adam with bias correction and optional decoupled weight decay --------
struct AdamHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
};
// The update itself is adam_update_fused in elementwise.h.

}  // namespace vae
