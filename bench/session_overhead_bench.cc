// Session::Run overhead: a 10-node graph of tiny tensors (one placeholder, a
// chain of 8 cheap ops, an identity), where kernel time is negligible, so the
// time per run is the executor's bookkeeping.
#include <benchmark/benchmark.h>

#include "bench/bench_util.h"
#include "graph/builder/ops.h"
#include "runtime/session.h"

namespace gradserve::bench {
namespace {

void BM_SessionRunOverhead(benchmark::State& state) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{4});
  Output y = x;
  for (int i = 0; i < 8; ++i) y = ops::AddV2(s, y, x);
  ops::Identity(s.WithName("out"), y);
  auto session = Session::Create(std::move(graph), {.intra_op_threads = 1,
                                                    .inter_op_threads = static_cast<int>(state.range(0))});
  if (!session.ok()) return state.SkipWithError("create failed");
  const FeedList feeds = {{"x", RandomTensor(Shape{4}, 3)}};
  const std::vector<std::string> fetches = {"out"};
  std::vector<Tensor> out;
  for (auto _ : state) {
    if (!(*session)->Run(feeds, fetches, {}, &out).ok()) return state.SkipWithError("run failed");
    benchmark::DoNotOptimize(out[0].raw_data());
  }
  state.counters["nodes"] = 10;
}
BENCHMARK(BM_SessionRunOverhead)->ArgName("inter_op_threads")->Arg(1)->Arg(2)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace gradserve::bench

BENCHMARK_MAIN();
