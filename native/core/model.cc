#include "core/model.h"

#include "core/elementwise.h"
#include "core/model_workspace.h"
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

bool Model::forward_encoder(Workspace& ws, const float* x, int rows, const PackedLayers& packed,
                            EncoderOutput output, InputCheck* check) const {
  for_row_blocks(rows, config_.threads, [&](int r0, int n) { encoder_rows(ws, x, r0, n, packed, output, check); });
  return !(check && check->failed());
}

void Model::encoder_rows(Workspace& ws, const float* x, int r0, int rows, const PackedLayers& packed,
                         EncoderOutput output, InputCheck* check) const {
  auto at = [r0](auto* buffer, int width) { return row_at(buffer, r0, width); };
  const float* in = at(x, config_.input_dim);
  if (check && !check->scan(in, static_cast<int64_t>(rows) * config_.input_dim)) return;
  for (int i = 0; i < n_encoder_; i++) {
    const DenseView& L = layers_[i];
    float* out = at(ws.encoder_out[i].data(), L.out);
    dense_hidden_forward(out, in, L, rows, &packed[i]);
    in = out;
  }
  const DenseView& H = layers_[n_encoder_];
  const int d = config_.latent_dim;
  float* mean = at(ws.mean.data(), d);
  if (output == EncoderOutput::Mean) {
    // Only the mean half of the head: the first d of its 2d weight columns.
    dense_forward(mean, in, H.W, H.b, rows, H.in, d, 1, false, 2 * d, &packed[n_encoder_]);
    return;
  }
  float* head = at(ws.head.data(), 2 * d);
  dense_forward(head, in, H.W, H.b, rows, H.in, H.out, 1, false, 0, &packed[n_encoder_]);
  gaussian_head_forward(mean, at(ws.logvar.data(), d), head, rows, d);
}

void Model::dense_hidden_forward(float* out, const float* in, const DenseView& L, int rows,
                                 const PackedMatrix* packed) const {
  const bool relu = config_.activation == Activation::Relu;
  dense_forward(out, in, L.W, L.b, rows, L.in, L.out, 1, relu, 0, packed);
  if (!relu) activation_forward(config_.activation, out, out, static_cast<int64_t>(rows) * L.out);
}

bool Model::forward_decoder(Workspace& ws, const float* z, int rows, const PackedLayers& packed,
                            InputCheck* check) const {
  for_row_blocks(rows, config_.threads, [&](int r0, int n) { decoder_rows(ws, z, r0, n, packed, check); });
  return !(check && check->failed());
}

void Model::decoder_rows(Workspace& ws, const float* z, int r0, int rows, const PackedLayers& packed,
                         InputCheck* check) const {
  const float* in = row_at(z, r0, config_.latent_dim);
  if (check && !check->scan(in, static_cast<int64_t>(rows) * config_.latent_dim)) return;
  const int n_decoder = static_cast<int>(ws.decoder_out.size());
  for (int j = 0; j < n_decoder; j++) {
    const int li = n_encoder_ + 1 + j;
    const DenseView& L = layers_[li];
    float* out = row_at(ws.decoder_out[j].data(), r0, L.out);
    if (j + 1 < n_decoder) dense_hidden_forward(out, in, L, rows, &packed[li]);
    else dense_forward(out, in, L.W, L.b, rows, L.in, L.out, 1, false, 0, &packed[li]);
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

// ---- inference -----------------------------------------------------------------------

void Model::encode(const float* x, int64_t rows, float* mean, float* logvar, InputCheck* check) const {
  WorkspaceLease lease(*this);
  const PackedLayers& packed = packed_weights();
  Workspace& ws = *lease;
  const int d = config_.latent_dim, n = config_.input_dim;
  for (int64_t start = 0; start < rows; start += kInferenceChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kInferenceChunkRows, rows - start));
    ws.ensure(config_, chunk, Workspace::kEncoder);
    if (!forward_encoder(ws, x + start * n, chunk, packed,
                         logvar ? EncoderOutput::MeanAndLogVar : EncoderOutput::Mean, check))
      return;
    std::copy(ws.mean.begin(), ws.mean.begin() + static_cast<int64_t>(chunk) * d, mean + start * d);
    if (logvar) std::copy(ws.logvar.begin(), ws.logvar.begin() + static_cast<int64_t>(chunk) * d, logvar + start * d);
  }
}

void Model::decode(const float* z, int64_t rows, float* out, InputCheck* check) const {
  WorkspaceLease lease(*this);
  const PackedLayers& packed = packed_weights();
  Workspace& ws = *lease;
  const int d = config_.latent_dim, n = config_.input_dim;
  for (int64_t start = 0; start < rows; start += kInferenceChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kInferenceChunkRows, rows - start));
    ws.ensure(config_, chunk, Workspace::kDecoder);
    if (!forward_decoder(ws, z + start * d, chunk, packed, check)) return;
    write_decoder_output(ws, chunk, out + start * n);
  }
}

void Model::reconstruct(const float* x, int64_t rows, const float* eps, float* out, InputCheck* check) const {
  WorkspaceLease lease(*this);
  const PackedLayers& packed = packed_weights();
  Workspace& ws = *lease;
  const int d = config_.latent_dim, n = config_.input_dim;
  for (int64_t start = 0; start < rows; start += kInferenceChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kInferenceChunkRows, rows - start));
    const int64_t nd = static_cast<int64_t>(chunk) * d;
    ws.ensure(config_, chunk, Workspace::kInference);
    if (!forward_encoder(ws, x + start * n, chunk, packed, EncoderOutput::MeanAndLogVar, check)) return;
    if (eps) reparameterize_forward(ws.z.data(), ws.mean.data(), ws.logvar.data(), eps + start * d, nd);
    else std::copy(ws.mean.begin(), ws.mean.begin() + nd, ws.z.begin());
    forward_decoder(ws, ws.z.data(), chunk, packed);
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

LossSums Model::evaluate(const float* x, int64_t rows, uint64_t seed, InputCheck* check) const {
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
    if (!forward_encoder(ws, xs, chunk, packed, EncoderOutput::MeanAndLogVar, check)) return total;
    reparameterize_forward(ws.z.data(), ws.mean.data(), ws.logvar.data(), eps.data(), nd);
    forward_decoder(ws, ws.z.data(), chunk, packed);
    const float* logits = ws.decoder_out.back().data();
    total.reconstruction += reconstruction_loss(logits, xs, nx);
    total.kl += kl_forward(ws.mean.data(), ws.logvar.data(), nd);
  }
  return total;
}

double Model::log_likelihood(const float* x, int64_t rows, int samples, uint64_t seed, InputCheck* check) const {
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
    // The decoder passes below leave mean and logvar alone.
    if (!forward_encoder(ws, xs, chunk, packed, EncoderOutput::MeanAndLogVar, check)) return total;
    const float *mean = ws.mean.data(), *logvar = ws.logvar.data();
    eps.resize(nd);
    log_weights.assign(static_cast<size_t>(chunk) * samples, 0.0f);
    for (int k = 0; k < samples; k++) {
      rng.fill_normal(eps.data(), nd);
      reparameterize_forward(ws.z.data(), mean, logvar, eps.data(), nd);
      forward_decoder(ws, ws.z.data(), chunk, packed);
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
