#include "core/model.h"

#include "core/elementwise.h"
#include "core/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace vae {

namespace {
constexpr int kInferenceChunkRows = 2048;  // bounds inference scratch memory
}

std::string validate_config(const ModelConfig& c) {
  const int kMaxDim = 1 << 24;
  if (c.input_dim < 1 || c.input_dim > kMaxDim) return "inputDim must be an integer in [1, 16777216]";
  if (c.latent_dim < 1 || c.latent_dim > kMaxDim) return "latentDim must be an integer in [1, 16777216]";
  for (int w : c.encoder_layers)
    if (w < 1 || w > kMaxDim) return "encoderLayers entries must be integers in [1, 16777216]";
  for (int w : c.decoder_layers)
    if (w < 1 || w > kMaxDim) return "decoderLayers entries must be integers in [1, 16777216]";
  if (!(c.beta >= 0.0f) || !std::isfinite(c.beta)) return "beta must be a finite number >= 0";
  if (static_cast<int>(c.activation) < 0 || static_cast<int>(c.activation) > 4) return "unknown activation";
  if (static_cast<int>(c.likelihood) < 0 || static_cast<int>(c.likelihood) > 1) return "unknown likelihood";
  if (c.threads < 1 || c.threads > 1024) return "threads must be an integer in [1, 1024]";
  return "";
}

// Activations of one forward pass (and their gradients when training). Each
// part is sized for the most rows it has served; each layer's output is kept
// because backward needs it.
struct Model::Workspace {
  std::vector<std::vector<float>> encoder_out;  // [B, h_i] post-activation
  std::vector<float> head;                      // [B, 2d]
  std::vector<float> mean, logvar, z;           // [B, d]
  std::vector<std::vector<float>> decoder_out;  // [B, g_j] post-activation; last = logits [B, n]
  // Gradients (training only).
  std::vector<float> grad_a, grad_b;            // [B, widest layer] ping-pong
  std::vector<float> d_head;                    // [B, 2d]

  // Which buffers a pass needs: inference allocates only its half of the model.
  enum Parts { kEncoder = 1, kDecoder = 2, kInference = 3, kTraining = 7 };
  int rows_of[3] = {0, 0, 0};  // capacity of the encoder, decoder and gradient parts

  void ensure(const ModelConfig& c, int rows, Parts parts) {
    const size_t B = static_cast<size_t>(rows), d = static_cast<size_t>(c.latent_dim);
    if (mean.size() < B * d) mean.resize(B * d);
    if ((parts & kEncoder) && rows_of[0] < rows) {
      rows_of[0] = rows;
      encoder_out.resize(c.encoder_layers.size());
      for (size_t i = 0; i < encoder_out.size(); i++) encoder_out[i].resize(B * c.encoder_layers[i]);
      head.resize(B * 2 * d);
      logvar.resize(B * d);
    }
    if ((parts & kDecoder) && rows_of[1] < rows) {
      rows_of[1] = rows;
      z.resize(B * d);
      decoder_out.resize(c.decoder_layers.size() + 1);
      for (size_t j = 0; j < c.decoder_layers.size(); j++) decoder_out[j].resize(B * c.decoder_layers[j]);
      decoder_out.back().resize(B * c.input_dim);
    }
    if (parts != kTraining || rows_of[2] >= rows) return;
    rows_of[2] = rows;
    size_t widest = std::max<size_t>(c.input_dim, 2 * d);
    for (int w : c.encoder_layers) widest = std::max<size_t>(widest, w);
    for (int w : c.decoder_layers) widest = std::max<size_t>(widest, w);
    grad_a.resize(B * widest); grad_b.resize(B * widest);
    d_head.resize(B * 2 * d);
  }
};

