#include "fma_probe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gemm.h"
#include "simd.h"
#include "thread_pool.h"

namespace vae {

namespace {

// Enough independent accumulators to cover FMA latency x throughput
// (Zen 3: 4 cycles x 2 pipes = 8; Intel: 4 x 2 = 8; 12 leaves headroom).
constexpr int kChains = 12;
constexpr long kItersPerRound = 1 << 16;  // FMAs per chain between clock checks

// The AVX2 instantiation passes __m256 by value between default-target
// template bodies (-Wpsabi note), so they must be inlined into the AVX2 entry:
// always_inline (VAE_INLINE), because flatten alone does nothing at -O0.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // to the end of this file: GCC reports it at end of TU
#endif

// Runs kItersPerRound FMAs on each of kChains vectors; returns a value derived
// from all chains so the work cannot be optimised away.
template <class Ops>
VAE_INLINE float fma_round(float seed) {
  using Vec = typename Ops::Vec;
  Vec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = Ops::broadcast(seed + 0.001f * c);
  // x <- x * 0.999999 + 1e-6 converges to 1: stays finite and normal.
  const Vec m = Ops::broadcast(0.999999f), a = Ops::broadcast(1e-6f);
  for (long i = 0; i < kItersPerRound; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = Ops::fma(acc[c], m, a);
  }
  float out[Ops::kLanes];
  Vec sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = Ops::add(sum, acc[c]);
  Ops::store(out, sum);
  return out[0];
}

#if VAE_SIMD_X86
VAE_TARGET_AVX2 VAE_FLATTEN float fma_round_avx2(float seed) { return fma_round<simd::Avx2Ops>(seed); }
VAE_TARGET_AVX512 VAE_FLATTEN float fma_round_avx512(float seed) { return fma_round<simd::Avx512Ops>(seed); }
#endif

VAE_FLATTEN float fma_round_portable(float seed) { return fma_round<simd::PortableOps>(seed); }


template <class Ops>
constexpr double flops_per_round() {
  return 2.0 * kChains * Ops::kLanes * kItersPerRound;
}

// Runs rounds until `deadline` with the FMA of the matrix multiply's backend;
// returns the FLOPs done.
double run_until(std::chrono::steady_clock::time_point deadline, float* sink) {
  const GemmBackend backend = gemm_auto_backend();
  double flops = 0.0;
  float s = 1.0f;
  do {
#if VAE_SIMD_X86
    if (backend == GemmBackend::Avx512) {
      s = fma_round_avx512(s);
      flops += flops_per_round<simd::Avx512Ops>();
      continue;
    }
    if (backend == GemmBackend::Avx2) {
      s = fma_round_avx2(s);
      flops += flops_per_round<simd::Avx2Ops>();
      continue;
    }
#else
    (void)backend;
#endif
    s = fma_round_portable(s);
    flops += flops_per_round<simd::PortableOps>();
  } while (std::chrono::steady_clock::now() < deadline);
  *sink = s;
  return flops;
}

}  // namespace

double measure_fma_peak_gflops(int threads, double seconds) {
  threads = std::max(1, std::min(threads, hardware_threads()));
  seconds = std::max(0.01, seconds);
  using clock = std::chrono::steady_clock;

  // Plain threads rather than the shared pool: the probe must not hold the
  // pool's job lock for the whole measurement.
  std::vector<double> flops(threads, 0.0);
  std::vector<float> sinks(threads, 0.0f);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  clock::time_point deadline;
  auto body = [&](int t) {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    flops[t] = run_until(deadline, &sinks[t]);
  };

  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(body, t);
  while (ready.load() < threads - 1) std::this_thread::yield();
  const clock::time_point start = clock::now();
  deadline = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  go.store(true, std::memory_order_release);
  flops[0] = run_until(deadline, &sinks[0]);
  for (std::thread& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(clock::now() - start).count();

  double total_flops = 0.0;
  for (double f : flops) total_flops += f;
  volatile float keep = 0.0f;  // keep the results observable
  for (float s : sinks) keep = keep + s;
  return total_flops / elapsed * 1e-9;
}

}  // namespace vae
