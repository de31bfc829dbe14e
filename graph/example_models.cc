#include "graph/example_models.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "graph/builder/ops.h"
#include "graph/saved_model.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// Collects a model's variables and their initial values while the graph is built.
class ModelBuilder {
 public:
  explicit ModelBuilder(uint64_t seed) : rng_(seed), scope_(&graph_) {}

  const Scope& scope() const { return scope_; }
  Graph& graph() { return graph_; }

  // A float variable `s`/`name` read once; its initial value is Glorot-uniform
  // (fans as TensorFlow computes them) or zeros.
  Output Variable(const Scope& s, const std::string& name, const Shape& shape, bool glorot) {
    Output handle = ops::VarHandleOp(s.WithName(name), DType::kFloat, shape);
    if (!handle.valid()) return Output();
    Tensor value(DType::kFloat, shape);
    float* v = value.data<float>();
    if (glorot) {
      int64_t receptive = 1;
      for (int i = 0; i + 2 < shape.rank(); ++i) receptive *= shape.dim(i);
      const int64_t fan_in = shape.dim(shape.rank() - 2) * receptive;
      const int64_t fan_out = shape.dim(shape.rank() - 1) * receptive;
      const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
      for (int64_t i = 0; i < value.num_elements(); ++i) {
        const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;  // [0, 1)
        v[i] = static_cast<float>((2 * u - 1) * limit);
      }
    } else {
      std::fill(v, v + value.num_elements(), 0.0f);
    }
    variables_.emplace_back(handle.node->name(), std::move(value));
    return ops::ReadVariableOp(s, handle, DType::kFloat);
  }

  // x @ kernel + bias under scope `name`, optionally followed by ReLU.
  Output Dense(const std::string& name, Output x, int64_t in, int64_t out, bool relu) {
    const Scope s = scope_.NewSubScope(name);
    Output kernel = Variable(s, "kernel", Shape{in, out}, /*glorot=*/true);
    Output bias = Variable(s, "bias", Shape{out}, /*glorot=*/false);
    Output z =
        ops::BiasAdd(s.WithName("BiasAdd"), ops::MatMul(s.WithName("MatMul"), x, kernel), bias);
    return relu ? ops::Relu(s.WithName("Relu"), z) : z;
  }

  // The model with signatures for `input` (the features) and its outputs.
  absl::StatusOr<ExampleModel> Finish(std::string model_name, const std::string& input_key,
                                      Output input, Output logits, Output probabilities) {
    Output labels = ops::Placeholder(scope_.WithName("labels"), DType::kInt64, Shape{-1});
    // loss = mean over the batch of -log softmax(logits)[label].
    const Scope ls = scope_.NewSubScope("xent");
    Output per_example =
        ops::SparseSoftmaxCrossEntropyWithLogits(ls.WithName("per_example"), logits, labels).loss;
    Output loss = ops::Mean(scope_.WithName("loss"), per_example,
                            ops::Const(ls.WithName("axis"), int32_t{0}));
    GS_RETURN_IF_ERROR(scope_.status());
    ExampleModel model;
    model.name = std::move(model_name);
    SavedModel& proto = model.proto;
    *proto.mutable_graph_def() = graph_.ToGraphDef();
    proto.set_producer("gradserve make-example-models");
    for (const auto& [name, value] : variables_) proto.add_variables(name);

    SignatureDef& serving = (*proto.mutable_signature_def())[kServingSignatureKey];
    serving.set_method_name(kPredictMethodName);
    SetInfo(input, &(*serving.mutable_inputs())[input_key]);
    SetInfo(logits, &(*serving.mutable_outputs())["logits"]);
    SetInfo(probabilities, &(*serving.mutable_outputs())["probabilities"]);

    SignatureDef& train = (*proto.mutable_signature_def())[kTrainSignatureKey];
    train.set_method_name(kTrainMethodName);
    SetInfo(input, &(*train.mutable_inputs())[input_key]);
    SetInfo(labels, &(*train.mutable_inputs())["labels"]);
    SetInfo(loss, &(*train.mutable_outputs())["loss"]);
    train.add_label_keys("labels");
    for (const auto& [name, value] : variables_) train.add_trainable_variables(name);

    model.variables = std::move(variables_);
    return model;
  }

 private:
  static void SetInfo(Output out, TensorInfo* info) {
    info->set_name(out.name());
    info->set_dtype(static_cast<DataType>(out.dtype()));
    out.shape().ToProto(info->mutable_tensor_shape());
  }

  std::mt19937_64 rng_;
  Graph graph_;
  Scope scope_;
  std::vector<std::pair<std::string, Tensor>> variables_;
};

}  // namespace

absl::StatusOr<ExampleModel> BuildDigitsMlp(uint64_t seed) {
  ModelBuilder b(seed);
  const Scope& s = b.scope();
  Output pixels = ops::Placeholder(s.WithName("pixels"), DType::kFloat, Shape{-1, 64});
  Output h = b.Dense("dense1", pixels, 64, 128, /*relu=*/true);
  h = b.Dense("dense2", h, 128, 64, /*relu=*/true);
  Output logits = ops::Identity(s.WithName("logits"), b.Dense("dense3", h, 64, 10, false));
  Output probabilities = ops::Softmax(s.WithName("probabilities"), logits);
  GS_RETURN_IF_ERROR(s.status());
  return b.Finish("digits_mlp", "pixels", pixels, logits, probabilities);
}

