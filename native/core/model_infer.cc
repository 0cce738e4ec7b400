// Inference: encode, decode, reconstruct, evaluate and the IWAE estimate.
//
// Each call runs blocks of rows through every layer on one thread
// (for_blocks), reading the weights prepacked (packed_weights()). A
// block's activations go to a scratch buffer of the thread's own, reused block
// after block and call after call (up to kKeptScratchFloats is kept between
// blocks), so they stay in that core's cache instead of travelling
// to memory, and encode, decode and reconstruct allocate nothing once warm.
// Results go straight to the caller's arrays, output transforms included.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/elementwise.h"
#include "core/model.h"
#include "core/model_workspace.h"

namespace vae {

namespace {

// The pool counts tasks in int: one job covers at most this many rows.
constexpr int64_t kJobRows = int64_t(1) << 20;
// evaluate draws the noise of this many rows at a time (the draw is serial).
constexpr int kEvaluateChunkRows = 4096;
// log_likelihood keeps K log-weights per row of a chunk. The noise is drawn
// chunk by chunk, sample by sample: changing this changes the estimates.
constexpr int kLikelihoodChunkRows = 256;

// A thread keeps its scratch between blocks up to this size (64 MB); a larger
// one (a very wide model) is freed after each block rather than held for the
// thread's life.
constexpr size_t kKeptScratchFloats = size_t(1) << 24;

std::vector<float>& scratch_vector() {
  thread_local std::vector<float> scratch;
  return scratch;
}

// This thread's scratch, at least `floats` long.
float* thread_scratch(size_t floats) {
  std::vector<float>& scratch = scratch_vector();
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch.data();
}

void trim_thread_scratch() {
  std::vector<float>& scratch = scratch_vector();
  if (scratch.size() > kKeptScratchFloats) std::vector<float>().swap(scratch);
}

// for_row_blocks with block boundaries on whole micro-tiles of rows (4096 rows
// as 128-row blocks would end each block in a 2-row tile), trimming each
// thread's scratch after each block.
template <class F>
void for_blocks(int rows, int threads, F&& f) {
  for_row_blocks(
      rows, threads,
      [&](int r0, int n) {
        f(r0, n);
        trim_thread_scratch();
      },
      kGemmTileRows);
}

// Consecutive pieces of this thread's scratch for one block of rows.
class BlockScratch {
 public:
  explicit BlockScratch(size_t floats) : next_(thread_scratch(floats)) {}
  float* take(size_t floats) {
    float* piece = next_;
    next_ += floats;
    return piece;
  }

