// Shared helpers for gradserve's benchmarks.
#pragma once

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
// FP32 FLOP per cycle per core on this machine kind (two 512-bit FMA pipes).
inline constexpr double kFlopsPerCycle = 64.0;

inline Tensor RandomTensor(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Tensor t(DType::kFloat, shape);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  for (float& v : t.span<float>()) v = dist(rng);
  return t;
}

}  // namespace gradserve::bench