absl::StatusOr<ExampleModel> BuildDigitsCnn(uint64_t seed) {
  ModelBuilder b(seed);
  const Scope& s = b.scope();
  Output images = ops::Placeholder(s.WithName("images"), DType::kFloat, Shape{-1, 8, 8, 1});
  const Scope conv = s.NewSubScope("conv");
  Output kernel = b.Variable(conv, "kernel", Shape{3, 3, 1, 8}, /*glorot=*/true);
  Output bias = b.Variable(conv, "bias", Shape{8}, /*glorot=*/false);
  Output h = ops::Conv2D(conv.WithName("Conv2D"), images, kernel, {1, 1, 1, 1}, "SAME");
  h = ops::BiasAdd(conv.WithName("BiasAdd"), h, bias);
  h = ops::Relu(conv.WithName("Relu"), h);
  h = ops::MaxPool(s.WithName("pool"), h, {1, 2, 2, 1}, {1, 2, 2, 1}, "VALID");
  Output flat_shape =
      ops::Const(s.WithName("flatten/shape"), std::vector<int32_t>{-1, 128}, Shape{2});
  h = ops::Reshape(s.WithName("flatten"), h, flat_shape);
  Output logits = ops::Identity(s.WithName("logits"), b.Dense("dense", h, 128, 10, false));
  Output probabilities = ops::Softmax(s.WithName("probabilities"), logits);
  GS_RETURN_IF_ERROR(s.status());
  return b.Finish("digits_cnn", "images", images, logits, probabilities);
}

absl::StatusOr<ExampleModel> BuildFashionMlp(uint64_t seed) {
  ModelBuilder b(seed);
  const Scope& s = b.scope();
  Output pixels = ops::Placeholder(s.WithName("pixels"), DType::kFloat, Shape{-1, 784});
  Output h = b.Dense("dense1", pixels, 784, 512, /*relu=*/true);
  h = b.Dense("dense2", h, 512, 512, /*relu=*/true);
  Output logits = ops::Identity(s.WithName("logits"), b.Dense("dense3", h, 512, 10, false));
  Output probabilities = ops::Softmax(s.WithName("probabilities"), logits);
  GS_RETURN_IF_ERROR(s.status());
  return b.Finish("fashion_mlp", "pixels", pixels, logits, probabilities);
}

absl::StatusOr<ExampleModel> BuildFashionCnn(uint64_t seed) {
  ModelBuilder b(seed);
  const Scope& s = b.scope();
  Output images = ops::Placeholder(s.WithName("images"), DType::kFloat, Shape{-1, 28, 28, 1});
  // conv 3x3 VALID -> ReLU -> max-pool 2: 28 -> 26 -> 13, then 13 -> 11 -> 5.
  Output h = images;
  int64_t in_channels = 1;
  for (const auto& [name, filters] : {std::pair<const char*, int64_t>{"conv1", 32}, {"conv2", 64}}) {
    const Scope conv = s.NewSubScope(name);
    Output kernel = b.Variable(conv, "kernel", Shape{3, 3, in_channels, filters}, /*glorot=*/true);
    Output bias = b.Variable(conv, "bias", Shape{filters}, /*glorot=*/false);
    h = ops::Conv2D(conv.WithName("Conv2D"), h, kernel, {1, 1, 1, 1}, "VALID");
    h = ops::Relu(conv.WithName("Relu"), ops::BiasAdd(conv.WithName("BiasAdd"), h, bias));
    h = ops::MaxPool(conv.WithName("pool"), h, {1, 2, 2, 1}, {1, 2, 2, 1}, "VALID");
    in_channels = filters;
  }
  Output flat_shape =
      ops::Const(s.WithName("flatten/shape"), std::vector<int32_t>{-1, 5 * 5 * 64}, Shape{2});
  h = ops::Reshape(s.WithName("flatten"), h, flat_shape);
  Output logits =
      ops::Identity(s.WithName("logits"), b.Dense("dense", h, 5 * 5 * 64, 10, false));
  Output probabilities = ops::Softmax(s.WithName("probabilities"), logits);
  GS_RETURN_IF_ERROR(s.status());
  return b.Finish("fashion_cnn", "images", images, logits, probabilities);
}

std::vector<ExampleModelBuilder> ExampleModelBuilders() {
  return {{"digits_mlp", &BuildDigitsMlp},
          {"digits_cnn", &BuildDigitsCnn},
          {"fashion_mlp", &BuildFashionMlp},
          {"fashion_cnn", &BuildFashionCnn}};
}

absl::Status WriteExampleModels(const std::string& out_dir, uint64_t seed) {
  for (const ExampleModelBuilder& builder : ExampleModelBuilders()) {
    GS_ASSIGN_OR_RETURN(ExampleModel model, builder.build(seed));
    const std::string dir = absl::StrCat(out_dir, "/", model.name, "/1");
    GS_RETURN_IF_ERROR(Annotate(WriteSavedModel(dir, model.proto, model.variables), dir));
  }
  return absl::OkStatus();
}

}  // namespace gradserve
