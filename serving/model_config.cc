#include "serving/model_config.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "graph/file_io.h"
#include "graph/shape.h"
#include "graph/status.h"
#include "serving/tensor_codec.h"

namespace gradserve::serving {
namespace {

// Collects the text parser's errors as "line L column C: message".
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    errors.push_back(absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message));
  }
  std::vector<std::string> errors;
};

std::string DimsString(absl::Span<const int64_t> dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

// `dims` (config, without the batch dimension when batching) against the
// signature's shape.
absl::Status CheckDims(const std::string& what, const std::string& name,
                       const google::protobuf::RepeatedField<int64_t>& dims, const Shape& sig,
                       bool batching) {
  if (sig.unknown_rank()) return absl::OkStatus();
  std::vector<int64_t> want(sig.dims().begin(), sig.dims().end());
  if (batching) {
    GS_CHECK_ARG(!want.empty() && want[0] == -1, what, " '", name, "' has shape ",
                 sig.DebugString(),
                 " in the saved model: its first dimension is not -1, so the "
                 "model cannot batch; set max_batch_size: 0");
    want.erase(want.begin());
  }
  GS_CHECK_ARG(dims.size() == static_cast<int>(want.size()), what, " '", name, "' has dims ",
               DimsString(dims), " in config.pbtxt but ", DimsString(want), " in the saved model",
               batching ? " (batch dimension excluded)" : "");
  for (int i = 0; i < dims.size(); ++i) {
    GS_CHECK_ARG(dims[i] == want[i] || want[i] == -1, what, " '", name, "' has dims ",
                 DimsString(dims), " in config.pbtxt but ", DimsString(want),
                 " in the saved model");
  }
  return absl::OkStatus();
}

// Adds or checks one signature tensor as a config input/output.
template <typename Tensors>
absl::Status CompleteTensors(const char* what,
                             const google::protobuf::Map<std::string, TensorInfo>& sig,
                             bool batching, Tensors* listed) {
  std::set<std::string> seen;
  for (const auto& t : *listed) {
    auto it = sig.find(t.name());
    GS_CHECK_ARG(it != sig.end(), what, " '", t.name(),
                 "' in config.pbtxt is not in the saved model's serving signature");
    const DType dtype = static_cast<DType>(it->second.dtype());
    GS_CHECK_ARG(ConfigDataType(dtype) == t.data_type(), what, " '", t.name(), "' is ",
                 inference::DataType_Name(t.data_type()), " in config.pbtxt but ", DTypeName(dtype),
                 " in the saved model");
    GS_RETURN_IF_ERROR(
        CheckDims(what, t.name(), t.dims(), Shape::FromProto(it->second.tensor_shape()), batching));
    seen.insert(t.name());
  }
  // Sorted by name, so metadata lists tensors in a stable order.
  std::map<std::string, const TensorInfo*> sorted;
  for (const auto& [key, info] : sig) sorted[key] = &info;
  for (const auto& [key, info] : sorted) {
    if (seen.contains(key)) continue;
    const DType dtype = static_cast<DType>(info->dtype());
    GS_CHECK_ARG(ConfigDataType(dtype) != inference::TYPE_INVALID, what, " '", key, "' is ",
                 DTypeName(dtype), ", which the inference protocol cannot carry");
    auto* t = listed->Add();
    t->set_name(key);
    t->set_data_type(ConfigDataType(dtype));
    const Shape shape =
        info->has_tensor_shape() ? Shape::FromProto(info->tensor_shape()) : Shape::UnknownRank();
    GS_CHECK_ARG(!shape.unknown_rank(), what, " '", key,
                 "' has no known rank in the saved model; list its dims in config.pbtxt");
    google::protobuf::RepeatedField<int64_t> dims(shape.dims().begin(), shape.dims().end());
    if (batching) dims.erase(dims.begin(), dims.begin() + std::min(1, dims.size()));
    GS_RETURN_IF_ERROR(CheckDims(what, key, dims, shape, batching));
    *t->mutable_dims() = dims;
  }
  return absl::OkStatus();
}

// optimization: gradserve implements cuda.graphs and graph_spec's batch_size.
absl::Status ValidateOptimization(const inference::ModelConfig& c) {
  const auto& cuda = c.optimization().cuda();
  GS_CHECK_ARG(cuda.graphs() || cuda.graph_spec().empty(),
               "optimization.cuda.graph_spec is set but optimization.cuda.graphs is not true; "
               "set graphs: true to record CUDA graphs, or remove graph_spec");
  for (const auto& spec : cuda.graph_spec()) {
    const int32_t b = spec.batch_size();
    if (c.max_batch_size() > 0) {
      GS_CHECK_ARG(b >= 1 && b <= c.max_batch_size(), "optimization.cuda.graph_spec batch_size ", b,
                   " is outside [1, max_batch_size = ", c.max_batch_size(), "]");
    } else {
      // Triton writes 0 for a model without batching; 1 says the same.
      GS_CHECK_ARG(b == 0 || b == 1, "optimization.cuda.graph_spec batch_size ", b,
                   " must be 0 or 1: with max_batch_size 0 the model is not batched");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<inference::ModelConfig> ReadModelConfig(const std::string& model_dir) {
  const std::string name = std::filesystem::path(model_dir).filename().string();
  const std::string path = model_dir + "/" + kConfigFileName;
  inference::ModelConfig config;
  if (std::filesystem::exists(path)) {
    GS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    google::protobuf::TextFormat::Parser parser;
    ErrorCollector errors;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(text, &config)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", absl::StrJoin(errors.errors, "; ")));
    }
  }
  if (config.name().empty()) config.set_name(name);
  if (config.platform().empty()) config.set_platform(kPlatform);
  if (config.instance_group_size() == 0) {
    config.add_instance_group()->set_count(1);
  }
  if (!config.has_version_policy()) config.mutable_version_policy()->mutable_latest();
  GS_RETURN_IF_ERROR(Annotate(ValidateModelConfig(config, name), path));
  return config;
}

absl::Status ValidateModelConfig(const inference::ModelConfig& c, absl::string_view model_name) {
  GS_CHECK_ARG(c.name() == model_name, "name '", c.name(), "' differs from the directory name '",
               model_name, "'");
  GS_CHECK_ARG(c.platform() == kPlatform || c.platform().empty(), "platform '", c.platform(),
               "' is not supported; gradserve serves '", kPlatform, "' saved models");
  GS_CHECK_ARG(c.max_batch_size() >= 0, "max_batch_size must be >= 0, got ", c.max_batch_size());
  if (c.has_dynamic_batching()) {
    const auto& db = c.dynamic_batching();
    GS_CHECK_ARG(c.max_batch_size() > 0,
                 "dynamic_batching needs max_batch_size > 0 (the model's batch dimension)");
    for (int32_t p : db.preferred_batch_size()) {
      GS_CHECK_ARG(p >= 1 && p <= c.max_batch_size(), "preferred_batch_size ", p,
                   " is outside [1, max_batch_size = ", c.max_batch_size(), "]");
    }
    GS_CHECK_ARG(db.priority_levels() <= 1, "priority_levels is not supported");
  }
  for (const auto& g : c.instance_group()) {
    GS_CHECK_ARG(g.count() >= 1, "instance_group count must be >= 1, got ", g.count());
    for (int32_t gpu : g.gpus())
      GS_CHECK_ARG(gpu >= 0, "instance_group gpus must be >= 0, got ", gpu);
    GS_CHECK_ARG(g.kind() != inference::ModelInstanceGroup::KIND_MODEL,
                 "instance_group kind KIND_MODEL is not supported");
  }
  GS_RETURN_IF_ERROR(ValidateOptimization(c));
  std::set<std::string> names;
  for (const auto& in : c.input()) {
    GS_CHECK_ARG(names.insert(in.name()).second, "input '", in.name(), "' is listed twice");
    GS_RETURN_IF_ERROR(DTypeFromConfig(in.data_type()).status());
  }
  names.clear();
  for (const auto& out : c.output()) {
    GS_CHECK_ARG(names.insert(out.name()).second, "output '", out.name(), "' is listed twice");
    GS_RETURN_IF_ERROR(DTypeFromConfig(out.data_type()).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<GpuOptions>> ModelDevice(const inference::ModelConfig& c,
                                                      const std::optional<GpuOptions>& server) {
  using Group = inference::ModelInstanceGroup;
  bool cpu = false, gpu = false;
  std::set<int32_t> gpus;
  for (const auto& g : c.instance_group()) {
    const bool wants_gpu =
        g.kind() == Group::KIND_GPU || (g.kind() == Group::KIND_AUTO && server.has_value());
    (wants_gpu ? gpu : cpu) = true;
    if (wants_gpu) gpus.insert(g.gpus().begin(), g.gpus().end());
  }
  // No groups: one KIND_AUTO group (ReadModelConfig adds it; callers may not).
  if (c.instance_group_size() == 0) (server.has_value() ? gpu : cpu) = true;
  if (cpu && gpu) {
    return absl::UnimplementedError(
        absl::StrCat("model '", c.name(),
                     "' has instance groups on the CPU and on a GPU; a model version "
                     "runs on one device: make every group KIND_CPU or every group KIND_GPU"));
  }
  if (!gpu) return std::nullopt;
  if (gpus.size() > 1) {
    return absl::UnimplementedError(absl::StrCat("model '", c.name(), "' lists GPUs ",
                                                 absl::StrJoin(gpus, ", "),
                                                 "; a model version runs on one GPU"));
  }
  GpuOptions options = server.value_or(GpuOptions{});
  if (!gpus.empty()) options.ordinal = *gpus.begin();
  const int count = GpuCount();
  if (count == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", c.name(),
        "' asks for a GPU (instance_group KIND_GPU), but there is none: ", GpuUnavailableReason()));
  }
  if (options.ordinal >= count) {
    return absl::FailedPreconditionError(absl::StrCat("model '", c.name(), "' asks for GPU ",
                                                      options.ordinal, ", but this machine has ",
                                                      count, " (cuda:0 to cuda:", count - 1, ")"));
  }
  return options;
}

absl::Status CompleteModelConfig(const SignatureDef& signature, inference::ModelConfig* config) {
  const bool batching = config->max_batch_size() > 0;
  GS_RETURN_IF_ERROR(
      CompleteTensors("input", signature.inputs(), batching, config->mutable_input()));
  return CompleteTensors("output", signature.outputs(), batching, config->mutable_output());
}

std::vector<int64_t> DeviceGraphBatchSizes(const inference::ModelConfig& c) {
  const auto& cuda = c.optimization().cuda();
  if (!cuda.graphs()) return {};
  std::vector<int64_t> sizes;
  for (const auto& spec : cuda.graph_spec()) sizes.push_back(std::max(spec.batch_size(), 1));
  if (sizes.empty()) {
    const auto& preferred = c.dynamic_batching().preferred_batch_size();
    sizes.assign(preferred.begin(), preferred.end());
  }
  if (sizes.empty()) sizes.push_back(std::max(c.max_batch_size(), 1));
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  return sizes;
}

BatcherOptions BatcherOptionsFor(const inference::ModelConfig& c) {
  BatcherOptions o;
  o.max_batch_size = c.max_batch_size();
  int workers = 0;
  for (const auto& g : c.instance_group()) workers += g.count();
  o.num_workers = std::max(workers, 1);
  if (c.has_dynamic_batching()) {
    const auto& db = c.dynamic_batching();
    o.max_queue_delay = absl::Microseconds(db.max_queue_delay_microseconds());
    o.preferred_batch_sizes.assign(db.preferred_batch_size().begin(),
                                   db.preferred_batch_size().end());
    o.max_queue_size = db.default_queue_policy().max_queue_size();
  } else {
    // No dynamic_batching: each request runs as sent (its own rows), as soon as
    // an instance is free, as Triton's default scheduler does.
    o.combine_requests = false;
  }
  return o;
}

absl::Duration DefaultRequestTimeout(const inference::ModelConfig& c) {
  const uint64_t us = c.dynamic_batching().default_queue_policy().default_timeout_microseconds();
  return us > 0 ? absl::Microseconds(us) : absl::InfiniteDuration();
}

std::vector<int64_t> VersionFolders(const std::string& model_dir) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(model_dir, ec)) {
    int64_t v = 0;
    if (entry.is_directory(ec) && absl::SimpleAtoi(entry.path().filename().string(), &v) && v > 0) {
      versions.push_back(v);
    }
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

}  // namespace gradserve::serving