Model::Model(const ModelConfig& config) : config_(config) {
  // Layer shapes in order: encoder hidden, head, decoder hidden, decoder output.
  std::vector<std::pair<int, int>> shapes;
  int width = config_.input_dim;
  for (int w : config_.encoder_layers) { shapes.push_back({width, w}); width = w; }
  shapes.push_back({width, 2 * config_.latent_dim});
  width = config_.latent_dim;
  for (int w : config_.decoder_layers) { shapes.push_back({width, w}); width = w; }
  shapes.push_back({width, config_.input_dim});
  n_encoder_ = static_cast<int>(config_.encoder_layers.size());

  size_t total = 0;
  for (auto& s : shapes) total += static_cast<size_t>(s.first) * s.second + s.second;
  params_.assign(total, 0.0f);
  grads_.assign(total, 0.0f);
  adam_m_.assign(total, 0.0f);
  adam_v_.assign(total, 0.0f);
  size_t offset = 0;
  for (auto& s : shapes) {
    const size_t w_size = static_cast<size_t>(s.first) * s.second;
    layers_.push_back({params_.data() + offset, params_.data() + offset + w_size, s.first, s.second});
    grad_layers_.push_back({grads_.data() + offset, grads_.data() + offset + w_size, s.first, s.second});
    offset += w_size + s.second;
  }

  // PyTorch's nn.Linear default: weights and biases ~ U(-1/sqrt(in), 1/sqrt(in)).
  Rng init(config_.seed);
  for (auto& L : layers_) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(L.in));
    for (int64_t i = 0; i < static_cast<int64_t>(L.in) * L.out; i++)
      L.W[i] = static_cast<float>((2.0 * init.uniform_open0() - 1.0) * bound);
    for (int j = 0; j < L.out; j++) L.b[j] = static_cast<float>((2.0 * init.uniform_open0() - 1.0) * bound);
  }
  packed_.resize(layers_.size());
  train_rng_.reseed(config_.seed ^ 0x5DEECE66DULL);
  train_ws_ = new Workspace();
}

Model::~Model() {
  delete train_ws_;
  for (Workspace* ws : inference_ws_) delete ws;
}

// Borrows an inference workspace from the model's free list for one call.
class Model::WorkspaceLease {
 public:
  explicit WorkspaceLease(const Model& model) : model_(model) {
    std::lock_guard<std::mutex> lock(model_.inference_ws_mutex_);
    if (model_.inference_ws_.empty()) {
      ws_ = new Workspace();
    } else {
      ws_ = model_.inference_ws_.back();
      model_.inference_ws_.pop_back();
    }
  }
  ~WorkspaceLease() {
    std::lock_guard<std::mutex> lock(model_.inference_ws_mutex_);
    model_.inference_ws_.push_back(ws_);
  }
  Workspace& operator*() const { return *ws_; }

 private:
  const Model& model_;
  Workspace* ws_;
};

// ---- forward passes -----------------------------------------------------------------

void Model::forward_encoder(Workspace& ws, const float* x, int rows, int threads, const PackedLayers* packed,
                            EncoderOutput output) const {
  auto packed_w = [&](int layer) { return packed ? &(*packed)[layer] : nullptr; };
  const float* in = x;
  for (int i = 0; i < n_encoder_; i++) {
    const DenseView& L = layers_[i];
    float* out = ws.encoder_out[i].data();
    dense_hidden_forward(out, in, L, rows, threads, packed_w(i));
    in = out;
  }
  const DenseView& H = layers_[n_encoder_];
  const int d = config_.latent_dim;
  if (output == EncoderOutput::Mean) {
    // Only the mean half of the head: the first d of its 2d weight columns.
    dense_forward(ws.mean.data(), in, H.W, H.b, rows, H.in, d, threads, false, 2 * d, packed_w(n_encoder_));
    return;
  }
  dense_forward(ws.head.data(), in, H.W, H.b, rows, H.in, H.out, threads, false, 0, packed_w(n_encoder_));
  if (output == EncoderOutput::MeanAndLogVar) gaussian_head_forward(ws.mean.data(), ws.logvar.data(), ws.head.data(), rows, d);
}

