// Direct access to single ops and the matrix multiply, for gradient checks,
// SIMD/scalar parity tests and benchmarks. All [sync]. Sizes are checked
// against the typed arrays so no call can overrun a buffer.
#include <napi.h>

#include "binding/args.h"
#include "core/elementwise.h"
#include "core/fma_probe.h"
#include "core/gemm.h"
#include "core/model.h"
#include "core/ops.h"
#include "core/thread_pool.h"

namespace vae_binding {
namespace {

Napi::Value undefined(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

// sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads, backend
//       [, bias | null, relu, reluOut | null, prepack])
// backend: 0 auto, 1 scalar, 2 avx2, 3 reference triple loop, 4 avx512. The optional
// epilogue: bias [N], relu (0/1), reluOut (relu backward mask shaped like C).
// prepack: 0 reads B, 1 or 2 packs op(B) first with Shallow or Deep K blocks
// and multiplies with the packed copy (as the model's layers do).
Napi::Value sgemm(const Napi::CallbackInfo& info) {
  int64_t ta, tb, M, N, K, lda, ldb, ldc, threads, backend;
  double alpha, beta;
  F32 A, B, C;
  const int64_t kMax = 1 << 20;
  if (!get_int(info, 0, "transA", 0, 1, &ta) || !get_int(info, 1, "transB", 0, 1, &tb) ||
      !get_int(info, 2, "M", 1, kMax, &M) || !get_int(info, 3, "N", 1, kMax, &N) || !get_int(info, 4, "K", 1, kMax, &K) ||
      !get_number(info, 5, "alpha", &alpha) || !get_int(info, 7, "lda", 1, kMax, &lda) ||
      !get_int(info, 9, "ldb", 1, kMax, &ldb) || !get_number(info, 10, "beta", &beta) ||
      !get_int(info, 12, "ldc", 1, kMax, &ldc) || !get_int(info, 13, "threads", 1, 1024, &threads) ||
      !get_int(info, 14, "backend", 0, 4, &backend))
    return undefined(info);
  // Stored shapes: A is [M,K] (or [K,M] transposed), B is [K,N] (or [N,K]).
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
  if (lda < a_cols || ldb < b_cols || ldc < N) {
    throw_type(info.Env(), "lda/ldb/ldc", "leading dimensions at least the stored row lengths");
    return undefined(info);
  }
  F32 bias, relu_out;
  int64_t relu = 0, prepack = 0;
  if (!get_f32(info, 6, "A", (a_rows - 1) * lda + a_cols, &A) || !get_f32(info, 8, "B", (b_rows - 1) * ldb + b_cols, &B) ||
      !get_f32(info, 11, "C", (M - 1) * ldc + N, &C) || !get_f32(info, 15, "bias", N, &bias, true) ||
      (info.Length() > 16 && !get_int(info, 16, "relu", 0, 1, &relu)) ||
      !get_f32(info, 17, "reluOut", (M - 1) * ldc + N, &relu_out, true) ||
      (info.Length() > 18 && !get_int(info, 18, "prepack", 0, 2, &prepack)))
    return undefined(info);
  vae::GemmArgs g;
  g.trans_a = ta ? vae::Trans::T : vae::Trans::N;
  g.trans_b = tb ? vae::Trans::T : vae::Trans::N;
  g.M = static_cast<int>(M); g.N = static_cast<int>(N); g.K = static_cast<int>(K);
  g.alpha = static_cast<float>(alpha); g.beta = static_cast<float>(beta);
  g.A = A.data; g.lda = static_cast<int>(lda);
  g.B = B.data; g.ldb = static_cast<int>(ldb);
  g.C = C.data; g.ldc = static_cast<int>(ldc);
  g.bias = bias.data;
  g.act = relu ? vae::GemmActivation::Relu : vae::GemmActivation::None;
  g.relu_out = relu_out.data;
  if (backend == 2 && !vae::cpu_has_avx2_fma()) {
    throw_error(info.Env(), "ERR_INVALID_ARGUMENT", "this CPU has no AVX2/FMA (or the OS does not enable it)");
    return undefined(info);
  }
  if (backend == 4 && !vae::cpu_has_avx512f()) {
    throw_error(info.Env(), "ERR_INVALID_ARGUMENT", "this CPU has no AVX-512F (or the OS does not enable it)");
    return undefined(info);
  }
  vae::PackedMatrix packed;
  if (prepack != 0 && backend != 3) {
    packed.pack(g.B, g.ldb, g.trans_b, g.K, g.N, prepack == 2 ? vae::KBlocking::Deep : vae::KBlocking::Shallow);
    g.packed_b = &packed;
  }
  if (backend == 3) vae::sgemm_reference(g);
  else vae::sgemm(g, static_cast<int>(threads),
                  backend == 1   ? vae::GemmBackend::Scalar
                  : backend == 2 ? vae::GemmBackend::Avx2
                  : backend == 4 ? vae::GemmBackend::Avx512
                                 : vae::GemmBackend::Auto);
  return undefined(info);
}

// denseForward(out, in, W, b, B, K, N)
Napi::Value dense_forward(const Napi::CallbackInfo& info) {
  int64_t B, K, N;
  F32 out, in, W, b;
  if (!get_int(info, 4, "B", 1, 1 << 20, &B) || !get_int(info, 5, "K", 1, 1 << 20, &K) ||
      !get_int(info, 6, "N", 1, 1 << 20, &N) || !get_f32(info, 0, "out", B * N, &out) ||
      !get_f32(info, 1, "in", B * K, &in) || !get_f32(info, 2, "W", K * N, &W) || !get_f32(info, 3, "b", N, &b))
    return undefined(info);
  vae::dense_forward(out.data, in.data, W.data, b.data, int(B), int(K), int(N), 1);
  return undefined(info);
}

// denseBackward(din | null, dW, db, dout, in, W, B, K, N)
Napi::Value dense_backward(const Napi::CallbackInfo& info) {
  int64_t B, K, N;
  F32 din, dW, db, dout, in, W;
  if (!get_int(info, 6, "B", 1, 1 << 20, &B) || !get_int(info, 7, "K", 1, 1 << 20, &K) ||
      !get_int(info, 8, "N", 1, 1 << 20, &N) || !get_f32(info, 0, "din", B * K, &din, true) ||
      !get_f32(info, 1, "dW", K * N, &dW) || !get_f32(info, 2, "db", N, &db) || !get_f32(info, 3, "dout", B * N, &dout) ||
      !get_f32(info, 4, "in", B * K, &in) || !get_f32(info, 5, "W", K * N, &W))
    return undefined(info);
  vae::dense_backward(din.data, dW.data, db.data, dout.data, in.data, W.data, int(B), int(K), int(N), 1);
  return undefined(info);
}

// activationForward(kind, out, in) / activationBackward(kind, din, dout, out)
Napi::Value activation_forward(const Napi::CallbackInfo& info) {
  int64_t kind;
  F32 out, in;
  if (!get_int(info, 0, "kind", 0, 4, &kind) || !get_f32(info, 2, "in", 0, &in) ||
      !get_f32(info, 1, "out", in.length, &out))
    return undefined(info);
  vae::activation_forward(static_cast<vae::Activation>(kind), out.data, in.data, in.length);
  return undefined(info);
}
Napi::Value activation_backward(const Napi::CallbackInfo& info) {
  int64_t kind;
  F32 din, dout, out;
  if (!get_int(info, 0, "kind", 0, 4, &kind) || !get_f32(info, 2, "dout", 0, &dout) ||
      !get_f32(info, 1, "din", dout.length, &din) || !get_f32(info, 3, "out", dout.length, &out))
    return undefined(info);
  vae::activation_backward(static_cast<vae::Activation>(kind), din.data, dout.data, out.data, dout.length);
  return undefined(info);
}

// gaussianHeadForward(mean, logvar, head, B, d) / gaussianHeadBackward(dhead, dmean, dlogvar, B, d)
Napi::Value head_forward(const Napi::CallbackInfo& info) {
  int64_t B, d;
  F32 mean, logvar, head;
  if (!get_int(info, 3, "B", 1, 1 << 20, &B) || !get_int(info, 4, "d", 1, 1 << 20, &d) ||
      !get_f32(info, 0, "mean", B * d, &mean) || !get_f32(info, 1, "logvar", B * d, &logvar) ||
      !get_f32(info, 2, "head", 2 * B * d, &head))
    return undefined(info);
  vae::gaussian_head_forward(mean.data, logvar.data, head.data, int(B), int(d));
  return undefined(info);
}
Napi::Value head_backward(const Napi::CallbackInfo& info) {
  int64_t B, d;
  F32 dhead, dmean, dlogvar;
  if (!get_int(info, 3, "B", 1, 1 << 20, &B) || !get_int(info, 4, "d", 1, 1 << 20, &d) ||
      !get_f32(info, 0, "dhead", 2 * B * d, &dhead) || !get_f32(info, 1, "dmean", B * d, &dmean) ||
      !get_f32(info, 2, "dlogvar", B * d, &dlogvar))
    return undefined(info);
  vae::gaussian_head_backward(dhead.data, dmean.data, dlogvar.data, int(B), int(d));
  return undefined(info);
}

// reparameterizeForward(z, mean, logvar, eps) / reparameterizeBackward(dmean, dlogvar, dz, logvar, eps)
Napi::Value reparam_forward(const Napi::CallbackInfo& info) {
  F32 z, mean, logvar, eps;
  if (!get_f32(info, 1, "mean", 0, &mean) || !get_f32(info, 0, "z", mean.length, &z) ||
      !get_f32(info, 2, "logvar", mean.length, &logvar) || !get_f32(info, 3, "eps", mean.length, &eps))
    return undefined(info);
  vae::reparameterize_forward(z.data, mean.data, logvar.data, eps.data, mean.length);
  return undefined(info);
}
Napi::Value reparam_backward(const Napi::CallbackInfo& info) {
  F32 dmean, dlogvar, dz, logvar, eps;
  if (!get_f32(info, 2, "dz", 0, &dz) || !get_f32(info, 0, "dmean", dz.length, &dmean) ||
      !get_f32(info, 1, "dlogvar", dz.length, &dlogvar) || !get_f32(info, 3, "logvar", dz.length, &logvar) ||
      !get_f32(info, 4, "eps", dz.length, &eps))
    return undefined(info);
  vae::reparameterize_backward(dmean.data, dlogvar.data, dz.data, logvar.data, eps.data, dz.length);
  return undefined(info);
}

// klForward(mean, logvar) -> number / klBackward(dmean, dlogvar, mean, logvar, scale)
Napi::Value kl_forward(const Napi::CallbackInfo& info) {
  F32 mean, logvar;
  if (!get_f32(info, 0, "mean", 0, &mean) || !get_f32(info, 1, "logvar", mean.length, &logvar)) return undefined(info);
  return Napi::Number::New(info.Env(), vae::kl_forward(mean.data, logvar.data, mean.length));
}
Napi::Value kl_backward(const Napi::CallbackInfo& info) {
  F32 dmean, dlogvar, mean, logvar;
  double scale;
  if (!get_f32(info, 2, "mean", 0, &mean) || !get_f32(info, 0, "dmean", mean.length, &dmean) ||
      !get_f32(info, 1, "dlogvar", mean.length, &dlogvar) || !get_f32(info, 3, "logvar", mean.length, &logvar) ||
      !get_number(info, 4, "scale", &scale))
    return undefined(info);
  vae::kl_backward(dmean.data, dlogvar.data, mean.data, logvar.data, float(scale), mean.length);
  return undefined(info);
}

// lossForward(kind, pred, target) -> number; lossBackward(kind, dpred, pred, target, scale)
// kind: 0 bernoulli (BCE from logits), 1 gaussian (SSE / 2)
Napi::Value loss_forward(const Napi::CallbackInfo& info) {
  int64_t kind;
  F32 pred, target;
  if (!get_int(info, 0, "kind", 0, 1, &kind) || !get_f32(info, 1, "pred", 0, &pred) ||
      !get_f32(info, 2, "target", pred.length, &target))
    return undefined(info);
  const double sum = kind == 0 ? vae::bce_logits_forward(pred.data, target.data, pred.length)
                               : vae::gaussian_sse_forward(pred.data, target.data, pred.length);
  return Napi::Number::New(info.Env(), sum);
}
Napi::Value loss_backward(const Napi::CallbackInfo& info) {
  int64_t kind;
  F32 dpred, pred, target;
  double scale;
  if (!get_int(info, 0, "kind", 0, 1, &kind) || !get_f32(info, 2, "pred", 0, &pred) ||
      !get_f32(info, 1, "dpred", pred.length, &dpred) || !get_f32(info, 3, "target", pred.length, &target) ||
      !get_number(info, 4, "scale", &scale))
    return undefined(info);
  if (kind == 0) vae::bce_logits_backward(dpred.data, pred.data, target.data, float(scale), pred.length);
  else vae::gaussian_sse_backward(dpred.data, pred.data, target.data, float(scale), pred.length);
  return undefined(info);
}

// kernel: 0 auto, 1 portable, 2 avx2
bool get_kernel(const Napi::CallbackInfo& info, size_t index, vae::Kernel* out) {
  int64_t k;
  if (!get_int(info, index, "kernel", 0, 2, &k)) return false;
  if (k == 2 && !vae::cpu_has_avx2_fma()) {
    throw_error(info.Env(), "ERR_INVALID_ARGUMENT", "this CPU has no AVX2/FMA (or the OS does not enable it)");
    return false;
  }
  *out = k == 0 ? vae::Kernel::Auto : k == 1 ? vae::Kernel::Portable : vae::Kernel::Avx2;
  return true;
}

// threadScratchFloats() -> size of the calling thread's inference scratch, in floats
Napi::Value thread_scratch_floats(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(vae::thread_inference_scratch_floats()));
}

// activationFused(kind, out, in, kernel)
Napi::Value activation_fused(const Napi::CallbackInfo& info) {
  int64_t kind;
  F32 out, in;
  vae::Kernel kernel;
  if (!get_int(info, 0, "kind", 0, 4, &kind) || !get_f32(info, 2, "in", 0, &in) ||
      !get_f32(info, 1, "out", in.length, &out) || !get_kernel(info, 3, &kernel))
    return undefined(info);
  vae::activation_fused(static_cast<vae::Activation>(kind), out.data, in.data, in.length, kernel);
  return undefined(info);
}

// activationBackwardFused(kind, din, dout, out, kernel)
Napi::Value activation_backward_fused(const Napi::CallbackInfo& info) {
  int64_t kind;
  F32 din, dout, out;
  vae::Kernel kernel;
  if (!get_int(info, 0, "kind", 0, 4, &kind) || !get_f32(info, 2, "dout", 0, &dout) ||
      !get_f32(info, 1, "din", dout.length, &din) || !get_f32(info, 3, "out", dout.length, &out) ||
      !get_kernel(info, 4, &kernel))
    return undefined(info);
  vae::activation_backward_fused(static_cast<vae::Activation>(kind), din.data, dout.data, out.data, dout.length, kernel);
  return undefined(info);
}

// bceFused(dpred, pred, target, scale, kernel) -> loss sum
Napi::Value bce_fused(const Napi::CallbackInfo& info) {
  F32 dpred, pred, target;
  double scale;
  vae::Kernel kernel;
  if (!get_f32(info, 1, "pred", 0, &pred) || !get_f32(info, 0, "dpred", pred.length, &dpred) ||
      !get_f32(info, 2, "target", pred.length, &target) || !get_number(info, 3, "scale", &scale) ||
      !get_kernel(info, 4, &kernel))
    return undefined(info);
  return Napi::Number::New(info.Env(), vae::bce_logits_fused(dpred.data, pred.data, target.data, float(scale), pred.length, 1, kernel));
}

// latentForward(mean, logvar, z, head, eps, B, d, kernel) -> KL sum
Napi::Value latent_forward(const Napi::CallbackInfo& info) {
  F32 mean, logvar, z, head, eps;
  int64_t B, d;
  vae::Kernel kernel;
  if (!get_int(info, 5, "B", 1, 1 << 20, &B) || !get_int(info, 6, "d", 1, 1 << 20, &d) ||
      !get_f32(info, 0, "mean", B * d, &mean) || !get_f32(info, 1, "logvar", B * d, &logvar) ||
      !get_f32(info, 2, "z", B * d, &z) || !get_f32(info, 3, "head", 2 * B * d, &head) ||
      !get_f32(info, 4, "eps", B * d, &eps) || !get_kernel(info, 7, &kernel))
    return undefined(info);
  return Napi::Number::New(info.Env(), vae::latent_forward_fused(mean.data, logvar.data, z.data, head.data, eps.data,
                                                                 int(B), int(d), kernel));
}

// latentBackward(dhead, dz, mean, logvar, eps, klScale, B, d, kernel)
Napi::Value latent_backward(const Napi::CallbackInfo& info) {
  F32 dhead, dz, mean, logvar, eps;
  double kl_scale;
  int64_t B, d;
  vae::Kernel kernel;
  if (!get_int(info, 6, "B", 1, 1 << 20, &B) || !get_int(info, 7, "d", 1, 1 << 20, &d) ||
      !get_f32(info, 0, "dhead", 2 * B * d, &dhead) || !get_f32(info, 1, "dz", B * d, &dz) ||
      !get_f32(info, 2, "mean", B * d, &mean) || !get_f32(info, 3, "logvar", B * d, &logvar) ||
      !get_f32(info, 4, "eps", B * d, &eps) || !get_number(info, 5, "klScale", &kl_scale) || !get_kernel(info, 8, &kernel))
    return undefined(info);
  vae::latent_backward_fused(dhead.data, dz.data, mean.data, logvar.data, eps.data, float(kl_scale), int(B), int(d), kernel);
  return undefined(info);
}

// adamUpdate(params, grads, m, v, {learningRate, beta1, beta2, epsilon, weightDecay}, step, threads, kernel)
Napi::Value adam_update(const Napi::CallbackInfo& info) {
  F32 params, grads, m, v;
  int64_t step, threads;
  if (!get_f32(info, 0, "params", 0, &params) || !get_f32(info, 1, "grads", params.length, &grads) ||
      !get_f32(info, 2, "m", params.length, &m) || !get_f32(info, 3, "v", params.length, &v) ||
      !get_int(info, 5, "step", 1, int64_t(1) << 52, &step) || !get_int(info, 6, "threads", 1, 1024, &threads))
    return undefined(info);
  vae::Kernel kernel = vae::Kernel::Auto;
  if (!info[7].IsUndefined() && !get_kernel(info, 7, &kernel)) return undefined(info);
  vae::AdamHyper hyper;
  if (!get_adam_hyper(info, 4, &hyper)) return undefined(info);
  vae::adam_update_fused(params.data, grads.data, m.data, v.data, params.length, hyper, step, int(threads), kernel);
  return undefined(info);
}

// fmaPeak(threads, seconds) -> GFLOP/s of independent FMA chains on `threads` threads.
Napi::Value fma_peak(const Napi::CallbackInfo& info) {
  int64_t threads;
  double seconds;
  if (!get_int(info, 0, "threads", 1, 1024, &threads) || !get_number(info, 1, "seconds", &seconds)) return undefined(info);
  if (seconds <= 0 || seconds > 60) {
    throw_type(info.Env(), "seconds", "a number in (0, 60]");
    return undefined(info);
  }
  return Napi::Number::New(info.Env(), vae::measure_fma_peak_gflops(static_cast<int>(threads), seconds));
}

Napi::Value cpu_info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx2Fma", Napi::Boolean::New(info.Env(), vae::cpu_has_avx2_fma()));
  o.Set("avx512f", Napi::Boolean::New(info.Env(), vae::cpu_has_avx512f()));
  o.Set("gemmBackend", Napi::String::New(info.Env(), vae::gemm_backend_name()));
  o.Set("hardwareThreads", Napi::Number::New(info.Env(), vae::hardware_threads()));
  return o;
}

}  // namespace

