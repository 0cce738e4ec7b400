// The activation and gradient buffers of a Model (private to model*.cc).
#pragma once
#include <vector>

#include "core/model.h"

namespace vae {

// Activations of one forward pass (and their gradients when training). Each
// part is sized for the most rows it has served; each layer's output is kept
// because backward needs it.
struct Model::Workspace {
  std::vector<std::vector<float>> encoder_out;  // [B, h_i] post-activation
  std::vector<float> head;                      // [B, 2d]
  std::vector<float> mean, logvar, z;           // [B, d]
  std::vector<std::vector<float>> decoder_out;  // [B, g_j] post-activation; last = logits [B, n]
  // Gradients (training only): w.r.t. each layer's pre-activation output
  // (dout[li]: [B, out of layer li], kept for the weight gradients) and z.
  std::vector<std::vector<float>> dout;
  std::vector<float> dz;                        // [B, d]

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
    dout.resize(c.encoder_layers.size() + c.decoder_layers.size() + 2);
    size_t li = 0;
    for (int w : c.encoder_layers) dout[li++].resize(B * w);
    dout[li++].resize(B * 2 * d);
    for (int w : c.decoder_layers) dout[li++].resize(B * w);
    dout[li].resize(B * c.input_dim);
    dz.resize(B * d);
  }
};

}  // namespace vae