void Model::dense_hidden_forward(float* out, const float* in, const DenseView& L, int rows, int threads,
                                 const PackedMatrix* packed) const {
  const bool relu = config_.activation == Activation::Relu;
  dense_forward(out, in, L.W, L.b, rows, L.in, L.out, threads, relu, 0, packed);
  if (!relu) activation_forward(config_.activation, out, out, static_cast<int64_t>(rows) * L.out);
}

void Model::forward_decoder(Workspace& ws, const float* z, int rows, int threads, const PackedLayers* packed) const {
  const float* in = z;
  const int n_decoder = static_cast<int>(ws.decoder_out.size());
  for (int j = 0; j < n_decoder; j++) {
    const int li = n_encoder_ + 1 + j;
    const DenseView& L = layers_[li];
    const PackedMatrix* packed_w = packed ? &(*packed)[li] : nullptr;
    float* out = ws.decoder_out[j].data();
    if (j + 1 < n_decoder) dense_hidden_forward(out, in, L, rows, threads, packed_w);
    else dense_forward(out, in, L.W, L.b, rows, L.in, L.out, threads, false, 0, packed_w);
    in = out;
  }
}

const Model::PackedLayers& Model::packed_weights() const {
  std::lock_guard<std::mutex> lock(packed_mutex_);
  const uint64_t version = params_version_.load();
  if (packed_version_ != version) {
    // Same shapes every time, so each PackedMatrix reuses its storage.
    for (size_t i = 0; i < layers_.size(); i++) packed_[i].pack(layers_[i].W, layers_[i].out, Trans::N, layers_[i].in, layers_[i].out);
    packed_version_ = version;
  }
  return packed_;
}

// ---- training ---------------------------------------------------------------------------

void Model::train_step(const float* x, int rows, const float* eps, bool backward, LossSums* sums) {
  Workspace& ws = *train_ws_;
  const int threads = config_.threads, d = config_.latent_dim, n = config_.input_dim;
  const int64_t nx = static_cast<int64_t>(rows) * n;
  ws.ensure(config_, rows, Workspace::kTraining);

  // Forward: encoder -> z = mean + sigma * eps -> decoder logits -> losses.
  // The head split, reparameterization and KL run as one fused pass each way.
  forward_encoder(ws, x, rows, threads, nullptr, EncoderOutput::Head);
  sums->kl = latent_forward_fused(ws.mean.data(), ws.logvar.data(), ws.z.data(), ws.head.data(), eps, rows, d);
  forward_decoder(ws, ws.z.data(), rows, threads, nullptr);
  const float* logits = ws.decoder_out.back().data();
  const bool bernoulli = config_.likelihood == Likelihood::Bernoulli;
  if (!backward) {
    sums->reconstruction = reconstruction_loss(logits, x, nx);
    return;
  }

  // Backward of loss = (reconstruction + beta * KL) / rows; the Bernoulli loss
  // and its gradient come from one fused pass.
  const float scale = 1.0f / static_cast<float>(rows);
  float* grad_out = ws.grad_a.data();  // gradient w.r.t. the current layer's output
  float* grad_in = ws.grad_b.data();   // gradient w.r.t. its input
  if (bernoulli) {
    sums->reconstruction = bce_logits_fused(grad_out, logits, x, scale, nx, threads);
  } else {
    sums->reconstruction = gaussian_sse_forward(logits, x, nx);
    gaussian_sse_backward(grad_out, logits, x, scale, nx);
  }

  const int n_decoder = static_cast<int>(ws.decoder_out.size());
  for (int j = n_decoder - 1; j >= 0; j--) {
    const float* in = j == 0 ? ws.z.data() : ws.decoder_out[j - 1].data();
    backward_layer(n_encoder_ + 1 + j, grad_in, grad_out, in, rows, j > 0);
    std::swap(grad_in, grad_out);
  }
  // grad_out now holds dLoss/dz [rows, d].
  latent_backward_fused(ws.d_head.data(), grad_out, ws.mean.data(), ws.logvar.data(), eps, config_.beta * scale, rows, d);

  grad_out = ws.d_head.data();
  for (int i = n_encoder_; i >= 0; i--) {
    const float* in = i == 0 ? x : ws.encoder_out[i - 1].data();
    float* din = i == 0 ? nullptr : (grad_out == ws.grad_a.data() ? ws.grad_b.data() : ws.grad_a.data());
    backward_layer(i, din, grad_out, in, rows, i > 0);
    grad_out = din;
  }
}

