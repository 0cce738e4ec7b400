// Seeded random numbers: xoshiro256** seeded through splitmix64, normals by
// Box-Muller. A single stream per use (training, evaluation, sampling) so that
// the same seed gives bit-identical draws whatever the thread count.
#pragma once
#include <cmath>
#include <cstdint>

namespace vae {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }

  void reseed(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& word : s_) word = splitmix64(x);
    has_spare_ = false;
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in (0, 1]: never 0, so log() below is always finite.
  double uniform_open0() { return (static_cast<double>(next_u64() >> 11) + 1.0) * 0x1.0p-53; }

  // Uniform integer in [0, n) without modulo bias (Lemire's method).
  uint64_t below(uint64_t n) {
    __uint128_t m = static_cast<__uint128_t>(next_u64()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<__uint128_t>(next_u64()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Standard normal draw (Box-Muller in double precision, pairs cached).
  float normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double radius = std::sqrt(-2.0 * std::log(uniform_open0()));
    const double angle = 6.283185307179586476925 * uniform_open0();
    spare_ = static_cast<float>(radius * std::sin(angle));
    has_spare_ = true;
    return static_cast<float>(radius * std::cos(angle));
  }

  void fill_normal(float* out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = normal();
  }

  // The full state, for saving a model mid-training and resuming bit-identically.
  static constexpr int kStateWords = 6;
  void get_state(uint64_t out[kStateWords]) const {
    for (int i = 0; i < 4; i++) out[i] = s_[i];
    out[4] = has_spare_ ? 1 : 0;
    float spare = spare_;
    uint32_t bits;
    static_assert(sizeof(bits) == sizeof(spare), "float is 32 bits");
    __builtin_memcpy(&bits, &spare, sizeof(bits));
    out[5] = bits;
  }
  void set_state(const uint64_t in[kStateWords]) {
    for (int i = 0; i < 4; i++) s_[i] = in[i];
    has_spare_ = in[4] != 0;
    const uint32_t bits = static_cast<uint32_t>(in[5]);
    __builtin_memcpy(&spare_, &bits, sizeof(bits));
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
  bool has_spare_ = false;
  float spare_ = 0.0f;
};

}  // namespace vae
