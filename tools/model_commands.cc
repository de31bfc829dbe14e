#include "tools/model_commands.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <memory>
#include <tuple>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "graph/checkpoint.h"
#include "graph/file_io.h"
#include "graph/npy.h"
#include "graph/saved_model.h"
#include "graph/status.h"
#include "runtime/saved_model_loader.h"
#include "runtime/trainer.h"
#include "tools/train_loop.h"

namespace gradserve::tools {
namespace {

using TensorMap = std::map<std::string, Tensor>;

bool IsTextPath(absl::string_view path) {
  return absl::EndsWith(path, ".pbtxt") || absl::EndsWith(path, ".txt") ||
         absl::EndsWith(path, ".textproto");
}

class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) {
      error_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// Reads a binary proto, or a text one when the name ends in .pbtxt/.txt/.textproto.
absl::Status ReadProto(const std::string& path, google::protobuf::Message* message) {
  GS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  const std::string type = message->GetDescriptor()->name();
  if (IsTextPath(path)) {
    FirstErrorCollector errors;
    google::protobuf::TextFormat::Parser parser;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(bytes, message)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a text-format ", type, ": ", errors.error()));
    }
    return absl::OkStatus();
  }
  if (!message->ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": does not parse as a binary ", type,
                                                   " (a text-format file must end in .pbtxt)"));
  }
  return absl::OkStatus();
}

absl::Status WriteProto(const std::string& path, const google::protobuf::Message& message) {
  std::string bytes;
  if (IsTextPath(path)) {
    if (!google::protobuf::TextFormat::PrintToString(message, &bytes)) {
      return absl::InternalError(absl::StrCat("cannot print ", path, " as text"));
    }
  } else if (absl::EndsWith(path, ".pb")) {
    // Deterministic (sorted maps), as WriteSavedModel writes them.
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!message.SerializeToCodedStream(&coded)) {
      return absl::InternalError(absl::StrCat("cannot serialize ", path));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot tell the format of ", path, " from its name (use .pb or .pbtxt)"));
  }
  return WriteFileAtomically(path, bytes);
}

std::string ShapeString(const TensorInfo& info) {
  return info.has_tensor_shape() ? Shape::FromProto(info.tensor_shape()).DebugString() : "?";
}

void PrintTensorInfos(const google::protobuf::Map<std::string, TensorInfo>& infos,
                      std::ostream& out) {
  const std::map<std::string, TensorInfo> sorted(infos.begin(), infos.end());
  for (const auto& [key, info] : sorted) {
    out << absl::StrFormat("    %-20s %-8s %-16s %s\n", key,
                           DTypeName(static_cast<DType>(info.dtype())), ShapeString(info),
                           info.name());
  }
}

void PrintOpCounts(const Graph& graph, std::ostream& out) {
  std::map<std::string, int> counts;
  for (const auto& node : graph.nodes()) ++counts[node->op()];
  out << "ops (" << graph.num_nodes() << " nodes):\n";
  for (const auto& [op, n] : counts) out << absl::StrFormat("  %-24s %d\n", op, n);
}

// The file a fetch or output key is written to; refuses names that would
// escape `dir` ("/" inside a name makes subdirectories, as the interop test expects).
absl::StatusOr<std::string> OutputPath(const std::string& dir, const std::string& name) {
  const std::string file = absl::StrReplaceAll(name, {{":", "_"}});
  for (absl::string_view part : absl::StrSplit(file, '/')) {
    GS_CHECK_ARG(!part.empty() && part != "." && part != "..", "cannot write output '", name,
                 "' under ", dir, ": not a plain relative name");
  }
  return absl::StrCat(dir, "/", file, ".npy");
}

absl::Status WriteOutput(const std::string& dir, const std::string& name, const Tensor& t,
                         std::ostream& out) {
  GS_ASSIGN_OR_RETURN(std::string path, OutputPath(dir, name));
  GS_RETURN_IF_ERROR(CreateDirectories(path.substr(0, path.rfind('/'))));
  GS_RETURN_IF_ERROR(WriteNpy(path, t));
  out << "wrote " << path << " (" << DTypeName(t.dtype()) << t.shape().DebugString() << ")\n";
  return absl::OkStatus();
}

absl::StatusOr<TensorMap> ReadInputs(const std::vector<std::string>& specs) {
  TensorMap inputs;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    GS_CHECK_ARG(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), "--input '", spec,
                 "' must be KEY=FILE.npy");
    const std::string key = spec.substr(0, eq);
    GS_ASSIGN_OR_RETURN(Tensor value, ReadNpy(spec.substr(eq + 1)));
    GS_CHECK_ARG(inputs.emplace(key, std::move(value)).second, "--input '", key,
                 "' is given twice");
  }
  return inputs;
}

