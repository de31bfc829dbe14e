// Conv2D and its two gradients (Conv2DBackpropInput, Conv2DBackpropFilter)
// through Session::Run, float32 NHWC, on the convolutions of the Fashion-MNIST
// CNN (bench/train_bench.cc) at batch 64:
//   conv1: x[64,28,28,1]  * f[3,3,1,32]  VALID -> y[64,26,26,32]
//   conv2: x[64,13,13,32] * f[3,3,32,64] VALID -> y[64,11,11,64]
// Each op does the same 2 x pixels x KH*KW*C x OC FLOPs; the counters give
// GFLOP/s and the fraction of the FP32 peak of `threads` cores at the measured clock.
// Names: BM_Conv/layer:L/op:O/threads:T, L 0 = conv1, 1 = conv2; O 0 = Conv2D,
// 1 = BackpropInput, 2 = BackpropFilter.
//   build/bench/conv_bench --benchmark_counters_tabular=true --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include "bench/bench_util.h"
#include "graph/builder/ops.h"
#include "runtime/session.h"

namespace gradserve::bench {
namespace {

struct ConvLayer {
  int64_t h, w, c, out_c;  // input height, width, depth; filter count (3x3 VALID)
};
constexpr int64_t kBatch = 64;
constexpr ConvLayer kLayers[] = {{28, 28, 1, 32}, {13, 13, 32, 64}};

void BM_Conv(benchmark::State& state) {
  const ConvLayer& l = kLayers[state.range(0)];
  const int64_t op = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const Shape x_shape{kBatch, l.h, l.w, l.c}, f_shape{3, 3, l.c, l.out_c};
  const Shape y_shape{kBatch, l.h - 2, l.w - 2, l.out_c};
  const std::vector<int64_t> strides = {1, 1, 1, 1};
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, x_shape);
  Output f = ops::Placeholder(s.WithName("f"), DType::kFloat, f_shape);
  Output dy = ops::Placeholder(s.WithName("dy"), DType::kFloat, y_shape);
  auto sizes = [&](const Shape& shape) {
    std::vector<int32_t> v;
    for (int64_t d : shape.dims()) v.push_back(static_cast<int32_t>(d));
    return ops::Const(s, v, Shape{4});
  };
  FeedList feeds;
  if (op == 0) {
    ops::Conv2D(s.WithName("out"), x, f, strides, "VALID");
    feeds = {{"x", RandomTensor(x_shape, 1)}, {"f", RandomTensor(f_shape, 2)}};
  } else if (op == 1) {
    ops::Conv2DBackpropInput(s.WithName("out"), sizes(x_shape), f, dy, strides, "VALID");
    feeds = {{"f", RandomTensor(f_shape, 2)}, {"dy", RandomTensor(y_shape, 3)}};
  } else {
    ops::Conv2DBackpropFilter(s.WithName("out"), x, sizes(f_shape), dy, strides, "VALID");
    feeds = {{"x", RandomTensor(x_shape, 1)}, {"dy", RandomTensor(y_shape, 3)}};
  }
  auto session =
      Session::Create(std::move(graph), {.intra_op_threads = threads, .inter_op_threads = 1});
  if (!session.ok()) return state.SkipWithError(std::string(session.status().message()).c_str());
  std::vector<Tensor> out;
  for (auto _ : state) {
    const absl::Status st = (*session)->Run(feeds, {"out"}, {}, &out);
    if (!st.ok()) return state.SkipWithError(std::string(st.message()).c_str());
    benchmark::DoNotOptimize(out[0].raw_data());
  }
  SetFlopCounters(state, 2.0 * y_shape.num_elements() * 9 * l.c, threads);
}

void Cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"layer", "op", "threads"});
  for (int64_t layer : {0, 1})
    for (int64_t op : {0, 1, 2})
      for (int64_t t : {1, 2}) b->Args({layer, op, t});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Conv)->Apply(Cases);

}  // namespace
}  // namespace gradserve::bench

BENCHMARK_MAIN();