void Model::backward_layer(int li, float* din, const float* dout, const float* in, int rows, bool in_activated) {
  const DenseView &L = layers_[li], &G = grad_layers_[li];
  // Each layer's gradient is written once per step (accumulate = false): no zeroing.
  // Relu's backward is fused into the input-gradient product; other activations take a pass.
  const bool relu = config_.activation == Activation::Relu;
  dense_backward(din, G.W, G.b, dout, in, L.W, rows, L.in, L.out, config_.threads, false, in_activated && relu);
  if (in_activated && !relu) activation_backward_parallel(din, in, static_cast<int64_t>(rows) * L.in);
}

void Model::activation_backward_parallel(float* grad, const float* out, int64_t n) const {
  parallel_for_range(n, config_.threads, 1 << 14, [&](long long begin, long long end) {
    activation_backward(config_.activation, grad + begin, grad + begin, out + begin, end - begin);
  });
}

void Model::begin_epoch(int64_t n_rows, bool shuffle) {
  permutation_.resize(static_cast<size_t>(n_rows));
  for (int64_t i = 0; i < n_rows; i++) permutation_[i] = static_cast<int32_t>(i);
  if (!shuffle) return;
  for (int64_t i = n_rows - 1; i > 0; i--)  // Fisher-Yates
    std::swap(permutation_[i], permutation_[train_rng_.below(static_cast<uint64_t>(i) + 1)]);
}

int Model::train_batches(const float* data, int64_t n_rows, int batch_size, int64_t first_batch, int count,
                         const AdamHyper& adam, BatchStats* stats, const std::atomic<bool>* cancel,
                         std::string* error) {
  if (static_cast<int64_t>(permutation_.size()) != n_rows) {
    *error = "begin_epoch was not called for this data";
    return -1;
  }
  const int n = config_.input_dim, d = config_.latent_dim;
  params_version_++;  // the optimizer rewrites the parameters: repack for inference
  batch_x_.resize(static_cast<size_t>(batch_size) * n);
  batch_eps_.resize(static_cast<size_t>(batch_size) * d);
  int done = 0;
  for (; done < count; done++) {
    if (cancel && cancel->load(std::memory_order_relaxed)) break;
    const int64_t start = (first_batch + done) * batch_size;
    if (start >= n_rows) break;
    const int rows = static_cast<int>(std::min<int64_t>(batch_size, n_rows - start));
    // Drawing the noise (one sequential RNG stream) and gathering the shuffled
    // rows (memory-latency-bound) are independent: task 2 draws, tasks 1 and 0
    // gather half the rows each, on whichever threads are free. The pool hands
    // out the highest task first, so the one serial piece starts at once.
    auto prepare = [&](int task, int /*n_tasks*/) {
      if (task == 2) {
        train_rng_.fill_normal(batch_eps_.data(), static_cast<int64_t>(rows) * d);
        return;
      }
      const int half = rows / 2, begin = task == 0 ? 0 : half, end = task == 0 ? half : rows;
      for (int r = begin; r < end; r++)
        std::memcpy(&batch_x_[static_cast<size_t>(r) * n], data + static_cast<int64_t>(permutation_[start + r]) * n,
                    sizeof(float) * n);
    };
    ThreadPool::shared().parallel(3, config_.threads, prepare);

    LossSums sums;
    train_step(batch_x_.data(), rows, batch_eps_.data(), true, &sums);
    const double loss = (sums.reconstruction + config_.beta * sums.kl) / rows;
    if (!std::isfinite(loss)) {
      *error = "training diverged: the loss became non-finite at batch " + std::to_string(first_batch + done) +
               " of the epoch (the parameters are those after the last finite batch); lower learningRate";
      return -1;
    }
    adam_step_++;
    adam_update_fused(params_.data(), grads_.data(), adam_m_.data(), adam_v_.data(), param_count(), adam, adam_step_,
                config_.threads);
    stats[done] = {loss, sums.reconstruction / rows, sums.kl / rows};
  }
  return done;
}