absl::Status RunModel(const RunOptions& o, std::ostream& out) {
  GS_ASSIGN_OR_RETURN(TensorMap inputs, ReadInputs(o.inputs));
  GS_ASSIGN_OR_RETURN(SavedModelBundle bundle, LoadSavedModel(o.model_dir));
  GS_ASSIGN_OR_RETURN(auto outputs, RunSignature(bundle, o.signature, inputs, o.output_keys));
  for (const auto& [key, value] : outputs) {
    GS_RETURN_IF_ERROR(WriteOutput(o.output_dir, key, value, out));
  }
  return absl::OkStatus();
}

absl::Status RunGraph(const RunOptions& o, std::ostream& out) {
  GS_CHECK_ARG(!o.fetches.empty(), "--graph needs at least one --fetch NODE:PORT");
  GS_ASSIGN_OR_RETURN(TensorMap inputs, ReadInputs(o.inputs));
  GraphDef graph_def;
  GS_RETURN_IF_ERROR(ReadProto(o.graph_path, &graph_def));
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(graph_def);
  if (!session.ok()) return Annotate(session.status(), o.graph_path);
  FeedList feeds(inputs.begin(), inputs.end());
  std::vector<Tensor> values;
  GS_RETURN_IF_ERROR((*session)->Run(feeds, o.fetches, {}, &values));
  for (size_t i = 0; i < o.fetches.size(); ++i) {
    GS_RETURN_IF_ERROR(WriteOutput(o.output_dir, o.fetches[i], values[i], out));
  }
  return absl::OkStatus();
}

// Non-empty and all digits: a version directory's name.
bool IsVersionName(const std::string& name) {
  return !name.empty() && name.size() <= 18 && absl::c_all_of(name, absl::ascii_isdigit);
}

// Refuses a directory that holds anything: training must never mix its files
// with another model version's, nor replace one a server may be loading.
absl::Status CheckOutputDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(dir, error);
  if (!fs::exists(status)) return absl::OkStatus();
  GS_CHECK_ARG(fs::is_directory(status), "output ", dir, " exists and is not a directory");
  if (!fs::is_empty(dir, error) || error) {
    return absl::AlreadyExistsError(absl::StrCat(
        "refusing to write the trained model into ", dir,
        ": the directory exists and is not empty (give another --output, or remove it)"));
  }
  return absl::OkStatus();
}

// --output, or <model>/<max version + 1> beside a numbered version directory.
absl::StatusOr<std::string> ChooseOutputDir(const std::string& model_dir,
                                            const std::string& output_dir) {
  namespace fs = std::filesystem;
  if (!output_dir.empty()) {
    GS_RETURN_IF_ERROR(CheckOutputDir(output_dir));
    return output_dir;
  }
  fs::path version = fs::path(model_dir).lexically_normal();
  if (!version.has_filename()) version = version.parent_path();  // "dir/" -> "dir"
  GS_CHECK_ARG(IsVersionName(version.filename().string()),
               "cannot choose an output directory: ", model_dir,
               " is not a numbered version directory (<model>/<version>); give --output");
  const fs::path parent = version.has_parent_path() ? version.parent_path() : fs::path(".");
  int64_t max_version = 0;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(parent, error)) {
    const std::string name = entry.path().filename().string();
    int64_t v;
    if (IsVersionName(name) && absl::SimpleAtoi(name, &v)) max_version = std::max(max_version, v);
  }
  if (error) {
    return absl::ErrnoToStatus(error.value(), absl::StrCat("cannot list ", parent.string()));
  }
  const std::string dir = (parent / std::to_string(max_version + 1)).string();
  GS_RETURN_IF_ERROR(CheckOutputDir(dir));
  return dir;
}

// The file that holds a source's labels, for messages.
std::string SourceName(const DataSource& source) {
  if (!source.csv.empty()) return source.csv;
  const std::vector<std::string>& pair = source.idx.empty() ? source.npy : source.idx;
  return pair.empty() ? "" : pair.back();
}

std::string Describe(const Dataset& data) {
  return absl::StrCat(data.size(), " examples of ",
                      Shape(data.features.shape().dims().subspan(1)).DebugString(), ", ",
                      NumClasses(data), " classes");
}

}  // namespace