 private:
  float* next_;
};

// Calls f(r0, n) for the blocks of rows of [0, rows) (see for_row_blocks),
// one pool job per kJobRows rows; stops after a job in which check failed.
template <class F>
void for_inference_blocks(int64_t rows, int threads, const InputCheck* check, F&& f) {
  for (int64_t start = 0; start < rows; start += kJobRows) {
    const int job = static_cast<int>(std::min(kJobRows, rows - start));
    for_blocks(job, threads, [&](int r0, int n) { f(start + r0, n); });
    if (check && check->failed()) return;
  }
}

// Scans a block's input rows when the call checks its input: false if the
// block must skip its work (see InputCheck).
bool input_ok(InputCheck* check, const float* rows, int64_t n) { return !check || check->scan(rows, n); }

}  // namespace

size_t thread_inference_scratch_floats() { return scratch_vector().size(); }

// ---- one block of rows, on the calling thread ---------------------------------------

size_t Model::encoder_scratch(int rows) const {
  size_t widths = 2 * static_cast<size_t>(config_.latent_dim);  // the head
  for (int w : config_.encoder_layers) widths += w;
  return widths * rows;
}

size_t Model::decoder_scratch(int rows) const {
  size_t widths = 0;
  for (int w : config_.decoder_layers) widths += w;
  return widths * rows;
}

void Model::encoder_rows(float* s, const float* x, int rows, const PackedLayers& packed, float* mean,
                         float* logvar) const {
  const float* in = x;
  for (int i = 0; i < n_encoder_; i++) {
    const DenseView& L = layers_[i];
    dense_hidden_forward(s, in, L, rows, &packed[i]);
    in = s;
    s += static_cast<size_t>(rows) * L.out;
  }
  const DenseView& H = layers_[n_encoder_];
  const int d = config_.latent_dim;
  if (!logvar) {
    // Only the mean half of the head: the first d of its 2d weight columns.
    dense_forward(mean, in, H.W, H.b, rows, H.in, d, 1, false, 2 * d, &packed[n_encoder_]);
    return;
  }
  dense_forward(s, in, H.W, H.b, rows, H.in, H.out, 1, false, 0, &packed[n_encoder_]);
  gaussian_head_forward(mean, logvar, s, rows, d);
}

void Model::decoder_rows(float* s, const float* z, int rows, const PackedLayers& packed, float* out) const {
  const float* in = z;
  const int first = n_encoder_ + 1, last = static_cast<int>(layers_.size()) - 1;
  for (int li = first; li < last; li++) {
    dense_hidden_forward(s, in, layers_[li], rows, &packed[li]);
    in = s;
    s += static_cast<size_t>(rows) * layers_[li].out;
  }
  const DenseView& L = layers_[last];
  dense_forward(out, in, L.W, L.b, rows, L.in, L.out, 1, false, 0, &packed[last]);
}

void Model::dense_hidden_forward(float* out, const float* in, const DenseView& L, int rows,
                                 const PackedMatrix* packed) const {
  const bool relu = config_.activation == Activation::Relu;
  dense_forward(out, in, L.W, L.b, rows, L.in, L.out, 1, relu, 0, packed);
  if (!relu) activation_fused(config_.activation, out, out, static_cast<int64_t>(rows) * L.out);
}

void Model::output_transform(float* out, int64_t count) const {
  if (config_.likelihood == Likelihood::Bernoulli) activation_fused(Activation::Sigmoid, out, out, count);
}

// ---- the calls ------------------------------------------------------------------------

void Model::encode(const float* x, int64_t rows, float* mean, float* logvar, InputCheck* check) const {
  const PackedLayers& packed = packed_weights();
  const int n = config_.input_dim, d = config_.latent_dim;
  for_inference_blocks(rows, config_.threads, check, [&](int64_t r0, int count) {
    const float* xs = row_at(x, r0, n);
    if (!input_ok(check, xs, static_cast<int64_t>(count) * n)) return;
    encoder_rows(thread_scratch(encoder_scratch(count)), xs, count, packed, row_at(mean, r0, d),
                 logvar ? row_at(logvar, r0, d) : nullptr);
  });
}

void Model::decode(const float* z, int64_t rows, float* out, InputCheck* check) const {
  const PackedLayers& packed = packed_weights();
  const int n = config_.input_dim, d = config_.latent_dim;
  for_inference_blocks(rows, config_.threads, check, [&](int64_t r0, int count) {
    const float* zs = row_at(z, r0, d);
    if (!input_ok(check, zs, static_cast<int64_t>(count) * d)) return;
    float* o = row_at(out, r0, n);
    decoder_rows(thread_scratch(decoder_scratch(count)), zs, count, packed, o);
    output_transform(o, static_cast<int64_t>(count) * n);
  });
}

void Model::reconstruct(const float* x, int64_t rows, const float* eps, float* out, InputCheck* check) const {
  const PackedLayers& packed = packed_weights();
  const int n = config_.input_dim, d = config_.latent_dim;
  for_inference_blocks(rows, config_.threads, check, [&](int64_t r0, int count) {
    const float* xs = row_at(x, r0, n);
    if (!input_ok(check, xs, static_cast<int64_t>(count) * n)) return;
    const size_t nd = static_cast<size_t>(count) * d;
    BlockScratch s(encoder_scratch(count) + 3 * nd + decoder_scratch(count));
    float *enc = s.take(encoder_scratch(count)), *mean = s.take(nd), *logvar = s.take(nd), *z = s.take(nd);
    encoder_rows(enc, xs, count, packed, mean, logvar);
    // z = mean + exp(logvar/2) * eps, or z = mean without noise.
    if (eps) reparameterize_forward(z, mean, logvar, row_at(eps, r0, d), static_cast<int64_t>(nd));
    else z = mean;
    float* o = row_at(out, r0, n);
    decoder_rows(s.take(decoder_scratch(count)), z, count, packed, o);
    output_transform(o, static_cast<int64_t>(count) * n);
  });
}

double Model::row_reconstruction_loss(const float* logits, const float* x, int n, float* gradient) const {
  if (config_.likelihood == Likelihood::Bernoulli) return bce_logits_fused(gradient, logits, x, 1.0f, n, 1);
  return gaussian_sse_forward(logits, x, n);
}

LossSums Model::evaluate(const float* x, int64_t rows, uint64_t seed, InputCheck* check) const {
  const PackedLayers& packed = packed_weights();
  const int n = config_.input_dim, d = config_.latent_dim;
  Rng rng(seed);  // one stream over all rows, drawn chunk by chunk
  std::vector<float> eps;
  std::vector<LossSums> row_sums;  // added in row order: the same sums for any thread count
  LossSums total;
  for (int64_t start = 0; start < rows; start += kEvaluateChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kEvaluateChunkRows, rows - start));
    eps.resize(static_cast<size_t>(chunk) * d);
    rng.fill_normal(eps.data(), static_cast<int64_t>(chunk) * d);
    row_sums.resize(chunk);
    for_blocks(chunk, config_.threads, [&](int b0, int count) {
      const float* xs = row_at(x, start + b0, n);
      if (!input_ok(check, xs, static_cast<int64_t>(count) * n)) return;
      const size_t nd = static_cast<size_t>(count) * d;
      BlockScratch s(encoder_scratch(count) + 3 * nd + decoder_scratch(count) + static_cast<size_t>(count + 1) * n);
      float *enc = s.take(encoder_scratch(count)), *mean = s.take(nd), *logvar = s.take(nd), *z = s.take(nd);
      float *dec = s.take(decoder_scratch(count)), *logits = s.take(static_cast<size_t>(count) * n);
      float* unused = s.take(n);
      encoder_rows(enc, xs, count, packed, mean, logvar);
      reparameterize_forward(z, mean, logvar, row_at(eps.data(), b0, d), static_cast<int64_t>(nd));
      decoder_rows(dec, z, count, packed, logits);
      for (int r = 0; r < count; r++)
        row_sums[b0 + r] = {row_reconstruction_loss(row_at(logits, r, n), row_at(xs, r, n), n, unused),
                            kl_forward(row_at(mean, r, d), row_at(logvar, r, d), d)};
    });
    if (check && check->failed()) return total;
    for (int r = 0; r < chunk; r++) {
      total.reconstruction += row_sums[r].reconstruction;
      total.kl += row_sums[r].kl;
    }
  }
  return total;
}

