// MLP 784-512-512-10 (ReLU, ReLU, softmax) inference through Session::Run, the
// model the peer harness (bench/peers/) runs in ONNX Runtime and PyTorch.
// Names are BM_Mlp/batch:B/threads:T, T = intra-op threads (inter-op 1: the MLP
// is a chain). Weights come from bench/peers/out/*.npy when present (the same
// weights the peers use), else from a fixed seed.
//   bench/peers/run.sh --gradserve-bench build/bench/mlp_bench
#include <benchmark/benchmark.h>

#include <filesystem>

#include "bench/bench_util.h"
#include "graph/builder/ops.h"
#include "graph/npy.h"
#include "runtime/session.h"

namespace gradserve::bench {
namespace {

Tensor Weight(const std::string& name, const Shape& shape, uint64_t seed) {
  const char* dir = std::getenv("GRADSERVE_MLP_WEIGHTS");
  if (dir != nullptr) {
    absl::StatusOr<Tensor> t = ReadNpy(std::string(dir) + "/" + name + ".npy");
    if (t.ok() && t->shape() == shape) return *t;
  }
  return RandomTensor(shape, seed, 0.05f);
}

std::unique_ptr<Session> MakeMlp(int threads) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output h = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 784});
  const int64_t dims[] = {784, 512, 512, 10};
  for (int layer = 0; layer < 3; ++layer) {
    const std::string n = std::to_string(layer + 1);
    Output w = ops::Const(s, Weight("w" + n, Shape{dims[layer], dims[layer + 1]}, 10 + layer));
    Output b = ops::Const(s, Weight("b" + n, Shape{dims[layer + 1]}, 20 + layer));
    h = ops::BiasAdd(s, ops::MatMul(s, h, w), b);
    if (layer < 2) h = ops::Relu(s, h);
  }
  ops::Softmax(s.WithName("probabilities"), h);
  if (!s.ok()) return nullptr;
  auto session = Session::Create(std::move(graph), {.intra_op_threads = threads,
                                                    .inter_op_threads = 1});
  return session.ok() ? std::move(session).value() : nullptr;
}

void BM_Mlp(benchmark::State& state) {
  const int64_t batch = state.range(0);
  auto session = MakeMlp(static_cast<int>(state.range(1)));
  if (session == nullptr) return state.SkipWithError("could not build the MLP");
  const FeedList feeds = {{"x", RandomTensor(Shape{batch, 784}, 7)}};
  const std::vector<std::string> fetches = {"probabilities"};
  std::vector<Tensor> out;
  for (auto _ : state) {
    if (!session->Run(feeds, fetches, {}, &out).ok()) return state.SkipWithError("run failed");
    benchmark::DoNotOptimize(out[0].raw_data());
  }
  state.counters["examples_per_s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Mlp)
    ->ArgNames({"batch", "threads"})
    ->ArgsProduct({{1, 64, 256}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace gradserve::bench

BENCHMARK_MAIN();
