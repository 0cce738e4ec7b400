// A VAE with MLP encoder and decoder: parameters, training and inference.
// No N-API here: errors are returned as strings, the binding turns them into
// JS exceptions.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/elementwise.h"
#include "core/gemm.h"
#include "core/ops.h"
#include "core/rng.h"

namespace vae {

enum class Likelihood : int { Bernoulli = 0, Gaussian = 1 };

struct ModelConfig {
  int input_dim = 784;
  int latent_dim = 20;
  std::vector<int> encoder_layers{400};
  std::vector<int> decoder_layers{400};
  Activation activation = Activation::Relu;
  Likelihood likelihood = Likelihood::Bernoulli;
  float beta = 1.0f;
  uint64_t seed = 0;
  int threads = 1;
};

// Returns "" when valid, otherwise a message naming the bad field.
std::string validate_config(const ModelConfig& c);

// One dense layer's view into the parameter (or gradient) block.
struct DenseView {
  float* W;  // [in, out]
  float* b;  // [out]
  int in, out;
};

// Sums over a batch (divide by rows for per-sample means).
struct LossSums {
  double reconstruction = 0.0, kl = 0.0;
};

// Per-batch training statistics: per-sample means, and the step's wall time
// (steady clock), which tells a machine's quiet spells from its noisy ones.
struct BatchStats {
  double loss, reconstruction, kl, seconds;
};

// Size in floats of the calling thread's inference scratch (for tests: a
// scratch above 64 MB is freed after each block).
size_t thread_inference_scratch_floats();

class Model {
 public:
  explicit Model(const ModelConfig& config);  // config must be valid

  const ModelConfig& config() const { return config_; }
  int64_t param_count() const { return static_cast<int64_t>(params_.size()); }

  // ---- parameters and optimizer state (one contiguous block each) ----------
  const float* params() const { return params_.data(); }
  // For writing the parameters: marks the packed inference weights stale.
  float* mutable_params() {
    params_version_++;
    return params_.data();
  }
  float* adam_m() { return adam_m_.data(); }
  float* adam_v() { return adam_v_.data(); }
  int64_t& adam_step() { return adam_step_; }
  Rng& train_rng() { return train_rng_; }
  // Layer views in order: encoder hidden layers, head, decoder layers.
  const std::vector<DenseView>& layers() const { return layers_; }

  void set_threads(int threads) { config_.threads = threads < 1 ? 1 : threads; }

  // ---- training -------------------------------------------------------------
  // Starts an epoch over n_rows rows: a new permutation from the training RNG
  // (identity when !shuffle).
  void begin_epoch(int64_t n_rows, bool shuffle);
  // Trains batches [first_batch, first_batch + count) of the current epoch;
  // the last batch of an epoch may be short. Writes one BatchStats per batch
  // and returns how many batches ran (fewer when *cancel turns true), or -1
  // with *error set (e.g. non-finite loss; the parameters are then restored
  // to the last completed batch).
  int train_batches(const float* data, int64_t n_rows, int batch_size, int64_t first_batch, int count,
                    const AdamHyper& adam, BatchStats* stats, const std::atomic<bool>* cancel,
                    std::string* error);

  // Loss of one batch with given noise, and (if grads != nullptr) its gradient
  // w.r.t. all parameters, overwritten, laid out like params(). For gradient
  // checks and tests; eps is [rows, latent].
  LossSums loss_and_gradients(const float* x, int rows, const float* eps, float* grads);

  // ---- inference (thread-safe w.r.t. each other) -----------------------------
  // check (optional): the input (x, or z for decode) is scanned for NaN and
  // infinity block by block as the call runs (see InputCheck). When the check
  // fails the results are incomplete: the caller reports the error instead.
  // mean, logvar: [rows, latent]; logvar may be nullptr (mean-only encoder).
  void encode(const float* x, int64_t rows, float* mean, float* logvar, InputCheck* check = nullptr) const;
  // out: [rows, input] probabilities (bernoulli) or means (gaussian).
  void decode(const float* z, int64_t rows, float* out, InputCheck* check = nullptr) const;
  // z = mean + exp(logvar/2) * eps, or z = mean when eps == nullptr.
  void reconstruct(const float* x, int64_t rows, const float* eps, float* out, InputCheck* check = nullptr) const;
  // Negative ELBO terms summed over rows with one draw of eps per row from seed.
  LossSums evaluate(const float* x, int64_t rows, uint64_t seed, InputCheck* check = nullptr) const;
  // Importance-weighted estimate of log p(x) (IWAE, Burda et al. 2016) with
  // `samples` draws of z ~ q(z|x) per row, summed over rows:
  //   log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)
  // under the same constant-free likelihoods as the losses. K = 1 is the ELBO.
  double log_likelihood(const float* x, int64_t rows, int samples, uint64_t seed,
                        InputCheck* check = nullptr) const;

