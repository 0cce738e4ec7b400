// Training of a Model: the epoch loop, and one step as one job on the pool
// (see Model::train_step).
//
// Determinism: each row's arithmetic, and each weight's, is the same
// whichever block or piece it falls in and whichever thread does it, and the
// loss is added up row by row in row order. So training, losses included, is
// bit-identical for any thread count, while threads claim blocks and pieces
// dynamically (a busy core just does fewer of them).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/elementwise.h"
#include "core/model.h"
#include "core/model_workspace.h"
#include "core/phase_times.h"
#include "core/thread_pool.h"

namespace vae {

namespace {
// Rows of W per piece of the weights (train_step): a multiple of the GEMM's 6-row
// micro-tile and of its 16-wide panels (so each piece repacks whole panels of
// W^T), and one packed block of A (kMC) tall. Larger pieces ran the weight
// gradients faster; 48-row pieces re-read the output gradient too often.
constexpr int kPieceRows = 144;
// Batches of at least this many rows read packed copies of W in the forward
// products (see train_step). Same-process A/B, 2 threads, packed
// against in place: batch 8 0.99x, 16 1.04x, 32 1.05x, 128 1.03-1.10x.
constexpr int kMinRowsPackedForward = 16;
}  // namespace

double Model::reconstruction_loss(const float* logits, const float* x, int64_t n) const {
  return config_.likelihood == Likelihood::Bernoulli ? bce_logits_forward(logits, x, n) : gaussian_sse_forward(logits, x, n);
}

float* Model::layer_output(Workspace& ws, int li) const {
  if (li < n_encoder_) return ws.encoder_out[li].data();
  if (li == n_encoder_) return ws.head.data();
  return ws.decoder_out[li - n_encoder_ - 1].data();
}

const float* Model::layer_input(Workspace& ws, int li, const float* x) const {
  if (li == 0) return x;
  if (li == n_encoder_ + 1) return ws.z.data();  // the decoder starts from z
  return layer_output(ws, li - 1);
}

void Model::ensure_training_packs() {
  const uint64_t version = params_version_.load();
  if (train_packed_version_ == version) return;
  train_w_.resize(layers_.size());
  train_wt_.resize(layers_.size());
  train_w_valid_ = false;  // packed when first needed (train_step)
  for (size_t li = 1; li < layers_.size(); li++) {  // layer 0 needs no input gradient
    const DenseView& L = layers_[li];
    train_wt_[li].pack(L.W, L.out, Trans::T, L.out, L.in, KBlocking::Deep);
  }
  train_packed_version_ = version;
}

// ---- one step: blocks of rows, then pieces of the weights -------------------------------

LossSums Model::train_step(const float* x, int rows, const float* eps, const RowGather* gather,
                           const StepBackward* backward) {
  Workspace& ws = *train_ws_;
  ws.ensure(config_, rows);
  // Each forward product reads a packed copy of W with Deep K blocks (at 64
  // rows per block, 20-35% faster than reading W in place in isolation), which
  // the Adam pieces repack while they have the rows in cache; packed here if
  // the last step did not keep it. Small batches read W in place instead: the
  // repacking would cost more than it saves. The choice depends on the batch
  // alone, never on the thread count, so that training stays bit-identical
  // for any thread count (the two orders of summation differ).
  forward_reads_w_ = rows < kMinRowsPackedForward;
  if (!forward_reads_w_ && !train_w_valid_) {
    for (size_t li = 0; li < layers_.size(); li++) {
      const DenseView& L = layers_[li];
      train_w_[li].pack(L.W, L.out, Trans::N, L.in, L.out, KBlocking::Deep);
    }
    train_w_valid_ = true;
  }
  const int n_layers = static_cast<int>(layers_.size());
  if (backward) {
    for (int li = 0; li < n_layers; li++) ws.dout_packed[li].reshape(rows, layers_[li].out);
  }
  for (int li = 0; li < n_layers; li++) ws.layers_done[li].store(0, std::memory_order_relaxed);
  ws.loss_finite.store(-1, std::memory_order_relaxed);
  row_sums_.resize(static_cast<size_t>(rows));
  // The loss is (reconstruction + beta * KL) / rows: every gradient carries 1 / rows.
  const float loss_scale = 1.0f / static_cast<float>(rows);

  // Tasks, claimed from the highest: [pieces][noise][blocks].
  const int blocks = row_block_count(rows, config_.threads);
  const int n_pieces = backward ? static_cast<int>(weight_pieces().size()) : 0;
  const int noise = backward && backward->next_eps ? 1 : 0;
  auto task = [&](int t, int /*n_tasks*/) {
    if (t >= n_pieces + noise) {
      int r0, r1;
      row_block(rows, config_.threads, t - n_pieces - noise, 1, &r0, &r1);
      if (r1 > r0) train_rows(ws, x, eps, r0, r1 - r0, backward != nullptr, loss_scale, gather);
      else for (int li = 0; li < n_layers; li++) ws.layers_done[li].fetch_add(1, std::memory_order_release);  // empty: done
      return;
    }
    if (t == n_pieces) {
      VAE_PHASE(Noise);
      return train_rng_.fill_normal(backward->next_eps, backward->next_eps_count);
    }
    const WeightPiece& piece = weight_pieces_[t];
    {
      VAE_PHASE(Wait);
      wait_at_least(ws.layers_done[piece.layer], blocks);
    }
    // Every block is past its loss: a non-finite loss keeps the parameters
    // (train_batches reports it), so no piece updates them.
    int finite = ws.loss_finite.load(std::memory_order_acquire);
    if (finite < 0) {
      finite = std::isfinite(batch_loss(sum_row_losses(rows), rows)) ? 1 : 0;
      ws.loss_finite.store(finite, std::memory_order_release);
    }
    update_piece(piece, x, rows, finite ? backward->adam : nullptr);
  };
  ThreadPool::shared().parallel(n_pieces + noise + blocks, config_.threads, task);
  const LossSums sums = sum_row_losses(rows);
  // Adam updated W where the forward products read it: when that is in
  // place, the packed copies go stale.
  if (backward && backward->adam && ws.loss_finite.load() == 1 && forward_reads_w_) train_w_valid_ = false;
  return sums;
}

LossSums Model::sum_row_losses(int rows) const {
  LossSums sums;
  for (int r = 0; r < rows; r++) {
    sums.reconstruction += row_sums_[r].reconstruction;
    sums.kl += row_sums_[r].kl;
  }
  return sums;
}

double Model::batch_loss(const LossSums& sums, int rows) const {
  return (sums.reconstruction + config_.beta * sums.kl) / rows;
}

void Model::train_rows(Workspace& ws, const float* x, const float* eps, int r0, int rows, bool backward,
                       float loss_scale, const RowGather* gather) {
  const int d = config_.latent_dim, n = config_.input_dim;
  if (gather) {
    VAE_PHASE(Gather);
    for (int r = r0; r < r0 + rows; r++)
      std::memcpy(gather->dest + static_cast<int64_t>(r) * n, gather->source + static_cast<int64_t>(gather->order[r]) * n,
                  sizeof(float) * n);
  }
  const int last = static_cast<int>(layers_.size()) - 1;
  const bool relu = config_.activation == Activation::Relu;
  auto at = [r0](auto* buffer, int width) { return row_at(buffer, r0, width); };
  const float* x_rows = at(x, n);
  const float* eps_rows = at(eps, d);
  float *mean = at(ws.mean.data(), d), *logvar = at(ws.logvar.data(), d), *z = at(ws.z.data(), d);
  LossSums* sums = &row_sums_[r0];  // one per row, added up in row order by the caller

  // Forward: encoder -> head -> fused latent layer (split, z, KL) -> decoder -> logits.
  for (int li = 0; li <= last; li++) {
    const DenseView& L = layers_[li];
    float* out = at(layer_output(ws, li), L.out);
    const float* in = at(layer_input(ws, li, x), L.in);
    const PackedMatrix* packed_w = forward_reads_w_ ? nullptr : &train_w_[li];
    {
      VAE_PHASE(Forward);
      if (li != n_encoder_ && li != last) dense_hidden_forward(out, in, L, rows, packed_w);
      else dense_forward(out, in, L.W, L.b, rows, L.in, L.out, 1, false, 0, packed_w);
    }
    if (li != n_encoder_) continue;
    VAE_PHASE(Latent);
    for (int r = 0; r < rows; r++) {
      const int64_t o = static_cast<int64_t>(r) * d;
      sums[r].kl = latent_forward_fused(mean + o, logvar + o, z + o, out + 2 * o, eps_rows + o, 1, d);
    }
  }
  const float* logits = at(layer_output(ws, last), n);
  if (!backward) {
    VAE_PHASE(Loss);
    for (int r = 0; r < rows; r++) {
      const int64_t o = static_cast<int64_t>(r) * n;
      sums[r].reconstruction = reconstruction_loss(logits + o, x_rows + o, n);
    }
    return;
  }

  // Backward: the loss gradient, then each layer's input gradient from its
  // output gradient (dout[li] = dLoss/d(pre-activation output of layer li)).
  float* dlogits = at(ws.dout[last].data(), n);
  const bool bernoulli = config_.likelihood == Likelihood::Bernoulli;
  {
    VAE_PHASE(Loss);
    for (int r = 0; r < rows; r++) {
      const int64_t o = static_cast<int64_t>(r) * n;
      if (bernoulli) {
        sums[r].reconstruction = bce_logits_fused(dlogits + o, logits + o, x_rows + o, loss_scale, n, 1);
      } else {
        sums[r].reconstruction = gaussian_sse_forward(logits + o, x_rows + o, n);
        gaussian_sse_backward(dlogits + o, logits + o, x_rows + o, loss_scale, n);
      }
    }
  }
  auto pack_dout = [&](int li) {
    VAE_PHASE(PackOutputGrad);
    ws.dout_packed[li].pack_rows(ws.dout[li].data(), layers_[li].out, r0, r0 + rows);
  };
  pack_dout(last);
  // The head's output gradient comes from the latent layer, whose backward
  // runs right after the first decoder layer's (the step before the head's).
  for (int li = last; li > 0; li--) {
    const DenseView& L = layers_[li];
    // The first decoder layer's input is z; every other input is a hidden
    // layer's activation, whose backward is applied here too.
    const bool from_z = li == n_encoder_ + 1;
    float* din = from_z ? at(ws.dz.data(), d) : at(ws.dout[li - 1].data(), L.in);
    const float* activation = from_z ? nullptr : at(layer_output(ws, li - 1), L.in);
    {
      VAE_PHASE(InputGrad);
      dense_backward_input(din, at(ws.dout[li].data(), L.out), L.W, rows, L.in, L.out, 1,
                           activation && relu ? activation : nullptr, &train_wt_[li]);
      if (activation && !relu) activation_backward_fused(config_.activation, din, din, activation, static_cast<int64_t>(rows) * L.in);
    }
    if (from_z) {
      {
        VAE_PHASE(Latent);
        latent_backward_fused(at(ws.dout[n_encoder_].data(), 2 * d), din, mean, logvar, eps_rows,
                              config_.beta * loss_scale, rows, d);
      }
      pack_dout(n_encoder_);
    } else {
      pack_dout(li - 1);
    }
    // Layer li's output gradient was packed before its input gradient, which
    // was this block's last read of its weights.
    ws.layers_done[li].fetch_add(1, std::memory_order_release);
  }
  ws.layers_done[0].fetch_add(1, std::memory_order_release);
}

// ---- the pieces of the weights: weight gradients and Adam -------------------------------

const std::vector<Model::WeightPiece>& Model::weight_pieces() {
  if (!weight_pieces_.empty()) return weight_pieces_;
  for (int li = 0; li < static_cast<int>(layers_.size()); li++) {
    const DenseView& L = layers_[li];
    weight_pieces_.push_back({li, -1, 0});
    // Layer 0's pieces are claimed last, and a thread that finds none left
    // waits for the others' last ones: its last kPieceRows or so rows are cut
    // into two thirds and one third, starting on panels, so those are short.
    const int body = li == 0 && L.in >= 2 * 16 ? std::max(0, L.in - kPieceRows) / 16 * 16 : L.in;
    const int taper = L.in - body;
    for (int r0 = 0; r0 < body; r0 += kPieceRows) weight_pieces_.push_back({li, r0, std::min(body, r0 + kPieceRows)});
    if (taper) {
      const int split = body + (taper * 2 / 3 + 15) / 16 * 16;
      weight_pieces_.push_back({li, body, split});
      if (split < L.in) weight_pieces_.push_back({li, split, L.in});
    }
  }
  // Tasks are claimed from the last: the last layer first (its output
  // gradient is final first), and within a layer the largest pieces first,
  // so the small ones fill the gaps at the end.
  auto cost = [&](const WeightPiece& p) {
    const int width = layers_[p.layer].out;
    return p.r0 < 0 ? width / 8 : (p.r1 - p.r0) * width;
  };
  std::stable_sort(weight_pieces_.begin(), weight_pieces_.end(), [&](const WeightPiece& a, const WeightPiece& b) {
    return a.layer != b.layer ? a.layer < b.layer : cost(a) < cost(b);
  });
  return weight_pieces_;
}

void Model::update_piece(const WeightPiece& piece, const float* x, int rows, const AdamStep* adam) {
  Workspace& ws = *train_ws_;
  const DenseView &L = layers_[piece.layer], &G = grad_layers_[piece.layer];
  const float* dout = ws.dout[piece.layer].data();  // [rows, out]
  // Adam over n parameters from p, with their gradients and moments.
  auto adam_update = [&](float* p, int64_t n) {
    VAE_PHASE(Adam);
    const int64_t offset = p - params_.data();
    adam_update_fused(p, grads_.data() + offset, adam_m_.data() + offset, adam_v_.data() + offset, n, *adam, 1);
  };
  // Each weight's gradient is written once per step (accumulate = false).
  if (piece.r0 < 0) {
    {
      VAE_PHASE(BiasGrad);
      dense_backward_bias(G.b, dout, rows, L.out, 1, false);
    }
    if (adam) adam_update(L.b, L.out);
    return;
  }
  // dW[r0:r1, :] = in[:, r0:r1]^T dout
  {
    VAE_PHASE(WeightGrad);
    dense_backward_weights(G.W + static_cast<int64_t>(piece.r0) * L.out, dout, layer_input(ws, piece.layer, x) + piece.r0,
                           rows, piece.r1 - piece.r0, L.out, 1, false, L.in, &ws.dout_packed[piece.layer]);
  }
  if (!adam) return;
  // Adam, then the repacking for the next step's products, 16 rows at a time
  // (one panel of W^T) while those rows are in cache.
  for (int r0 = piece.r0; r0 < piece.r1; r0 += 16) {
    const int r1 = std::min(piece.r1, r0 + 16);
    adam_update(L.W + static_cast<int64_t>(r0) * L.out, static_cast<int64_t>(r1 - r0) * L.out);
    if (!forward_reads_w_) {
      VAE_PHASE(RepackForward);
      train_w_[piece.layer].pack_rows(L.W, L.out, r0, r1);
    }
    if (piece.layer > 0) {  // layer 0 needs no input gradient
      VAE_PHASE(RepackTransposed);
      train_wt_[piece.layer].pack_transposed_cols(L.W, L.out, r0, r1);
    }
  }
}

// ---- the epoch loop -----------------------------------------------------------------------

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
  ensure_training_packs();
  // The optimizer rewrites the parameters: inference repacks; the training
  // packs follow every update.
  train_packed_version_ = ++params_version_;
  batch_x_.resize(static_cast<size_t>(batch_size) * n);
  batch_eps_.resize(static_cast<size_t>(batch_size) * d);
  next_batch_eps_.resize(static_cast<size_t>(batch_size) * d);
  // Each batch's noise is drawn during the previous step, off the critical
  // path, when that batch is part of this call. If the loop then stops before
  // the batch runs (cancel, divergence), the draw is undone, so the training
  // RNG always ends where drawing batch by batch would leave it.
  bool eps_drawn = false;
  Rng rng_before_draw;
  int done = 0;
  for (; done < count; done++) {
    if (cancel && cancel->load(std::memory_order_relaxed)) break;
    const int64_t start = (first_batch + done) * batch_size;
    if (start >= n_rows) break;
    const int rows = static_cast<int>(std::min<int64_t>(batch_size, n_rows - start));
    if (!eps_drawn) train_rng_.fill_normal(batch_eps_.data(), static_cast<int64_t>(rows) * d);
    const int64_t next_start = start + batch_size;
    eps_drawn = done + 1 < count && next_start < n_rows;
    if (eps_drawn) rng_before_draw = train_rng_;
    const AdamStep step = adam_step_constants(adam, adam_step_ + 1);
    const StepBackward backward{&step, eps_drawn ? next_batch_eps_.data() : nullptr,
                                eps_drawn ? std::min<int64_t>(batch_size, n_rows - next_start) * d : 0};

    // The blocks of rows gather their own shuffled rows.
    const RowGather gather{data, permutation_.data() + start, batch_x_.data()};
    const auto step_start = std::chrono::steady_clock::now();
    const LossSums sums = train_step(batch_x_.data(), rows, batch_eps_.data(), &gather, &backward);
    const std::chrono::duration<double> step_seconds = std::chrono::steady_clock::now() - step_start;
    VAE_PHASE_STEP(step_seconds.count());
    const double loss = batch_loss(sums, rows);
    if (!std::isfinite(loss)) {
      if (eps_drawn) train_rng_ = rng_before_draw;
      *error = "training diverged: the loss became non-finite at batch " + std::to_string(first_batch + done) +
               " of the epoch (the parameters are those after the last finite batch); lower learningRate";
      return -1;
    }
    adam_step_++;
    if (eps_drawn) std::swap(batch_eps_, next_batch_eps_);
    stats[done] = {loss, sums.reconstruction / rows, sums.kl / rows, step_seconds.count()};
  }
  if (eps_drawn) train_rng_ = rng_before_draw;
  return done;
}

LossSums Model::loss_and_gradients(const float* x, int rows, const float* eps, float* grads) {
  ensure_training_packs();
  const StepBackward gradients_only{nullptr, nullptr, 0};
  const LossSums sums = train_step(x, rows, eps, nullptr, grads ? &gradients_only : nullptr);
  if (grads) std::copy(grads_.begin(), grads_.end(), grads);
  return sums;
}

}  // namespace vae