absl::StatusOr<Dataset> LoadDataSource(const DataSource& source) {
  GS_CHECK_ARG(source.count() == 1, "give exactly one data source (CSV, IDX or NPY), not ",
               source.count());
  if (!source.csv.empty()) return ReadCsvDataset(source.csv, source.scale.value_or(1.0f));
  const std::vector<std::string>& pair = source.idx.empty() ? source.npy : source.idx;
  GS_CHECK_ARG(pair.size() == 2, source.idx.empty() ? "NPY" : "IDX",
               " data needs two files (features and labels), not ", pair.size());
  if (!source.idx.empty()) {
    return ReadIdxDataset(pair[0], pair[1], source.scale.value_or(1.0f / 255));
  }
  return ReadNpyDataset(pair[0], pair[1], source.scale.value_or(1.0f));
}

absl::Status Train(const TrainOptions& o, std::ostream& out) {
  GS_CHECK_ARG(o.test_fraction >= 0 && o.test_fraction < 1,
               "the test fraction must be in [0, 1), not ", o.test_fraction);
  GS_ASSIGN_OR_RETURN(const std::string output_dir, ChooseOutputDir(o.model_dir, o.output_dir));
  GS_ASSIGN_OR_RETURN(Dataset data, LoadDataSource(o.data));
  Dataset test;
  if (o.test_data.count() > 0) {
    GS_ASSIGN_OR_RETURN(test, LoadDataSource(o.test_data));
  }
  GS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer,
                      Trainer::Load(o.model_dir, o.optimizer, o.session));
  // Before the split, so an error names the file and the example in it.
  GS_RETURN_IF_ERROR(CheckLabels(trainer->bundle(), data, SourceName(o.data)));
  GS_RETURN_IF_ERROR(CheckLabels(trainer->bundle(), test, SourceName(o.test_data)));
  Dataset train;
  if (o.test_data.count() > 0) {
    train = std::move(data);
  } else {
    std::tie(train, test) = ShuffleSplit(data, 1.0 - o.test_fraction, o.seed);
  }
  out << "training data: " << Describe(train) << "\n";
  if (test.size() > 0) out << "test data: " << Describe(test) << "\n";
  out << "training " << o.model_dir << " from step " << trainer->step() << ": "
      << OptimizerKindName(o.optimizer.kind) << ", learning rate " << o.optimizer.learning_rate
      << ", batch size " << o.batch_size << ", " << o.epochs << " epoch"
      << (o.epochs == 1 ? "" : "s") << "\n";
  TrainLoopOptions loop;
  loop.epochs = o.epochs;
  loop.batch_size = o.batch_size;
  loop.seed = o.seed;
  loop.progress = o.progress;
  GS_RETURN_IF_ERROR(TrainEpochs(*trainer, train, test, loop, out).status());
  // Again: another process may have taken the directory while we trained.
  GS_RETURN_IF_ERROR(CheckOutputDir(output_dir));
  GS_RETURN_IF_ERROR(trainer->Save(output_dir));
  out << "wrote " << output_dir << " (step " << trainer->step() << ")\n";
  return absl::OkStatus();
}

absl::Status EvaluateModel(const EvaluateOptions& o, std::ostream& out) {
  GS_ASSIGN_OR_RETURN(Dataset data, LoadDataSource(o.data));
  GS_ASSIGN_OR_RETURN(SavedModelBundle bundle, LoadSavedModel(o.model_dir, o.session));
  GS_RETURN_IF_ERROR(CheckLabels(bundle, data, SourceName(o.data), o.signature));
  GS_ASSIGN_OR_RETURN(EvalResult r, Evaluate(bundle, data, o.batch_size, o.signature));
  out << absl::StrFormat("accuracy %.4f  loss %.4f  (%d examples)\n", r.accuracy, r.loss,
                         r.examples);
  return absl::OkStatus();
}

