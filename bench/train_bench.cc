// Training steps (forward, backward, optimizer update) through Trainer::Step,
// on the models bench/peers/train_peers.py runs in PyTorch:
//   mlp: x[B,784] -> dense 512, ReLU -> dense 512, ReLU -> dense 10 = logits
//   cnn: x[B,28,28,1] -> conv 3x3 32 (VALID), ReLU -> maxpool 2 -> conv 3x3 64
//        (VALID), ReLU -> maxpool 2 -> [B,1600] -> dense 10 = logits
// loss = mean sparse softmax cross-entropy of logits and int64 labels in [0,10).
// Kernels are Glorot-uniform, biases zero; SGD uses learning rate 0.01, Adam
// Keras's defaults (runtime's OptimizerConfig).
//
// Each model is written as a saved model with a `train` signature to a temporary
// directory and loaded with Trainer::Load, intra-op threads T, inter-op 1.
// Names: BM_Train{Mlp,Cnn}/{sgd,adam}/batch:B/threads:T. Counters:
//   floor_us      the step's matmul/conv FLOPs at the FP32 peak of T cores
//   pct_of_peak   (and GFLOPS, peak_GFLOPS) of those FLOPs at the measured time
//   step_peak_MB  heap high-water mark during one step above the heap in use
//                 before it: activations, gradients, temporaries, scratchpads
//                 (bench/heap_counter.h: malloc'd bytes, not pages touched)
//   resident_MB   heap the loaded trainer holds between steps after a warm-up:
//                 weights, optimizer slots, graph, cached executors
//   bench/peers/run.sh train --gradserve-bench build/bench/train_bench
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "bench/bench_util.h"
#include "bench/heap_counter.h"
#include "graph/builder/ops.h"
#include "graph/saved_model.h"
#include "graph/status.h"
#include "runtime/trainer.h"

namespace gradserve::bench {
namespace {

constexpr int64_t kClasses = 10;
constexpr int kWarmupSteps = 3;

// Builds a classifier's graph and writes it as a saved model whose `train`
// signature takes "x" and "labels" and returns "loss"; every variable is
// trainable. Counts the multiply-adds of the step as layers are added.
class TrainModelBuilder {
 public:
  TrainModelBuilder() : scope_(&graph_) {}
  const Scope& scope() const { return scope_; }

  // (x @ kernel + bias) under scope `name`, optionally followed by ReLU.
  Output Dense(const std::string& name, Output x, int64_t batch, int64_t in, int64_t out,
               bool relu) {
    const Scope s = scope_.NewSubScope(name);
    Output z = ops::BiasAdd(s, ops::MatMul(s, x, Variable(s, "kernel", Shape{in, out})),
                            Variable(s, "bias", Shape{out}));
    AddMacs(batch * in * out);
    return relu ? ops::Relu(s, z) : z;
  }

  // ReLU(conv 3x3 VALID stride 1 + bias) of x[batch, h, w, in], then 2x2 max pooling.
  Output ConvPool(const std::string& name, Output x, int64_t batch, int64_t h, int64_t w,
                  int64_t in, int64_t out) {
    const Scope s = scope_.NewSubScope(name);
    Output z = ops::Conv2D(s, x, Variable(s, "kernel", Shape{3, 3, in, out}), {1, 1, 1, 1},
                           "VALID");
    z = ops::Relu(s, ops::BiasAdd(s, z, Variable(s, "bias", Shape{out})));
    AddMacs(batch * (h - 2) * (w - 2) * 9 * in * out);
    return ops::MaxPool(s, z, {1, 2, 2, 1}, {1, 2, 2, 1}, "VALID");
  }

  // The step's FLOPs: forward, weight gradient and input gradient of every
  // matmul and convolution except the first layer's input gradient.
  double StepFlops() const { return 2.0 * (3 * macs_ - first_macs_); }

  absl::Status Write(const std::string& dir, Output x, Output logits) {
    Output labels = ops::Placeholder(scope_.WithName("labels"), DType::kInt64, Shape{-1});
    Output loss = ops::Mean(
        scope_.WithName("loss"),
        ops::SparseSoftmaxCrossEntropyWithLogits(scope_, logits, labels).loss,
        ops::Const(scope_, int32_t{0}));
    GS_RETURN_IF_ERROR(scope_.status());
    SavedModel proto;
    *proto.mutable_graph_def() = graph_.ToGraphDef();
    SignatureDef& train = (*proto.mutable_signature_def())[kTrainSignatureKey];
    train.set_method_name(kTrainMethodName);
    SetInfo(x, &(*train.mutable_inputs())["x"]);
    SetInfo(labels, &(*train.mutable_inputs())["labels"]);
    SetInfo(loss, &(*train.mutable_outputs())["loss"]);
    train.add_label_keys("labels");
    for (const auto& [name, value] : variables_) {
      proto.add_variables(name);
      train.add_trainable_variables(name);
    }
    return WriteSavedModel(dir, proto, variables_);
  }

 private:
  // A float variable read once: Glorot-uniform (TensorFlow's fans) for rank >= 2,
  // zeros for biases.
  Output Variable(const Scope& s, const std::string& name, const Shape& shape) {
    Output handle = ops::VarHandleOp(s.WithName(name), DType::kFloat, shape);
    if (!handle.valid()) return Output();
    Tensor value(DType::kFloat, shape);
    if (shape.rank() >= 2) {
      const int64_t in = shape.dim(shape.rank() - 2), out = shape.dim(shape.rank() - 1);
      const int64_t receptive = shape.num_elements() / (in * out);
      value = RandomTensor(shape, ++seed_, std::sqrt(6.0f / ((in + out) * receptive)));
    } else {
      for (float& v : value.span<float>()) v = 0;
    }
    variables_.emplace_back(handle.node->name(), std::move(value));
    return ops::ReadVariableOp(s, handle, DType::kFloat);
  }