 private:
  struct Workspace;
  // A training step runs as one job on the pool, so the threads meet once
  // per step instead of after every product. Its tasks, in the order they
  // are claimed (ThreadPool::run):
  //  1. blocks of rows (rows are independent): each gathers its rows, then
  //     runs the forward pass, the loss and the input gradients layer by
  //     layer (train_rows), counting in the workspace the layers it is done with;
  //  2. the next batch's noise, drawn from the training RNG;
  //  3. fixed pieces of the weight matrices, last layer first: each waits
  //     until every block is done with its layer, then computes its weight
  //     gradients and, unless the batch's loss is non-finite, its Adam update
  //     and the repacking for the next step. A thread that finishes its block
  //     early starts on the last layers while the others finish theirs.
  // gather: when given, each block first copies its rows of x from the
  // shuffled training data (x is then gather->dest).
  struct RowGather {
    const float* source;
    const int32_t* order;  // row r of x is row order[r] of source
    float* dest;
  };
  // What a step does after its forward pass: gradients, then Adam when adam
  // is given (and the loss is finite); next_eps, when given, receives the
  // next batch's next_eps_count noise values.
  struct StepBackward {
    const AdamStep* adam;
    float* next_eps;
    int64_t next_eps_count;
  };
  // Runs a step over rows [0, rows) of x and returns its loss sums; forward
  // only when backward is nullptr. The gradients are left in grads_.
  LossSums train_step(const float* x, int rows, const float* eps, const RowGather* gather,
                      const StepBackward* backward);
  void train_rows(Workspace& ws, const float* x, const float* eps, int r0, int rows, bool backward,
                  float loss_scale, const RowGather* gather);
  // The loss that fit() reports for a batch, (reconstruction + beta KL) / rows.
  double batch_loss(const LossSums& sums, int rows) const;
  LossSums sum_row_losses(int rows) const;
  struct WeightPiece {
    int layer, r0, r1;  // rows [r0, r1) of the layer's W, or r0 = -1 for its bias
  };
  // The pieces of the weights, in the order train_step gives them to its tasks.
  const std::vector<WeightPiece>& weight_pieces();
  void update_piece(const WeightPiece& piece, const float* x, int rows, const AdamStep* adam);
  // Output buffer of layer li (post-activation; the raw head for the head
  // layer) and its input (x for layer 0).
  float* layer_output(Workspace& ws, int li) const;
  const float* layer_input(Workspace& ws, int li, const float* x) const;
  // Packs the training copies of the weights if the parameters changed
  // outside training (each step's Adam update keeps them current).
  void ensure_training_packs();
  // Sum of the reconstruction loss (BCE from logits or SSE / 2) over n values,
  // with libm (the forward-only training pass that gradient checks difference).
  double reconstruction_loss(const float* logits, const float* x, int64_t n) const;
  // The same for one row of inference, with the training step's vectorized
  // kernel for bernoulli (the sums fit() reports); `gradient` is n floats of
  // scratch it writes and nobody reads.
  double row_reconstruction_loss(const float* logits, const float* x, int n, float* gradient) const;
  // Inference on one block of `rows` rows, on the calling thread
  // (model_infer.cc), with the layers' weights prepacked (packed_weights()).
  // s: scratch for the hidden activations, at least encoder_scratch(rows) or
  // decoder_scratch(rows) floats.
  using PackedLayers = std::vector<PackedMatrix>;
  size_t encoder_scratch(int rows) const;
  size_t decoder_scratch(int rows) const;
  // mean [rows, d] and, unless logvar is nullptr, logvar [rows, d] of x
  // [rows, n] (the mean-only encoder skips the log-variance half of the head).
  void encoder_rows(float* s, const float* x, int rows, const PackedLayers& packed, float* mean,
                    float* logvar) const;
  // The decoder's last layer before its output transform: logits (bernoulli)
  // or means (gaussian), out [rows, n], of z [rows, d].
  void decoder_rows(float* s, const float* z, int rows, const PackedLayers& packed, float* out) const;
  // Logits to probabilities in place (bernoulli); means stay as they are.
  void output_transform(float* out, int64_t count) const;
  // A hidden layer on the calling thread: dense + activation (relu fused into
  // the matrix multiply).
  void dense_hidden_forward(float* out, const float* in, const DenseView& L, int rows,
                            const PackedMatrix* packed) const;
  // The weights of every layer packed for the matrix multiply, repacked
  // first if the parameters changed since (inference reuses them call after
  // call, as onnxruntime prepacks its initializers).
  const PackedLayers& packed_weights() const;

  ModelConfig config_;
  std::vector<float> params_, grads_, adam_m_, adam_v_;
  std::vector<DenseView> layers_, grad_layers_;
  int n_encoder_ = 0;  // number of encoder hidden layers
  int64_t adam_step_ = 0;
  Rng train_rng_;
  std::vector<int32_t> permutation_;
  // Training scratch, sized for the largest batch seen; reused across batches.
  // (Inference uses a scratch buffer per thread instead: model_infer.cc.)
  Workspace* train_ws_ = nullptr;
  std::vector<float> batch_x_, batch_eps_, next_batch_eps_;
  // Training copies of each layer's W packed as the forward product reads it
  // (train_w_) and transposed as the input-gradient product reads it
  // (train_wt_), both with Deep K blocks; current while train_packed_version_
  // == params_version_, except that train_w_ is only kept while
  // train_w_valid_: small batches read W in place (forward_reads_w_, set per
  // step for every layer) and let the copies go stale rather than repack them
  // every step.
  std::vector<PackedMatrix> train_w_, train_wt_;
  bool train_w_valid_ = false, forward_reads_w_ = false;
  uint64_t train_packed_version_ = ~uint64_t{0};
  std::vector<WeightPiece> weight_pieces_;  // see weight_pieces()
  std::vector<LossSums> row_sums_;          // train_rows' loss sums per row
  // Prepacked inference weights, one per layer, valid while packed_version_
  // equals params_version_ (bumped by every write to the parameters).
  std::atomic<uint64_t> params_version_{0};
  mutable std::mutex packed_mutex_;
  mutable PackedLayers packed_;
  mutable uint64_t packed_version_ = ~uint64_t{0};

 public:
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
};

}  // namespace vae