LossSums Model::loss_and_gradients(const float* x, int rows, const float* eps, float* grads) {
  LossSums sums;
  train_step(x, rows, eps, grads != nullptr, &sums);
  if (grads) std::copy(grads_.begin(), grads_.end(), grads);
  return sums;
}

// ---- inference -----------------------------------------------------------------------

void Model::encode(const float* x, int64_t rows, float* mean, float* logvar) const {
  WorkspaceLease lease(*this);
  const PackedLayers& packed = packed_weights();
  Workspace& ws = *lease;
  const int d = config_.latent_dim, n = config_.input_dim;
  for (int64_t start = 0; start < rows; start += kInferenceChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kInferenceChunkRows, rows - start));
    ws.ensure(config_, chunk, Workspace::kEncoder);
    forward_encoder(ws, x + start * n, chunk, config_.threads, &packed,
                    logvar ? EncoderOutput::MeanAndLogVar : EncoderOutput::Mean);
    std::copy(ws.mean.begin(), ws.mean.begin() + static_cast<int64_t>(chunk) * d, mean + start * d);
    if (logvar) std::copy(ws.logvar.begin(), ws.logvar.begin() + static_cast<int64_t>(chunk) * d, logvar + start * d);
  }
}

void Model::decode(const float* z, int64_t rows, float* out) const {
  WorkspaceLease lease(*this);
  const PackedLayers& packed = packed_weights();
  Workspace& ws = *lease;
  const int d = config_.latent_dim, n = config_.input_dim;
  for (int64_t start = 0; start < rows; start += kInferenceChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kInferenceChunkRows, rows - start));
    ws.ensure(config_, chunk, Workspace::kDecoder);
    forward_decoder(ws, z + start * d, chunk, config_.threads, &packed);
    write_decoder_output(ws, chunk, out + start * n);
  }
}

void Model::reconstruct(const float* x, int64_t rows, const float* eps, float* out) const {
  WorkspaceLease lease(*this);
  const PackedLayers& packed = packed_weights();
  Workspace& ws = *lease;
  const int d = config_.latent_dim, n = config_.input_dim;
  for (int64_t start = 0; start < rows; start += kInferenceChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kInferenceChunkRows, rows - start));
    const int64_t nd = static_cast<int64_t>(chunk) * d;
    ws.ensure(config_, chunk, Workspace::kInference);
    forward_encoder(ws, x + start * n, chunk, config_.threads, &packed);
    if (eps) reparameterize_forward(ws.z.data(), ws.mean.data(), ws.logvar.data(), eps + start * d, nd);
    else std::copy(ws.mean.begin(), ws.mean.begin() + nd, ws.z.begin());
    forward_decoder(ws, ws.z.data(), chunk, config_.threads, &packed);
    write_decoder_output(ws, chunk, out + start * n);
  }
}

void Model::write_decoder_output(const Workspace& ws, int rows, float* out) const {
  const int64_t count = static_cast<int64_t>(rows) * config_.input_dim;
  std::copy(ws.decoder_out.back().begin(), ws.decoder_out.back().begin() + count, out);
  if (config_.likelihood == Likelihood::Bernoulli) sigmoid_inplace(out, count);
}

double Model::reconstruction_loss(const float* logits, const float* x, int64_t n) const {
  return config_.likelihood == Likelihood::Bernoulli ? bce_logits_forward(logits, x, n) : gaussian_sse_forward(logits, x, n);
}