void register_ops(Napi::Env env, Napi::Object exports) {
  Napi::Object ops = Napi::Object::New(env);
  ops.Set("sgemm", Napi::Function::New(env, sgemm, "sgemm"));
  ops.Set("denseForward", Napi::Function::New(env, dense_forward, "denseForward"));
  ops.Set("denseBackward", Napi::Function::New(env, dense_backward, "denseBackward"));
  ops.Set("activationForward", Napi::Function::New(env, activation_forward, "activationForward"));
  ops.Set("activationBackward", Napi::Function::New(env, activation_backward, "activationBackward"));
  ops.Set("gaussianHeadForward", Napi::Function::New(env, head_forward, "gaussianHeadForward"));
  ops.Set("gaussianHeadBackward", Napi::Function::New(env, head_backward, "gaussianHeadBackward"));
  ops.Set("reparameterizeForward", Napi::Function::New(env, reparam_forward, "reparameterizeForward"));
  ops.Set("reparameterizeBackward", Napi::Function::New(env, reparam_backward, "reparameterizeBackward"));
  ops.Set("klForward", Napi::Function::New(env, kl_forward, "klForward"));
  ops.Set("klBackward", Napi::Function::New(env, kl_backward, "klBackward"));
  ops.Set("lossForward", Napi::Function::New(env, loss_forward, "lossForward"));
  ops.Set("lossBackward", Napi::Function::New(env, loss_backward, "lossBackward"));
  ops.Set("adamUpdate", Napi::Function::New(env, adam_update, "adamUpdate"));
  ops.Set("threadScratchFloats", Napi::Function::New(env, thread_scratch_floats, "threadScratchFloats"));
  ops.Set("activationFused", Napi::Function::New(env, activation_fused, "activationFused"));
  ops.Set("activationBackwardFused", Napi::Function::New(env, activation_backward_fused, "activationBackwardFused"));
  ops.Set("bceFused", Napi::Function::New(env, bce_fused, "bceFused"));
  ops.Set("latentForward", Napi::Function::New(env, latent_forward, "latentForward"));
  ops.Set("latentBackward", Napi::Function::New(env, latent_backward, "latentBackward"));
  ops.Set("fmaPeak", Napi::Function::New(env, fma_peak, "fmaPeak"));
  exports.Set("ops", ops);
  exports.Set("cpuInfo", Napi::Function::New(env, cpu_info, "cpuInfo"));
}

}  // namespace vae_binding