  void AddMacs(int64_t macs) {
    if (macs_ == 0) first_macs_ = macs;
    macs_ += macs;
  }

  static void SetInfo(Output out, TensorInfo* info) {
    info->set_name(out.name());
    info->set_dtype(static_cast<DataType>(out.dtype()));
    out.shape().ToProto(info->mutable_tensor_shape());
  }

  Graph graph_;
  Scope scope_;
  uint64_t seed_ = 100;
  std::vector<std::pair<std::string, Tensor>> variables_;
  int64_t macs_ = 0, first_macs_ = 0;
};

enum class Model { kMlp, kCnn };

struct WrittenModel {
  Shape input_shape;  // for one batch
  double step_flops = 0;
};

absl::StatusOr<WrittenModel> WriteModel(Model model, int64_t batch, const std::string& dir) {
  TrainModelBuilder b;
  const Scope& s = b.scope();
  WrittenModel written;
  Output x, logits;
  if (model == Model::kMlp) {
    written.input_shape = Shape{batch, 784};
    x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 784});
    Output h = b.Dense("dense1", x, batch, 784, 512, /*relu=*/true);
    h = b.Dense("dense2", h, batch, 512, 512, /*relu=*/true);
    logits = b.Dense("dense3", h, batch, 512, kClasses, /*relu=*/false);
  } else {
    written.input_shape = Shape{batch, 28, 28, 1};
    x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 28, 28, 1});
    Output h = b.ConvPool("conv1", x, batch, 28, 28, 1, 32);    // -> [B,13,13,32]
    h = b.ConvPool("conv2", h, batch, 13, 13, 32, 64);          // -> [B,5,5,64]
    h = ops::Reshape(s, h, ops::Const(s, std::vector<int32_t>{-1, 1600}, Shape{2}));
    logits = b.Dense("dense", h, batch, 1600, kClasses, /*relu=*/false);
  }
  GS_RETURN_IF_ERROR(b.Write(dir, x, logits));
  written.step_flops = b.StepFlops();
  return written;
}

OptimizerConfig Optimizer(OptimizerKind kind) {
  OptimizerConfig config{.kind = kind};
  if (kind == OptimizerKind::kSgd) config.learning_rate = 0.01;  // Keras's SGD default
  return config;
}

Tensor RandomLabels(int64_t batch, uint64_t seed) {
  Tensor labels(DType::kInt64, Shape{batch});
  std::mt19937_64 rng(seed);
  for (int64_t& v : labels.span<int64_t>()) v = static_cast<int64_t>(rng() % kClasses);
  return labels;
}

void TrainSteps(benchmark::State& state, Model model, OptimizerKind kind) {
  const int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  char dir_template[] = "/tmp/gradserve_train_bench_XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return state.SkipWithError("mkdtemp failed");
  const std::string dir = dir_template;
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() { std::filesystem::remove_all(dir); }
  } remove_dir{dir};

  absl::StatusOr<WrittenModel> written = WriteModel(model, batch, dir + "/model");
  if (!written.ok()) return state.SkipWithError(std::string(written.status().message()).c_str());
  const int64_t heap_before_load = HeapLiveBytes();
  auto trainer = Trainer::Load(dir + "/model", Optimizer(kind),
                               {.intra_op_threads = threads, .inter_op_threads = 1});
  if (!trainer.ok()) return state.SkipWithError(std::string(trainer.status().message()).c_str());
  const Tensor x = RandomTensor(written->input_shape, 7);
  const Tensor labels = RandomLabels(batch, 8);
  auto step = [&]() -> bool {
    absl::StatusOr<StepResult> r = (*trainer)->Step(x, labels);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return false;
    }
    if (!std::isfinite(r->loss)) {
      state.SkipWithError("the loss is not finite");
      return false;
    }
    return true;
  };

  // The first step builds and caches the step's executor; Adam's slots fill.
  for (int i = 0; i < kWarmupSteps; ++i) {
    if (!step()) return;
  }
  const int64_t heap_between_steps = ResetHeapPeak();
  if (!step()) return;
  const int64_t step_peak = HeapPeakBytes() - heap_between_steps;

  for (auto _ : state) {
    if (!step()) return;
  }
  SetFlopCounters(state, written->step_flops, threads);
  state.counters["floor_us"] = written->step_flops / (PeakGflops(threads) * 1e3);
  state.counters["step_peak_MB"] = static_cast<double>(step_peak) / (1 << 20);
  state.counters["resident_MB"] =
      static_cast<double>(heap_between_steps - heap_before_load) / (1 << 20);
  state.counters["examples_per_s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TrainMlp(benchmark::State& state, OptimizerKind kind) {
  TrainSteps(state, Model::kMlp, kind);
}
void BM_TrainCnn(benchmark::State& state, OptimizerKind kind) {
  TrainSteps(state, Model::kCnn, kind);
}

void MlpConfigs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "threads"})->ArgsProduct({{64, 256}, {1, 2}});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}
void CnnConfigs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "threads"})->ArgsProduct({{64}, {1, 2}});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_TrainMlp, sgd, OptimizerKind::kSgd)->Apply(MlpConfigs);
BENCHMARK_CAPTURE(BM_TrainMlp, adam, OptimizerKind::kAdam)->Apply(MlpConfigs);
BENCHMARK_CAPTURE(BM_TrainCnn, sgd, OptimizerKind::kSgd)->Apply(CnnConfigs);
BENCHMARK_CAPTURE(BM_TrainCnn, adam, OptimizerKind::kAdam)->Apply(CnnConfigs);

}  // namespace
}  // namespace gradserve::bench

BENCHMARK_MAIN();