absl::Status ShowSavedModel(const std::string& dir, std::ostream& out) {
  GS_ASSIGN_OR_RETURN(SavedModelData model, ReadSavedModel(dir));
  out << "saved model " << dir
      << " (producer: " << (model.proto.producer().empty() ? "?" : model.proto.producer()) << ")\n";
  const std::map<std::string, SignatureDef> signatures(model.proto.signature_def().begin(),
                                                       model.proto.signature_def().end());
  for (const auto& [key, sig] : signatures) {
    out << "\nsignature '" << key << "' (method " << sig.method_name() << ")\n  inputs:\n";
    PrintTensorInfos(sig.inputs(), out);
    out << "  outputs:" << (sig.outputs().empty() ? " (none)" : "") << "\n";
    PrintTensorInfos(sig.outputs(), out);
    if (sig.label_keys_size() > 0) {
      out << "  label keys: " << absl::StrJoin(sig.label_keys(), ", ") << "\n";
    }
    if (sig.trainable_variables_size() > 0) {
      out << "  trainable variables: " << absl::StrJoin(sig.trainable_variables(), ", ") << "\n";
    }
  }

  int64_t parameters = 0;
  std::string lines;
  for (const std::string& name : model.proto.variables()) {
    const Node& node = *model.graph->FindNode(name);
    const DType dtype = node.GetAttr<DType>("dtype").value_or(DType::kInvalid);
    const Shape shape = node.GetAttr<Shape>("shape").value_or(Shape::UnknownRank());
    if (shape.IsFullyDefined()) parameters += shape.num_elements();
    absl::StrAppendFormat(&lines, "  %-24s %-8s %s\n", name, DTypeName(dtype), shape.DebugString());
  }
  out << "\nvariables (" << model.proto.variables_size() << ", " << parameters << " parameters):\n"
      << lines;
  absl::Status checkpoint_status;
  if (model.proto.variables_size() > 0) {
    const std::string path = SavedModelCheckpointPath(dir);
    absl::StatusOr<CheckpointIndex> index = ReadCheckpointIndex(path);
    checkpoint_status = index.status();
    if (index.ok()) {
      out << "  checkpoint " << path << ": step " << index->step() << ", " << index->entry_size()
          << " tensors\n";
    } else {
      out << "  checkpoint: " << index.status().message() << "\n";
    }
  }
  out << "\n";
  PrintOpCounts(*model.graph, out);
  return checkpoint_status;
}

absl::Status ShowGraph(const std::string& path, std::ostream& out) {
  GraphDef graph_def;
  GS_RETURN_IF_ERROR(ReadProto(path, &graph_def));
  absl::StatusOr<std::unique_ptr<Graph>> graph = Graph::FromGraphDef(graph_def);
  if (!graph.ok()) return Annotate(graph.status(), path);
  out << "graph " << path << "\nplaceholders:\n";
  for (const auto& node : (*graph)->nodes()) {
    if (node->op() != "Placeholder" && node->op() != "PlaceholderWithDefault") continue;
    out << absl::StrFormat("  %-24s %-8s %s%s\n", node->name(), DTypeName(node->output_type(0)),
                           node->output_shape(0).DebugString(),
                           node->op() == "PlaceholderWithDefault" ? " (has a default)" : "");
  }
  out << "\n";
  PrintOpCounts(**graph, out);
  return absl::OkStatus();
}

absl::Status Run(const RunOptions& options, std::ostream& out) {
  GS_CHECK_ARG(options.model_dir.empty() != options.graph_path.empty(),
               "give exactly one of --model and --graph");
  GS_CHECK_ARG(!options.output_dir.empty(), "--output-dir is required");
  GS_CHECK_ARG(options.model_dir.empty() || options.fetches.empty(),
               "--fetch is for --graph; with --model use --output-key");
  GS_CHECK_ARG(options.graph_path.empty() || options.output_keys.empty(),
               "--output-key is for --model; with --graph use --fetch");
  GS_RETURN_IF_ERROR(CreateDirectories(options.output_dir));
  return options.model_dir.empty() ? RunGraph(options, out) : RunModel(options, out);
}

absl::Status Convert(const std::string& in, const std::string& out_path, const std::string& type,
                     std::ostream& out) {
  struct stat st;
  const bool is_dir = ::stat(in.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  const std::string base = in.substr(in.rfind('/') + 1);
  bool saved_model;
  if (type == "auto") {
    saved_model = is_dir || absl::StartsWith(base, "saved_model.");
  } else {
    GS_CHECK_ARG(type == "graph" || type == "saved_model",
                 "--type must be auto, graph or "
                 "saved_model, not '",
                 type, "'");
    saved_model = type == "saved_model";
  }
  GS_CHECK_ARG(!is_dir || saved_model, in, " is a directory, not a GraphDef file");
  const std::string in_path = is_dir ? SavedModelProtoPath(in) : in;
  SavedModel model;
  GraphDef graph_def;
  google::protobuf::Message* message =
      saved_model ? static_cast<google::protobuf::Message*>(&model) : &graph_def;
  GS_RETURN_IF_ERROR(ReadProto(in_path, message));
  GS_RETURN_IF_ERROR(WriteProto(out_path, *message));
  out << "wrote " << out_path << " (" << message->GetDescriptor()->name() << ", "
      << (IsTextPath(out_path) ? "text" : "binary") << ")\n";
  return absl::OkStatus();
}

}  // namespace gradserve::tools
