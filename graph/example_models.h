// The example models of configs/models/ (see configs/models/README.md), built
// from code with the builder API so the tool that writes them
// (tools/make_example_models.cc) and the tests build the same thing.
//
//   digits_mlp: pixels float[-1,64] -> dense1 (128, ReLU) -> dense2 (64, ReLU)
//               -> dense3 (10) = logits -> Softmax = probabilities
//   digits_cnn: images float[-1,8,8,1] -> conv 3x3 SAME 8 filters + bias, ReLU
//               -> MaxPool 2x2 -> Reshape [-1,128] -> dense (10) = logits -> Softmax
//   fashion_mlp: pixels float[-1,784] -> 512 ReLU -> 512 ReLU -> 10 = logits -> Softmax
//   fashion_cnn: images float[-1,28,28,1] -> conv 3x3 VALID 32, ReLU, MaxPool 2
//               -> conv 3x3 VALID 64, ReLU, MaxPool 2 -> [-1,1600] -> dense 10
//
// Pixels are scaled to [0, 1] (digits: the data set's 0-16 divided by 16;
// Fashion-MNIST: 0-255 divided by 255).
//
// Signatures: serving_default (input pixels / images; outputs probabilities and
// logits) and train (the same input plus labels int64[-1], label_keys
// ["labels"], every variable trainable, output "loss": the batch mean of the
// sparse softmax cross-entropy of logits and labels). Kernels are Glorot-uniform from `seed`, biases zero; the same seed gives
// bit-identical models on every platform (no std distributions).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/tensor.h"
#include "proto/saved_model.pb.h"

namespace gradserve {

struct ExampleModel {
  std::string name;  // "digits_mlp"
  SavedModel proto;
  std::vector<std::pair<std::string, Tensor>> variables;  // initial values
};

inline constexpr uint64_t kExampleModelSeed = 20240229;

absl::StatusOr<ExampleModel> BuildDigitsMlp(uint64_t seed = kExampleModelSeed);
absl::StatusOr<ExampleModel> BuildDigitsCnn(uint64_t seed = kExampleModelSeed);
absl::StatusOr<ExampleModel> BuildFashionMlp(uint64_t seed = kExampleModelSeed);
absl::StatusOr<ExampleModel> BuildFashionCnn(uint64_t seed = kExampleModelSeed);

struct ExampleModelBuilder {
  std::string name;
  absl::StatusOr<ExampleModel> (*build)(uint64_t seed);
};
// Every example model, in the order above.
std::vector<ExampleModelBuilder> ExampleModelBuilders();

// Writes every example model as <out_dir>/<name>/1/ (a saved model).
absl::Status WriteExampleModels(const std::string& out_dir, uint64_t seed = kExampleModelSeed);

}  // namespace gradserve
