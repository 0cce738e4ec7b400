// The backward of the hidden-layer activations, written once:
// din = dout * act'(x) in terms of out = act(x) (din may be dout). ops.cc
// instantiates it with libm's expm1 (the reference), elementwise.cc with
// vec_math's (its vectorized builds); only softplus needs expm1.
#pragma once
#include <cstdint>

#include "core/ops.h"

namespace vae {

template <float (*ExpM1)(float)>
inline void activation_backward_body(Activation act, float* din, const float* dout, const float* out, int64_t n) {
  switch (act) {
    case Activation::Relu:
      for (int64_t i = 0; i < n; i++) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
      break;
    case Activation::LeakyRelu:
      // y > 0 exactly when x > 0 (slope is positive).
      for (int64_t i = 0; i < n; i++) din[i] = out[i] > 0.0f ? dout[i] : kLeakySlope * dout[i];
      break;
    case Activation::Tanh:
      for (int64_t i = 0; i < n; i++) din[i] = dout[i] * (1.0f - out[i] * out[i]);
      break;
    case Activation::Sigmoid:
      for (int64_t i = 0; i < n; i++) din[i] = dout[i] * out[i] * (1.0f - out[i]);
      break;
    case Activation::Softplus:
      // softplus'(x) = sigmoid(x) = 1 - exp(-y) where y = softplus(x).
      for (int64_t i = 0; i < n; i++) din[i] = dout[i] * -ExpM1(-out[i]);
      break;
  }
}

}  // namespace vae