double Model::log_likelihood(const float* x, int64_t rows, int samples, uint64_t seed, InputCheck* check) const {
  const PackedLayers& packed = packed_weights();
  const int n = config_.input_dim, d = config_.latent_dim;
  Rng rng(seed);
  std::vector<float> mean, logvar, eps, log_weights;
  double total = 0.0;
  for (int64_t start = 0; start < rows; start += kLikelihoodChunkRows) {
    const int chunk = static_cast<int>(std::min<int64_t>(kLikelihoodChunkRows, rows - start));
    const size_t nd = static_cast<size_t>(chunk) * d;
    const float* xs = row_at(x, start, n);
    mean.resize(nd);
    logvar.resize(nd);
    eps.resize(nd);
    log_weights.assign(static_cast<size_t>(chunk) * samples, 0.0f);
    // q(z|x) of the chunk's rows, kept for its K decoder passes.
    for_blocks(chunk, config_.threads, [&](int b0, int count) {
      const float* xb = row_at(xs, b0, n);
      if (!input_ok(check, xb, static_cast<int64_t>(count) * n)) return;
      encoder_rows(thread_scratch(encoder_scratch(count)), xb, count, packed, row_at(mean.data(), b0, d),
                   row_at(logvar.data(), b0, d));
    });
    if (check && check->failed()) return total;
    for (int k = 0; k < samples; k++) {
      rng.fill_normal(eps.data(), static_cast<int64_t>(nd));
      for_blocks(chunk, config_.threads, [&](int b0, int count) {
        const size_t bd = static_cast<size_t>(count) * d;
        BlockScratch s(bd + decoder_scratch(count) + static_cast<size_t>(count + 1) * n);
        float *z = s.take(bd), *dec = s.take(decoder_scratch(count)), *logits = s.take(static_cast<size_t>(count) * n);
        float* unused = s.take(n);
        const float *mb = row_at(mean.data(), b0, d), *lb = row_at(logvar.data(), b0, d), *eb = row_at(eps.data(), b0, d);
        reparameterize_forward(z, mb, lb, eb, static_cast<int64_t>(bd));
        decoder_rows(dec, z, count, packed, logits);
        for (int r = 0; r < count; r++) {
          const double log_px = -row_reconstruction_loss(row_at(logits, r, n), row_at(xs, b0 + r, n), n, unused);
          // log p(z) - log q(z|x): the 2 pi terms cancel.
          double log_ratio = 0.0;
          for (int j = 0; j < d; j++) {
            const size_t i = static_cast<size_t>(r) * d + j;
            const double zi = z[i], e = eb[i];
            log_ratio += -0.5 * zi * zi + 0.5 * (e * e + lb[i]);
          }
          log_weights[static_cast<size_t>(b0 + r) * samples + k] = static_cast<float>(log_px + log_ratio);
        }
      });
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
