// Shared helpers for gradserve's benchmarks.
#pragma once

#include <benchmark/benchmark.h>
#include <cpuid.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "graph/tensor.h"

namespace gradserve::bench {

// The core clock in GHz, measured: a chain of dependent integer adds retires one
// add per cycle, so adds per second is the clock under load (/proc/cpuinfo shows
// the nominal or idle frequency in a VM). Measured once per process.
inline double CpuGhz() {
  static const double ghz = [] {
    constexpr int64_t kIters = 50'000'000;
    uint64_t x = 0;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < kIters; ++i) {
        asm volatile(
            "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
            "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
            : "+r"(x));
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, kIters * 8 / s * 1e-9);
    }
    return best;
  }();
  return ghz;
}
// FP32 FLOP per cycle per core: 2 FMA pipes x lanes x 2. AMD Zen 4 (family 0x19)
// runs AVX-512 on 256-bit pipes (32); Zen 5 (family 0x1a) and AVX-512 Intel
// cores have 512-bit pipes (64); AVX2-only cores have 32.
inline double FlopsPerCycle() {
  unsigned eax, ebx, ecx, edx;
  __cpuid(0, eax, ebx, ecx, edx);
  const bool amd = ebx == 0x68747541;  // "Auth"enticAMD
  __cpuid(1, eax, ebx, ecx, edx);
  const unsigned family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
  if (amd) return family >= 0x1a ? 64.0 : 32.0;
  return __builtin_cpu_supports("avx512f") ? 64.0 : 32.0;
}

// The FP32 peak of `threads` cores at the current clock, in GFLOP/s.
inline double PeakGflops(int threads) { return CpuGhz() * FlopsPerCycle() * threads; }

// Counters for an iteration of `flops` floating-point operations on `threads`
// cores: GFLOPS, peak_GFLOPS and pct_of_peak.
inline void SetFlopCounters(benchmark::State& state, double flops, int threads) {
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOPS"] = PeakGflops(threads);
  state.counters["pct_of_peak"] = benchmark::Counter(
      flops * 1e-9 / PeakGflops(threads) * 100, benchmark::Counter::kIsIterationInvariantRate);
}

inline Tensor RandomTensor(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Tensor t(DType::kFloat, shape);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  for (float& v : t.span<float>()) v = dist(rng);
  return t;
}

}  // namespace gradserve::bench
