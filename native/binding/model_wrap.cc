// JS class NativeModel: a thin wrapper over vae::Model. Sync methods [sync]
// run on the calling thread (small batches); *Async methods [async] run on
// libuv's pool and return Promises. While training runs, every other method
// throws ERR_BUSY: training mutates the parameters from another thread.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <new>

#include "binding/args.h"
#include "binding/promise_worker.h"
#include "core/model.h"

namespace vae_binding {
namespace {

using vae::Model;

// trainAsync's stats: [loss, reconstruction, kl, seconds] per batch (fit.ts
// reads them with its STATS_PER_BATCH).
constexpr int64_t kStatsPerBatch = 4;

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {
                           InstanceAccessor<&NativeModel::param_count>("paramCount"),
                           InstanceMethod<&NativeModel::set_threads>("setThreads"),
                           InstanceMethod<&NativeModel::copy_params>("copyParams"),
                           InstanceMethod<&NativeModel::set_params>("setParams"),
                           InstanceMethod<&NativeModel::copy_optimizer>("copyOptimizer"),
                           InstanceMethod<&NativeModel::set_optimizer>("setOptimizer"),
                           InstanceMethod<&NativeModel::encode>("encode"),
                           InstanceMethod<&NativeModel::encode_async>("encodeAsync"),
                           InstanceMethod<&NativeModel::decode>("decode"),
                           InstanceMethod<&NativeModel::decode_async>("decodeAsync"),
                           InstanceMethod<&NativeModel::reconstruct>("reconstruct"),
                           InstanceMethod<&NativeModel::reconstruct_async>("reconstructAsync"),
                           InstanceMethod<&NativeModel::evaluate>("evaluate"),
                           InstanceMethod<&NativeModel::evaluate_async>("evaluateAsync"),
                           InstanceMethod<&NativeModel::log_likelihood_async>("logLikelihoodAsync"),
                           InstanceMethod<&NativeModel::begin_epoch>("beginEpoch"),
                           InstanceMethod<&NativeModel::train_async>("trainAsync"),
                           InstanceMethod<&NativeModel::cancel>("cancel"),
                           InstanceMethod<&NativeModel::loss_and_gradients>("lossAndGradients"),
                           InstanceMethod<&NativeModel::check_training_data_async>("checkTrainingDataAsync"),
                       });
  }

  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) {
      throw_type(env, "config", "an object");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    vae::ModelConfig c;
    c.input_dim = static_cast<int>(get_prop_number(o, "inputDim", -1));
    c.latent_dim = static_cast<int>(get_prop_number(o, "latentDim", -1));
    if (!read_layers(o, "encoderLayers", &c.encoder_layers) || !read_layers(o, "decoderLayers", &c.decoder_layers))
      return;
    c.activation = static_cast<vae::Activation>(static_cast<int>(get_prop_number(o, "activation", -1)));
    c.likelihood = static_cast<vae::Likelihood>(static_cast<int>(get_prop_number(o, "likelihood", -1)));
    c.beta = static_cast<float>(get_prop_number(o, "beta", -1));
    c.seed = static_cast<uint64_t>(get_prop_number(o, "seed", 0));
    c.threads = static_cast<int>(get_prop_number(o, "threads", 1));
    const std::string problem = vae::validate_config(c);
    if (!problem.empty()) {
      throw_error(env, "ERR_INVALID_ARGUMENT", "Invalid model config: " + problem);
      return;
    }
    try {
      model_ = std::make_unique<Model>(c);
    } catch (const std::bad_alloc&) {
      throw_error(env, "ERR_NATIVE", "out of memory while allocating the model's parameters");
    }
  }

 private:
  bool read_layers(Napi::Object o, const char* key, std::vector<int>* out) {
    Napi::Value v = o.Get(key);
    if (!v.IsArray()) {
      throw_type(Env(), key, "an array of layer widths");
      return false;
    }
    Napi::Array a = v.As<Napi::Array>();
    out->clear();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value w = a.Get(i);
      out->push_back(w.IsNumber() ? w.As<Napi::Number>().Int32Value() : -1);
    }
    return true;
  }

  // Every method but the training ones refuses to run while training.
  bool ensure_idle(Napi::Env env) {
    if (!model_) {
      throw_error(env, "ERR_NATIVE", "the model was not constructed");
      return false;
    }
    if (busy_.load()) {
      throw_error(env, "ERR_BUSY", "the model is training; wait for fit() to settle before using it");
      return false;
    }
    return true;
  }

  // Throws e unless it is empty; false if it threw (for sync calls).
  static bool ok(Napi::Env env, const TaskError& e) {
    if (e.code.empty()) return true;
    make_error(env, e).ThrowAsJavaScriptException();
    return false;
  }

  // Names the first NaN or infinity in x (rows x cols) by row and column; empty code if none.
  // Scans on the model's threads: training data can be hundreds of megabytes.
  TaskError finite_error(const char* name, const float* x, int64_t n, int cols) const {
    return non_finite_error(name, x, vae::find_non_finite(x, n, model_ ? model_->config().threads : 1), cols);
  }
  // x[bad] of x (cols wide) is NaN or infinite; empty if bad < 0.
  static TaskError non_finite_error(const std::string& name, const float* x, int64_t bad, int cols) {
    if (bad < 0) return {};
    return bad_value_error(BadValueFault::NonFinite, name, bad, cols, x[bad]);
  }

  // Runs call(check), an inference call whose row blocks scan its input `in`
  // (rows x cols) for NaN and infinity as they go (vae::InputCheck), and
  // names the first one found. Sync calls run it on the JS thread, where no
  // C++ exception may escape: a failed scratch allocation becomes an error.
  template <class Call>
  static TaskError run_checked(const std::string& name, const float* in, int cols, Call call) {
    vae::InputCheck check(in);
    try {
      call(&check);
    } catch (const std::bad_alloc&) {
      return {"ERR_NATIVE", "out of memory for the inference scratch"};
    } catch (const std::exception& e) {  // e.g. the thread pool failing to start a thread
      return {"ERR_NATIVE", e.what()};
    }
    return non_finite_error(name, in, check.first_bad(), cols);
  }

  Napi::Value param_count(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), model_ ? static_cast<double>(model_->param_count()) : 0.0);
  }

  Napi::Value set_threads(const Napi::CallbackInfo& info) {
    int64_t threads;
    if (!ensure_idle(info.Env()) || !get_int(info, 0, "threads", 1, 1024, &threads)) return info.Env().Undefined();
    model_->set_threads(static_cast<int>(threads));
    return info.Env().Undefined();
  }

  // [sync] copyParams(dst: Float32Array)
  Napi::Value copy_params(const Napi::CallbackInfo& info) {
    F32 dst;
    if (!ensure_idle(info.Env()) || !get_f32(info, 0, "params", model_->param_count(), &dst)) return info.Env().Undefined();
    std::copy(model_->params(), model_->params() + model_->param_count(), dst.data);
    return info.Env().Undefined();
  }

  // [sync] setParams(src: Float32Array)
  Napi::Value set_params(const Napi::CallbackInfo& info) {
    F32 src;
    if (!ensure_idle(info.Env()) || !get_f32(info, 0, "params", model_->param_count(), &src)) return info.Env().Undefined();
    if (!ok(info.Env(), finite_error("params", src.data, model_->param_count(), 1))) return info.Env().Undefined();
    std::copy(src.data, src.data + model_->param_count(), model_->mutable_params());
    return info.Env().Undefined();
  }

  // [sync] copyOptimizer(m, v, rngState: Uint32Array(12)) -> step
  Napi::Value copy_optimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    F32 m, v;
    const int64_t n = model_ ? model_->param_count() : 0;
    if (!ensure_idle(env) || !get_f32(info, 0, "m", n, &m) || !get_f32(info, 1, "v", n, &v)) return env.Undefined();
    if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        info[2].As<Napi::Uint32Array>().ElementLength() < 2 * vae::Rng::kStateWords) {
      throw_type(env, "rngState", "a Uint32Array of 12 elements");
      return env.Undefined();
    }
    std::copy(model_->adam_m(), model_->adam_m() + n, m.data);
    std::copy(model_->adam_v(), model_->adam_v() + n, v.data);
    uint64_t words[vae::Rng::kStateWords];
    model_->train_rng().get_state(words);
    uint32_t* out = info[2].As<Napi::Uint32Array>().Data();
    for (int i = 0; i < vae::Rng::kStateWords; i++) {
      out[2 * i] = static_cast<uint32_t>(words[i]);
      out[2 * i + 1] = static_cast<uint32_t>(words[i] >> 32);
    }
    return Napi::Number::New(env, static_cast<double>(model_->adam_step()));
  }

  // [sync] setOptimizer(m, v, rngState, step)
  Napi::Value set_optimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    F32 m, v;
    int64_t step;
    const int64_t n = model_ ? model_->param_count() : 0;
    if (!ensure_idle(env) || !get_f32(info, 0, "m", n, &m) || !get_f32(info, 1, "v", n, &v) ||
        !get_int(info, 3, "step", 0, int64_t(1) << 52, &step))
      return env.Undefined();
    if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        info[2].As<Napi::Uint32Array>().ElementLength() < 2 * vae::Rng::kStateWords) {
      throw_type(env, "rngState", "a Uint32Array of 12 elements");
      return env.Undefined();
    }
    std::copy(m.data, m.data + n, model_->adam_m());
    std::copy(v.data, v.data + n, model_->adam_v());
    const uint32_t* in = info[2].As<Napi::Uint32Array>().Data();
    uint64_t words[vae::Rng::kStateWords];
    for (int i = 0; i < vae::Rng::kStateWords; i++) words[i] = in[2 * i] | (static_cast<uint64_t>(in[2 * i + 1]) << 32);
    model_->train_rng().set_state(words);
    model_->adam_step() = step;
    return env.Undefined();
  }

  // Shared argument parsing of the inference calls: (input, rows, ...outputs).
  struct Io {
    F32 in, out, out2;
    int64_t rows = 0;
  };
  // Input (argument 0, rows x in_cols) and rows (argument 1) of an inference
  // call. Its finiteness is checked by the call itself (run_checked).
  bool parse_rows(const Napi::CallbackInfo& info, const char* in_name, int in_cols, Io* io) {
    // rows * in_cols must not overflow: at most 2^62 values.
    const int64_t max_rows = std::min<int64_t>(int64_t(1) << 40, (int64_t(1) << 62) / std::max(1, in_cols));
    return ensure_idle(info.Env()) && get_int(info, 1, "rows", 1, max_rows, &io->rows) &&
           get_f32(info, 0, in_name, io->rows * in_cols, &io->in);
  }

  // Blocks of rows write their outputs while other blocks still read the
  // input, so an output may share no memory with the input or the other
  // output: refused (naming the output) rather than computed wrong.
  struct Span {
    const char* name;
    const float* data;
    int64_t length;
  };
  static bool disjoint(Napi::Env env, Span out, std::initializer_list<Span> others) {
    for (const Span& other : others) {
      if (!overlap(out.data, out.length, other.data, other.length)) continue;
      throw_type(env, out.name, std::string("an array that shares no memory with ") + other.name);
      return false;
    }
    return true;
  }
  static bool encode_outputs_disjoint(Napi::Env env, const Io& io, int n, int d) {
    const Span x{"x", io.in.data, io.rows * n}, mean{"mean", io.out.data, io.rows * d},
        logvar{"logVar", io.out2.data, io.rows * d};
    return disjoint(env, mean, {x, logvar}) && disjoint(env, logvar, {x});
  }

  // An inference call with its arguments parsed: the task that runs it (on
  // the JS thread for the sync twin, on libuv's pool for the async one) and
  // what it returns. task is empty when parsing threw.
  struct Call {
    PromiseWorker::Task task = nullptr;
    PromiseWorker::Result result = nullptr;
  };

  // The sync twins run the call now.
  static Napi::Value run_now(Napi::Env env, const Call& call) {
    if (!call.task || !ok(env, call.task())) return env.Undefined();
    return call.result ? call.result(env) : env.Undefined();
  }

  // [sync] encode(x, rows, mean, logVar | null) / [async] encodeAsync(...) -> Promise<void>
  Call encode_call(const Napi::CallbackInfo& info) {
    Io io;
    const int n = model_ ? model_->config().input_dim : 0, d = model_ ? model_->config().latent_dim : 0;
    if (!parse_rows(info, "x", n, &io) || !get_f32(info, 2, "mean", io.rows * d, &io.out) ||
        !get_f32(info, 3, "logVar", io.rows * d, &io.out2, true) || !encode_outputs_disjoint(info.Env(), io, n, d))
      return {};
    Model* model = model_.get();
    return {[=]() {
      return run_checked("x", io.in.data, n, [&](vae::InputCheck* check) {
        model->encode(io.in.data, io.rows, io.out.data, io.out2.data, check);
      });
    }};
  }
  Napi::Value encode(const Napi::CallbackInfo& info) { return run_now(info.Env(), encode_call(info)); }
  Napi::Value encode_async(const Napi::CallbackInfo& info) { return queue(info, 4, encode_call(info)); }

  // [sync] decode(z, rows, out) / [async] decodeAsync(...) -> Promise<void>
  Call decode_call(const Napi::CallbackInfo& info) {
    Io io;
    const int n = model_ ? model_->config().input_dim : 0, d = model_ ? model_->config().latent_dim : 0;
    if (!parse_rows(info, "z", d, &io) || !get_f32(info, 2, "out", io.rows * n, &io.out) ||
        !disjoint(info.Env(), {"out", io.out.data, io.rows * n}, {{"z", io.in.data, io.rows * d}}))
      return {};
    Model* model = model_.get();
    return {[=]() {
      return run_checked("z", io.in.data, d, [&](vae::InputCheck* check) {
        model->decode(io.in.data, io.rows, io.out.data, check);
      });
    }};
  }
  Napi::Value decode(const Napi::CallbackInfo& info) { return run_now(info.Env(), decode_call(info)); }
  Napi::Value decode_async(const Napi::CallbackInfo& info) { return queue(info, 3, decode_call(info)); }

  // [sync] reconstruct(x, rows, eps | null, out) / [async] reconstructAsync(...) -> Promise<void>
  Call reconstruct_call(const Napi::CallbackInfo& info) {
    Io io;
    const int n = model_ ? model_->config().input_dim : 0, d = model_ ? model_->config().latent_dim : 0;
    if (!parse_rows(info, "x", n, &io) || !get_f32(info, 2, "eps", io.rows * d, &io.out2, true) ||
        !get_f32(info, 3, "out", io.rows * n, &io.out) ||
        !disjoint(info.Env(), {"out", io.out.data, io.rows * n},
                  {{"x", io.in.data, io.rows * n}, {"eps", io.out2.data, io.rows * d}}))
      return {};
    Model* model = model_.get();
    return {[=]() {
      const TaskError e = io.out2.data ? finite_error("eps", io.out2.data, io.rows * d, d) : TaskError{};
      if (!e.code.empty()) return e;
      return run_checked("x", io.in.data, n, [&](vae::InputCheck* check) {
        model->reconstruct(io.in.data, io.rows, io.out2.data, io.out.data, check);
      });
    }};
  }
  Napi::Value reconstruct(const Napi::CallbackInfo& info) { return run_now(info.Env(), reconstruct_call(info)); }
  Napi::Value reconstruct_async(const Napi::CallbackInfo& info) { return queue(info, 4, reconstruct_call(info)); }

  // [sync] evaluate(x, rows, seed) -> Float64Array [reconstructionSum, klSum]
  // [async] evaluateAsync(...) -> Promise<Float64Array>
  Call evaluate_call(const Napi::CallbackInfo& info) {
    Io io;
    int64_t seed;
    const int n = model_ ? model_->config().input_dim : 0;
    if (!parse_rows(info, "x", n, &io) || !get_int(info, 2, "seed", 0, (int64_t(1) << 53) - 1, &seed)) return {};
    Model* model = model_.get();
    auto sums = std::make_shared<vae::LossSums>();
    return {[=]() {
              TaskError e = bernoulli_target_error(model, "x", io.in.data, io.rows, n);
              if (!e.code.empty()) return e;
              return run_checked("x", io.in.data, n, [&](vae::InputCheck* check) {
                *sums = model->evaluate(io.in.data, io.rows, static_cast<uint64_t>(seed), check);
              });
            },
            [sums](Napi::Env env) { return sums_array(env, *sums); }};
  }
  Napi::Value evaluate(const Napi::CallbackInfo& info) { return run_now(info.Env(), evaluate_call(info)); }
  Napi::Value evaluate_async(const Napi::CallbackInfo& info) { return queue(info, 1, evaluate_call(info)); }

  // [async] logLikelihoodAsync(x, rows, samples, seed) -> Promise<number> (sum over rows)
  Napi::Value log_likelihood_async(const Napi::CallbackInfo& info) {
    Io io;
    int64_t samples, seed;
    const int n = model_ ? model_->config().input_dim : 0;
    if (!parse_rows(info, "x", n, &io) || !get_int(info, 2, "samples", 1, 1 << 20, &samples) ||
        !get_int(info, 3, "seed", 0, (int64_t(1) << 53) - 1, &seed))
      return info.Env().Undefined();
    Model* model = model_.get();
    auto total = std::make_shared<double>(0.0);
    return queue(info, 1,
                 {[=]() {
                    TaskError e = bernoulli_target_error(model, "x", io.in.data, io.rows, n);
                    if (!e.code.empty()) return e;
                    return run_checked("x", io.in.data, n, [&](vae::InputCheck* check) {
                      *total = model->log_likelihood(io.in.data, io.rows, static_cast<int>(samples),
                                                     static_cast<uint64_t>(seed), check);
                    });
                  },
                  [total](Napi::Env env) { return Napi::Number::New(env, *total); }});
  }

  // [sync] beginEpoch(rows, shuffle)
  Napi::Value begin_epoch(const Napi::CallbackInfo& info) {
    int64_t rows;
    if (!ensure_idle(info.Env()) || !get_int(info, 0, "rows", 1, INT32_MAX, &rows)) return info.Env().Undefined();
    model_->begin_epoch(rows, info[1].ToBoolean().Value());
    return info.Env().Undefined();
  }

  // [async] trainAsync(data, rows, batchSize, firstBatch, count, hyper, stats: Float64Array(kStatsPerBatch * count))
  //   -> Promise<number of batches completed>
  Napi::Value train_async(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    F32 data;
    int64_t rows, batch_size, first_batch, count;
    double* stats;
    const int n = model_ ? model_->config().input_dim : 0;
    if (!ensure_idle(env) || !get_int(info, 1, "rows", 1, INT32_MAX, &rows) ||
        !get_f32(info, 0, "data", rows * n, &data) || !get_int(info, 2, "batchSize", 1, 1 << 20, &batch_size) ||
        !get_int(info, 3, "firstBatch", 0, INT32_MAX, &first_batch) || !get_int(info, 4, "count", 1, 1 << 20, &count) ||
        !get_f64_array(info, 6, "stats", kStatsPerBatch * count, &stats))
      return env.Undefined();
    vae::AdamHyper hyper;
    if (!get_adam_hyper(info, 5, &hyper)) return env.Undefined();

    Model* model = model_.get();
    std::atomic<bool>* cancel = &cancel_;
    cancel_.store(false);
    busy_.store(true);
    auto done = std::make_shared<int>(0);
    auto* worker = new PromiseWorker(
        env,
        [=]() -> TaskError {
          std::vector<vae::BatchStats> out(static_cast<size_t>(count));
          std::string error;
          const int ran = model->train_batches(data.data, rows, static_cast<int>(batch_size), first_batch,
                                               static_cast<int>(count), hyper, out.data(), cancel, &error);
          if (ran < 0) return {"ERR_DIVERGED", error};
          for (int i = 0; i < ran; i++) {
            const vae::BatchStats& s = out[i];
            double* row = stats + kStatsPerBatch * i;
            row[0] = s.loss;
            row[1] = s.reconstruction;
            row[2] = s.kl;
            row[3] = s.seconds;
          }
          *done = ran;
          return {};
        },
        [done](Napi::Env env) { return Napi::Number::New(env, *done); });
    worker->on_settled = [this]() { busy_.store(false); };
    return start(worker, info, 7);
  }

  // [sync] cancel(): asks a running trainAsync to stop after the current batch.
  Napi::Value cancel(const Napi::CallbackInfo& info) {
    cancel_.store(true);
    return info.Env().Undefined();
  }

  // [async] checkTrainingDataAsync(x, rows, name) -> Promise<void>: rejects with
  // ERR_NON_FINITE naming the row and column of the first NaN or infinity, or,
  // for a bernoulli model, ERR_INVALID_ARGUMENT naming the first value outside
  // [0, 1] (binary cross-entropy against such targets is unbounded below: the
  // loss would fall forever without describing the data).
  Napi::Value check_training_data_async(const Napi::CallbackInfo& info) {
    Io io;
    const int n = model_ ? model_->config().input_dim : 0;
    if (!parse_rows(info, "x", n, &io)) return info.Env().Undefined();
    if (!info[2].IsString()) {
      throw_type(info.Env(), "name", "a string");
      return info.Env().Undefined();
    }
    const std::string name = info[2].As<Napi::String>().Utf8Value();
    const bool bernoulli = model_->config().likelihood == vae::Likelihood::Bernoulli;
    const Model* model = model_.get();
    return queue(info, 1, {[=]() {
                   return bernoulli ? bernoulli_target_error(model, name, io.in.data, io.rows, n)
                                    : finite_error(name.c_str(), io.in.data, io.rows * n, n);
                 }});
  }

  // For a bernoulli model, names the first value of x (rows x cols) it cannot score: binary
  // cross-entropy against a target outside [0, 1] is unbounded, so the loss would not describe
  // the data. Empty for gaussian models. NaN and infinity lie outside [0, 1] too, so valid data
  // takes one scan; only when it finds something does the finite scan run, so that NaN and
  // infinity anywhere keep their own error (ERR_NON_FINITE).
  static TaskError bernoulli_target_error(const Model* model, const std::string& name, const float* x, int64_t rows, int cols) {
    if (model->config().likelihood != vae::Likelihood::Bernoulli) return {};
    const int threads = model->config().threads;
    const int64_t bad = vae::find_outside_unit(x, rows * cols, threads);
    if (bad < 0) return {};
    TaskError e = non_finite_error(name, x, vae::find_non_finite(x, rows * cols, threads), cols);
    if (!e.code.empty()) return e;
    return bad_value_error(BadValueFault::OutsideUnit, name, bad, cols, x[bad]);
  }

  // [sync] lossAndGradients(x, rows, eps, grads | null) -> Float64Array [recSum, klSum]
  Napi::Value loss_and_gradients(const Napi::CallbackInfo& info) {
    Io io;
    F32 eps, grads;
    const int n = model_ ? model_->config().input_dim : 0, d = model_ ? model_->config().latent_dim : 0;
    if (!parse_rows(info, "x", n, &io) || !ok(info.Env(), finite_error("x", io.in.data, io.rows * n, n)) ||
        !get_f32(info, 2, "eps", io.rows * d, &eps) || !ok(info.Env(), finite_error("eps", eps.data, io.rows * d, d)) ||
        !get_f32(info, 3, "grads", model_->param_count(), &grads, true))
      return info.Env().Undefined();
    if (io.rows > (1 << 20)) {
      throw_type(info.Env(), "rows", "at most 1048576 rows");
      return info.Env().Undefined();
    }
    vae::LossSums sums;
    try {
      sums = model_->loss_and_gradients(io.in.data, static_cast<int>(io.rows), eps.data, grads.data);
    } catch (const std::bad_alloc&) {
      throw_error(info.Env(), "ERR_NATIVE", "out of memory for the training workspace");
      return info.Env().Undefined();
    } catch (const std::exception& e) {
      throw_error(info.Env(), "ERR_NATIVE", e.what());
      return info.Env().Undefined();
    }
    return sums_array(info.Env(), sums);
  }

  // The async twins queue the call on libuv's pool; keeps this and the first
  // n_args alive.
  Napi::Value queue(const Napi::CallbackInfo& info, size_t n_args, Call call) {
    if (!call.task) return info.Env().Undefined();
    return start(new PromiseWorker(info.Env(), std::move(call.task), std::move(call.result)), info, n_args);
  }

  static Napi::Value sums_array(Napi::Env env, const vae::LossSums& sums) {
    Napi::Float64Array out = Napi::Float64Array::New(env, 2);
    if (out.IsEmpty()) return env.Undefined();  // the environment is shutting down
    out[0] = sums.reconstruction;
    out[1] = sums.kl;
    return out;
  }

  // Keeps this object and the first n_args arguments alive, then queues.
  Napi::Value start(PromiseWorker* worker, const Napi::CallbackInfo& info, size_t n_args) {
    worker->keep(info.This());
    for (size_t i = 0; i < n_args && i < info.Length(); i++)
      if (info[i].IsObject()) worker->keep(info[i]);
    return worker->start();
  }

  std::unique_ptr<Model> model_;
  std::atomic<bool> busy_{false}, cancel_{false};
};

}  // namespace

void register_model(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeModel", NativeModel::define(env));
}

}  // namespace vae_binding