LossSums Model::evaluate(const float* x, int64_t rows, uint64_t seed) const {
  WorkspaceLease lease(*this);
  const PackedLayers& packed = packed_weights();
  Workspace& ws = *lease;
  Rng rng(seed);
  LossSums total;
  const int d = config_.latent_dim, n = config_.input_dim;
  std::vector<float> eps;
  for (int64_t start = 0; start < rows; start += kInferenceChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kInferenceChunkRows, rows - start));
    const int64_t nd = static_cast<int64_t>(chunk) * d, nx = static_cast<int64_t>(chunk) * n;
    ws.ensure(config_, chunk, Workspace::kInference);
    eps.resize(nd);
    rng.fill_normal(eps.data(), nd);
    const float* xs = x + start * n;
    forward_encoder(ws, xs, chunk, config_.threads, &packed);
    reparameterize_forward(ws.z.data(), ws.mean.data(), ws.logvar.data(), eps.data(), nd);
    forward_decoder(ws, ws.z.data(), chunk, config_.threads, &packed);
    const float* logits = ws.decoder_out.back().data();
    total.reconstruction += reconstruction_loss(logits, xs, nx);
    total.kl += kl_forward(ws.mean.data(), ws.logvar.data(), nd);
  }
  return total;
}

double Model::log_likelihood(const float* x, int64_t rows, int samples, uint64_t seed) const {
  WorkspaceLease lease(*this);
  const PackedLayers& packed = packed_weights();
  Workspace& ws = *lease;
  Rng rng(seed);
  const int d = config_.latent_dim, n = config_.input_dim;
  const int64_t chunk_rows = 256;  // K decoder passes per chunk: keep the chunk small
  std::vector<float> eps, log_weights;
  double total = 0.0;
  for (int64_t start = 0; start < rows; start += chunk_rows) {
    const int chunk = static_cast<int>(std::min<int64_t>(chunk_rows, rows - start));
    const int64_t nd = static_cast<int64_t>(chunk) * d;
    const float* xs = x + start * n;
    ws.ensure(config_, chunk, Workspace::kInference);
    forward_encoder(ws, xs, chunk, config_.threads, &packed);  // the decoder passes leave mean and logvar alone
    const float *mean = ws.mean.data(), *logvar = ws.logvar.data();
    eps.resize(nd);
    log_weights.assign(static_cast<size_t>(chunk) * samples, 0.0f);
    for (int k = 0; k < samples; k++) {
      rng.fill_normal(eps.data(), nd);
      reparameterize_forward(ws.z.data(), mean, logvar, eps.data(), nd);
      forward_decoder(ws, ws.z.data(), chunk, config_.threads, &packed);
      const float* logits = ws.decoder_out.back().data();
      for (int r = 0; r < chunk; r++) {
        const float* xr = xs + static_cast<int64_t>(r) * n;
        const float* lr = logits + static_cast<int64_t>(r) * n;
        const double log_px = -reconstruction_loss(lr, xr, n);
        // log p(z) - log q(z|x): the 2 pi terms cancel.
        double log_ratio = 0.0;
        for (int j = 0; j < d; j++) {
          const int64_t i = static_cast<int64_t>(r) * d + j;
          const double z = ws.z[i], e = eps[i];
          log_ratio += -0.5 * z * z + 0.5 * (e * e + logvar[i]);
        }
        log_weights[static_cast<size_t>(r) * samples + k] = static_cast<float>(log_px + log_ratio);
      }
    }
    for (int r = 0; r < chunk; r++) {  // log-mean-exp over the K weights
      const float* w = &log_weights[static_cast<size_t>(r) * samples];
      const double top = *std::max_element(w, w + samples);
      double sum = 0.0;
      for (int k = 0; k < samples; k++) sum += std::exp(static_cast<double>(w[k]) - top);
      total += top + std::log(sum / samples);
    }
  }
  return total;
}

}  // namespace vae
