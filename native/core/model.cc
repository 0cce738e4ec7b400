#include "core/model.h"

#include "core/elementwise.h"
#include "core/model_workspace.h"
#include "core/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace vae {

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
}

// ---- packed inference weights ---------------------------------------------------------

const Model::PackedLayers& Model::packed_weights() const {
  std::lock_guard<std::mutex> lock(packed_mutex_);
  const uint64_t version = params_version_.load();
  if (packed_version_ != version) {
    // Same shapes every time, so each PackedMatrix reuses its storage.
    for (size_t i = 0; i < layers_.size(); i++) packed_[i].pack(layers_[i].W, layers_[i].out, Trans::N, layers_[i].in, layers_[i].out, KBlocking::Deep);
    packed_version_ = version;
  }
  return packed_;
}

}  // namespace vae
