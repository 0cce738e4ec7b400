// Measures the machine's fp32 FMA throughput, the roofline GEMM is judged by.
#pragma once

namespace vae {

// Runs independent FMA chains, with the FMA of the matrix multiply's backend
// (gemm_auto_backend: AVX-512F, AVX2+FMA, else portable code), on `threads`
// threads at once for about `seconds` and returns the total GFLOP/s (2 FLOP
// per FMA lane). threads is capped at hardware_threads().
double measure_fma_peak_gflops(int threads, double seconds);

}  // namespace vae
