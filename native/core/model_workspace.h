// Private to model*.cc: a training step's activation and gradient buffers,
// and how passes split a batch into blocks of rows.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/model.h"
#include "core/thread_pool.h"

namespace vae {

// A pass over a batch runs each block of rows through every layer on one
// thread (rows are independent), so threads meet once per pass, not after
// every product. Blocks of about 128 rows, the fewest that still give every
// thread one: larger blocks run the products faster (each packed weight panel
// serves more row tiles), more blocks balance busy cores better.
constexpr int kTargetBlockRows = 128;
inline int even_row_block_count(int rows, int threads) {
  return std::max(1, std::min(rows, std::max(threads, (rows + kTargetBlockRows - 1) / kTargetBlockRows)));
}
// Threads claim blocks from the highest index (ThreadPool::parallel), and one
// that finds none left waits for the others' last blocks, on average for half
// a block. So when several threads share more blocks than there are threads,
// the first `threads` even blocks (claimed last) are split in halves, which
// halves that wait.
inline bool halves_last_blocks(int even_blocks, int threads) { return threads > 1 && even_blocks > threads; }
inline int row_block_count(int rows, int threads) {
  const int even = even_row_block_count(rows, threads);
  return halves_last_blocks(even, threads) ? even + threads : even;
}
// Block b of row_block_count(rows, threads) over [0, rows): rows [*r0, *r1).
// Every boundary is a multiple of row_multiple (see for_row_blocks).
inline void row_block(int rows, int threads, int b, int row_multiple, int* r0, int* r1) {
  const int even = even_row_block_count(rows, threads);
  const int64_t units = (rows + row_multiple - 1) / row_multiple;
  // Halves of an even block are blocks of twice as many, over the same bounds.
  int64_t parts = even, part = b;
  if (halves_last_blocks(even, threads)) {
    if (b < 2 * threads) parts = 2 * static_cast<int64_t>(even);
    else part = b - threads;
  }
  *r0 = static_cast<int>(units * part / parts * row_multiple);
  *r1 = static_cast<int>(std::min<int64_t>(rows, units * (part + 1) / parts * row_multiple));
}

// Calls f(r0, n) for row_block_count(rows, threads) blocks [r0, r0 + n) of
// [0, rows) (see row_block), on up to `threads` threads of the pool.
// Every block boundary is a multiple of row_multiple: inference passes the
// matrix multiply's micro-tile rows, so that only the last block can end in a
// ragged tile (which costs about as much as a full one). Blocks may be empty
// (not called) when there are fewer multiples than blocks.
template <class F>
void for_row_blocks(int rows, int threads, F&& f, int row_multiple = 1) {
  const int blocks = row_block_count(rows, threads);
  auto block = [&](int b, int /*n_tasks*/) {
    int r0, r1;
    row_block(rows, threads, b, row_multiple, &r0, &r1);
    if (r1 > r0) f(r0, r1 - r0);
  };
  if (blocks == 1) return block(0, 1);
  ThreadPool::shared().parallel(blocks, threads, block);
}

// Row r0 of a row-major buffer of rows `width` floats wide.
template <class T>
T* row_at(T* buffer, int64_t r0, int64_t width) {
  return buffer + r0 * width;
}

// A training step's activations and gradients, sized for the largest batch
// seen. Each layer's output is kept because backward needs it.
struct Model::Workspace {
  std::vector<std::vector<float>> encoder_out;  // [B, h_i] post-activation
  std::vector<float> head;                      // [B, 2d]
  std::vector<float> mean, logvar, z;           // [B, d]
  std::vector<std::vector<float>> decoder_out;  // [B, g_j] post-activation; last = logits [B, n]
  // Gradients w.r.t. each layer's pre-activation output (dout[li]: [B, out of
  // layer li], kept for the weight gradients) and z.
  std::vector<std::vector<float>> dout;
  std::vector<float> dz;  // [B, d]
  // dout[li] packed as the weight-gradient products read it (their op(B)),
  // each block of rows packing its own rows while they are in cache, so the
  // pieces of the weights (Model::train_step) share one copy instead of each reading dout in
  // place (strided) or packing it again. Shallow K blocks: the same bits as
  // reading dout itself.
  std::vector<PackedMatrix> dout_packed;
  int capacity = 0;       // rows every buffer holds
  // Progress of a step's blocks of rows, for the pieces of the weights that
  // wait on it (Model::train_step): per layer, how many blocks are done with
  // it (its output gradient final and packed, its weights no longer read);
  // and whether the batch's loss is finite (-1: not decided yet).
  std::unique_ptr<std::atomic<int>[]> layers_done;
  std::atomic<int> loss_finite{-1};

  void ensure(const ModelConfig& c, int rows) {
    if (capacity >= rows) return;
    capacity = rows;
    const size_t B = static_cast<size_t>(rows), d = static_cast<size_t>(c.latent_dim);
    encoder_out.resize(c.encoder_layers.size());
    for (size_t i = 0; i < encoder_out.size(); i++) encoder_out[i].resize(B * c.encoder_layers[i]);
    head.resize(B * 2 * d);
    mean.resize(B * d);
    logvar.resize(B * d);
    z.resize(B * d);
    decoder_out.resize(c.decoder_layers.size() + 1);
    for (size_t j = 0; j < c.decoder_layers.size(); j++) decoder_out[j].resize(B * c.decoder_layers[j]);
    decoder_out.back().resize(B * c.input_dim);
    dout.resize(c.encoder_layers.size() + c.decoder_layers.size() + 2);
    size_t li = 0;
    for (int w : c.encoder_layers) dout[li++].resize(B * w);
    dout[li++].resize(B * 2 * d);
    for (int w : c.decoder_layers) dout[li++].resize(B * w);
    dout[li].resize(B * c.input_dim);
    dz.resize(B * d);
    dout_packed.resize(dout.size());
    layers_done.reset(new std::atomic<int>[dout.size()]);
  }
};

}  // namespace vae
