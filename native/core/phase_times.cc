// See phase_times.h. Empty unless built with VAE_PHASE_TIMES.
#include "core/phase_times.h"

#ifdef VAE_PHASE_TIMES
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <vector>

namespace vae::phase {

namespace {

const char* const kNames[kCount] = {
    "gather rows",    "forward products", "latent layer",      "loss",
    "input gradients", "pack dout",       "weight gradients",  "bias gradients",
    "adam",           "repack W",         "repack W^T",        "noise draw",
    "waiting",        "step (wall)",
};

// Totals, printed per step when the addon is unloaded (at process exit).
struct Totals {
  std::atomic<long long> ns[kCount] = {};
  std::atomic<long long> steps{0};
  // Each step's wall time: its distribution separates the machine's quiet
  // spells (the fast steps) from its noisy ones, which the mean mixes.
  std::mutex step_walls_mutex;
  std::vector<long long> step_walls;

  ~Totals() {
    const double n = static_cast<double>(steps.load());
    if (n == 0) return;
    double threads_sum = 0;
    for (int p = 0; p < StepWall; p++) threads_sum += static_cast<double>(ns[p].load());
    std::fprintf(stderr, "\nvae-node phase times, microseconds per training step (%.0f steps), summed over threads:\n", n);
    for (int p = 0; p < kCount; p++) {
      const double us = static_cast<double>(ns[p].load()) / n / 1e3;
      if (p < StepWall) {
        std::fprintf(stderr, "  %-17s %9.1f  %5.1f%%\n", kNames[p], us, 100.0 * static_cast<double>(ns[p].load()) / threads_sum);
      } else {
        std::fprintf(stderr, "  %-17s %9.1f\n", kNames[p], us);
      }
    }
    std::fprintf(stderr, "  %-17s %9.1f\n", "phases, all", threads_sum / n / 1e3);
    std::vector<long long>& w = step_walls;
    if (w.empty()) return;
    std::sort(w.begin(), w.end());
    auto at = [&](double q) { return static_cast<double>(w[static_cast<size_t>(q * static_cast<double>(w.size() - 1))]) / 1e3; };
    std::fprintf(stderr, "  step walls (us): 10%% %.0f, median %.0f, 90%% %.0f of %zu\n", at(0.1), at(0.5), at(0.9), w.size());
  }
};

Totals& totals() {
  static Totals t;
  return t;
}

}  // namespace

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void add(Id id, long long ns) {
  Totals& t = totals();
  t.ns[id].fetch_add(ns, std::memory_order_relaxed);
  if (id != StepWall) return;
  std::lock_guard<std::mutex> lock(t.step_walls_mutex);
  t.step_walls.push_back(ns);
}

void count_step(double seconds) {
  totals().steps.fetch_add(1, std::memory_order_relaxed);
  add(StepWall, std::llround(seconds * 1e9));
}

}  // namespace vae::phase
#endif
