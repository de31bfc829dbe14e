// A model's configuration: <repository>/<model>/config.pbtxt, protobuf text
// format of inference.ModelConfig (proto/model_config.proto: Triton's fields
// and numbers, plus gradserve's `training` block). A model without the file
// gets the default below; the inputs and outputs it does not list are filled
// in from the saved model's serving_default signature when a version loads.
//
// Triton's layout is kept where the names differ: max_queue_size and
// default_timeout_microseconds live in dynamic_batching.default_queue_policy.
//
// Thread-safe (no state).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/model_config.pb.h"
#include "proto/saved_model.pb.h"
#include "runtime/device.h"
#include "serving/batcher.h"

namespace gradserve::serving {

inline constexpr char kConfigFileName[] = "config.pbtxt";
inline constexpr char kPlatform[] = "gradserve_savedmodel";

// Reads and validates <model_dir>/config.pbtxt; without one, the default config:
// name = the directory's name, platform gradserve_savedmodel, max_batch_size 0
// (requests run as sent, no batching), one CPU instance, the latest version.
// InvalidArgument naming the file and the line for text that does not parse,
// or the field for an invalid value.
absl::StatusOr<inference::ModelConfig> ReadModelConfig(const std::string& model_dir);

// The version folders of `model_dir` (positive integer names), ascending;
// empty when there are none or the folder cannot be read.
std::vector<int64_t> VersionFolders(const std::string& model_dir);

// The checks ReadModelConfig applies: name equals `model_name`, platform empty
// or gradserve_savedmodel, max_batch_size >= 0, preferred batch sizes within
// [1, max_batch_size], dynamic batching only with max_batch_size > 0, instance
// counts >= 1, GPU numbers >= 0, no KIND_MODEL instances, unique input/output
// names with supported data types, and optimization.cuda.graph_spec only with
// graphs: true and batch sizes within [1, max_batch_size] (0 or 1
// without batching, as Triton). Each error names the field.
absl::Status ValidateModelConfig(const inference::ModelConfig& config,
                                 absl::string_view model_name);

// The batch sizes a version on a GPU records device graphs for
// (optimization.cuda; Note [Graph batch sizes], serving/servable.h): none
// unless cuda.graphs is true; else graph_spec's batch sizes, or without any
// dynamic_batching's preferred_batch_size, or else max_batch_size (1 without
// batching). Ascending, without duplicates. `config` must be valid.
std::vector<int64_t> DeviceGraphBatchSizes(const inference::ModelConfig& config);

// The device a model version runs on (Triton's instance_group): nullopt for
// the CPU, else the GPU. KIND_CPU groups run on the CPU; KIND_GPU groups on
// their listed GPU (none listed: the server's GPU, else cuda:0); KIND_AUTO
// groups (and a config without groups) on the server's GPU when it has one
// (`server`, from --device), else the CPU. Errors: FailedPrecondition when
// the GPU asked for is not there (with the reason: no GPU, no driver, a build
// without CUDA); Unimplemented for groups on both CPU and GPU, or on several
// GPUs (a version runs on one device).
absl::StatusOr<std::optional<GpuOptions>> ModelDevice(const inference::ModelConfig& config,
                                                      const std::optional<GpuOptions>& server);

// Checks the listed inputs/outputs against `signature` (same names, data
// types, and dims equal to the signature's shape without the batch dimension
// when max_batch_size > 0; -1 matches any size) and adds those it does not
// list, so the config describes the whole model afterwards. InvalidArgument
// naming the tensor on a mismatch, or when max_batch_size > 0 and a tensor's
// first dimension is not -1 (the model cannot batch).
absl::Status CompleteModelConfig(const SignatureDef& signature, inference::ModelConfig* config);

// The batcher's options: max_batch_size, dynamic_batching (delay, preferred
// sizes, queue size) and the total instance count.
BatcherOptions BatcherOptionsFor(const inference::ModelConfig& config);

// The request timeout when the config sets one (default_queue_policy), else
// an infinite duration.
absl::Duration DefaultRequestTimeout(const inference::ModelConfig& config);

}  // namespace gradserve::serving
