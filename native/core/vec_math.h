// Branch-free float math that compilers vectorize (no libm calls): the bodies
// of the elementwise kernels in elementwise.cc. Polynomials from Cephes.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace vae {
namespace vec_math {

inline float bits_to_float(uint32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

inline uint32_t float_to_bits(float f) {
  uint32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

// e^x, relative error ~2e-7 for x in [-87, 88]; clamped outside (no inf);
// NaN gives NaN.
inline float exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // Round x / ln 2 to the nearest integer n with the 1.5 * 2^23 trick: the
  // sum's low mantissa bits then hold n as an integer too, so 2^n is built
  // from bits without converting a float to an integer, which for a NaN
  // would be undefined (a NaN's garbage n is harmless: r is NaN).
  const float shifter = 12582912.0f;
  const float shifted = x * 1.44269504088896341f + shifter;
  const float n = shifted - shifter;
  const uint32_t n_bits = float_to_bits(shifted) - float_to_bits(shifter);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  return y * bits_to_float((n_bits + 127u) << 23);
}

// log(1 + e) for e in [0, 1], accurate for tiny e (no 1 + e rounding).
inline float log1p_unit(float e) {
  // 1 + e = 2^k (1 + f) with f in [-0.293, 0.414]: f = e for k = 0, (e - 1) / 2 for k = 1.
  const bool high = e > 0.41421356f;
  const float f = high ? (e - 1.0f) * 0.5f : e;
  const float k = high ? 1.0f : 0.0f;
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z - 0.5f * z - 2.12194440e-4f * k;
  return f + y + 0.693359375f * k;
}

inline float abs(float x) { return std::fabs(x); }  // a mask, not a compare and select

// e^x - 1 without cancellation near 0: a Taylor polynomial for |x| < 0.5
// (truncation below 1e-7 relative), exp(x) - 1 elsewhere.
inline float expm1(float x) {
  float p = 1.0f / 5040.0f;
  p = p * x + 1.0f / 720.0f;
  p = p * x + 1.0f / 120.0f;
  p = p * x + 1.0f / 24.0f;
  p = p * x + 1.0f / 6.0f;
  p = p * x + 0.5f;
  const float small = (p * x) * x + x;
  return abs(x) < 0.5f ? small : exp(x) - 1.0f;
}

}  // namespace vec_math
}  // namespace vae
