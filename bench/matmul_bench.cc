// MatMul float32 throughput through Session::Run (oneDNN sgemm, the kernel's
// choice) next to Eigen's contraction (the alternative) on the same inputs, with
// GFLOP/s and the fraction of the FP32 peak computed from the current clock.
//   build/bench/matmul_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include "bench/bench_util.h"
#include "graph/builder/ops.h"
#include "runtime/session.h"

namespace gradserve::bench {
namespace {

void BM_MatMulSession(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output a = ops::Placeholder(s.WithName("a"), DType::kFloat, Shape{n, n});
  Output b = ops::Placeholder(s.WithName("b"), DType::kFloat, Shape{n, n});
  ops::MatMul(s.WithName("c"), a, b);
  auto session = Session::Create(std::move(graph), {.intra_op_threads = threads,
                                                    .inter_op_threads = 1});
  if (!session.ok()) return state.SkipWithError(std::string(session.status().message()).c_str());
  const FeedList feeds = {{"a", RandomTensor(Shape{n, n}, 1)}, {"b", RandomTensor(Shape{n, n}, 2)}};
  std::vector<Tensor> out;
  for (auto _ : state) {
    if (!(*session)->Run(feeds, {"c"}, {}, &out).ok()) return state.SkipWithError("run failed");
    benchmark::DoNotOptimize(out[0].raw_data());
  }
  SetFlopCounters(state, 2.0 * n * n * n, threads);
}

void BM_MatMulEigen(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  Eigen::ThreadPool pool(threads);
  Eigen::ThreadPoolDevice device(&pool, threads);
  Tensor a = RandomTensor(Shape{n, n}, 1), b = RandomTensor(Shape{n, n}, 2), c(DType::kFloat, Shape{n, n});
  const Eigen::array<Eigen::IndexPair<Eigen::DenseIndex>, 1> dims = {
      Eigen::IndexPair<Eigen::DenseIndex>(1, 0)};
  for (auto _ : state) {
    c.tensor<float, 2>().device(device) = a.tensor<float, 2>().contract(b.tensor<float, 2>(), dims);
    benchmark::DoNotOptimize(c.raw_data());
  }
  SetFlopCounters(state, 2.0 * n * n * n, threads);
}

void Sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "threads"});
  for (int64_t n : {256, 512, 1024, 2048})
    for (int64_t t : {1, 2}) b->Args({n, t});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_MatMulSession)->Apply(Sizes);
BENCHMARK(BM_MatMulEigen)->Apply(Sizes);

}  // namespace
}  // namespace gradserve::bench

BENCHMARK_MAIN();
