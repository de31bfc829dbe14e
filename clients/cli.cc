// gradserve-cli: the inference server's operations from the shell, over gRPC
// (Open Inference Protocol v2 + Triton's extensions, and gradserve's
// TrainingService for online fine-tuning). `gradserve-cli --help` lists the
// commands, `gradserve-cli COMMAND --help` one command's flags.
//
// Exit status: 0 on success; 1 when the server (or the client, e.g. an
// unreadable .npy file) reports an error, printed as "error: CODE: message"
// on stderr; 2 for bad flags (the message and the usage on stderr).
//
// Adding a command: write a Run function (Client, Flags, stdout) -> Status,
// add the flags it needs to Flags, and add one row in MakeCommands.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "boost/program_options.hpp"
#include "clients/cli.h"
#include "clients/client.h"
#include "clients/infer_json.h"
#include "clients/npy.h"
#include "google/protobuf/text_format.h"

namespace po = boost::program_options;

namespace gradserve::client {

// The --input NAME=FILE.npy tensors.
absl::StatusOr<std::vector<Tensor>> ReadInputs(const Flags& f) {
  std::vector<Tensor> inputs;
  for (const std::string& spec : f.inputs) {
    const size_t eq = spec.find('=');
    absl::StatusOr<Tensor> t = ReadNpy(spec.substr(eq + 1), spec.substr(0, eq));
    if (!t.ok()) return t.status();
    inputs.push_back(*std::move(t));
  }
  return inputs;
}

namespace {

constexpr char kUsage[] =
    R"(usage: gradserve-cli COMMAND [--url HOST:PORT] [--timeout-ms MS] [FLAGS]

Commands:
)";

// A command: its flags, the ones it cannot do without, a check of the flags
// that program_options cannot express (a non-empty answer is a usage error,
// exit 2) and what it does (an error status: exit 1).
struct Command {
  std::string name;
  std::string synopsis;  // after "gradserve-cli "
  std::string help;      // one line for the command list
  po::options_description flags;
  std::vector<std::string> required;
  std::function<std::string(const Flags&)> check;
  std::function<absl::Status(Client&, const Flags&, std::ostream&)> run;
};

// ------------------------------------------------------------------ commands

absl::Status Health(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<bool> live = client.ServerLive();
  if (!live.ok()) return live.status();
  absl::StatusOr<bool> ready = client.ServerReady();
  if (!ready.ok()) return ready.status();
  out << "live: " << (*live ? "true" : "false") << "\nready: " << (*ready ? "true" : "false")
      << "\n";
  if (!f.model.empty()) {
    absl::StatusOr<bool> model_ready = client.ModelReady(f.model, f.version);
    if (!model_ready.ok()) return model_ready.status();
    out << "model " << f.model << (f.version.empty() ? "" : " version " + f.version)
        << " ready: " << (*model_ready ? "true" : "false") << "\n";
    if (!*model_ready)
      return absl::UnavailableError(absl::StrCat("model '", f.model, "' is not ready"));
  }
  if (!*live || !*ready) return absl::UnavailableError("the server is not ready");
  return absl::OkStatus();
}

template <typename Tensors>
void PrintTensorMetadata(const Tensors& tensors, std::ostream& out) {
  for (const auto& t : tensors) {
    out << "  " << t.name() << " " << t.datatype() << " [" << absl::StrJoin(t.shape(), ",")
        << "]\n";
  }
}

absl::Status Metadata(Client& client, const Flags& f, std::ostream& out) {
  if (f.model.empty()) {
    absl::StatusOr<inference::ServerMetadataResponse> m = client.ServerMetadata();
    if (!m.ok()) return m.status();
    out << "name: " << m->name() << "\nversion: " << m->version()
        << "\nextensions: " << absl::StrJoin(m->extensions(), " ") << "\n";
    return absl::OkStatus();
  }
  absl::StatusOr<inference::ModelMetadataResponse> m = client.ModelMetadata(f.model, f.version);
  if (!m.ok()) return m.status();
  out << "name: " << m->name() << "\nversions: " << absl::StrJoin(m->versions(), " ")
      << "\nplatform: " << m->platform() << "\ninputs:\n";
  PrintTensorMetadata(m->inputs(), out);
  out << "outputs:\n";
  PrintTensorMetadata(m->outputs(), out);
  return absl::OkStatus();
}

absl::Status Config(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<inference::ModelConfig> config = client.ModelConfig(f.model, f.version);
  if (!config.ok()) return config.status();
  std::string text;
  google::protobuf::TextFormat::PrintToString(*config, &text);
  out << text;
  return absl::OkStatus();
}

// A usage error for an --input flag that is not NAME=FILE.npy ("" if all are).
std::string CheckInputSpecs(const Flags& f) {
  for (const std::string& spec : f.inputs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return absl::StrCat("--input ", spec, ": expected NAME=FILE.npy");
    }
  }
  return "";
}

// The tensors of the --input NAME=FILE.npy flags (checked by CheckInputSpecs).

// The request of --json FILE or of --input NAME=FILE.npy flags.
absl::StatusOr<InferRequest> ReadInferRequest(const Flags& f) {
  InferRequest request;
  if (!f.json.empty()) {
    std::ifstream in(f.json);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", f.json));
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<InferRequest> r = InferRequestFromJson(text.str());
    if (!r.ok())
      return absl::Status(r.status().code(), absl::StrCat(f.json, ": ", r.status().message()));
    request = *std::move(r);
  }
  absl::StatusOr<std::vector<Tensor>> inputs = ReadInputs(f);
  if (!inputs.ok()) return inputs.status();
  for (Tensor& t : *inputs) request.inputs.push_back(std::move(t));
  request.model = f.model;
  request.version = f.version;
  if (!f.id.empty()) request.id = f.id;
  if (!f.outputs.empty()) request.outputs = f.outputs;
  return request;
}

absl::Status Infer(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<InferRequest> request = ReadInferRequest(f);
  if (!request.ok()) return request.status();
  absl::StatusOr<InferResult> result = client.Infer(*request);
  if (!result.ok()) return result.status();
  if (f.output_dir.empty()) {
    for (const Tensor& t : result->outputs) out << FormatTensor(t);
    return absl::OkStatus();
  }
  std::error_code ec;
  std::filesystem::create_directories(f.output_dir, ec);
  if (ec)
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", f.output_dir, ": ", ec.message()));
  for (const Tensor& t : result->outputs) {
    const std::string path = (std::filesystem::path(f.output_dir) / (t.name + ".npy")).string();
    absl::Status s = WriteNpy(path, t);
    if (!s.ok()) return s;
    out << "wrote " << path << " (" << t.datatype << " [" << absl::StrJoin(t.shape, ",") << "])\n";
  }
  return absl::OkStatus();
}

absl::Status Index(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<inference::RepositoryIndexResponse> index = client.RepositoryIndex(f.ready_only);
  if (!index.ok()) return index.status();
  out << absl::StrFormat("%-24s %-8s %-12s %s\n", "MODEL", "VERSION", "STATE", "REASON");
  for (const auto& m : index->models()) {
    out << absl::StrFormat("%-24s %-8s %-12s %s\n", m.name(), m.version(), m.state(), m.reason());
  }
  return absl::OkStatus();
}

absl::Status Load(Client& client, const Flags& f, std::ostream& out) {
  absl::Status s = client.Load(f.model);
  if (s.ok()) out << "loaded " << f.model << "\n";
  return s;
}

absl::Status Unload(Client& client, const Flags& f, std::ostream& out) {
  absl::Status s = client.Unload(f.model);
  if (s.ok()) out << "unloaded " << f.model << "\n";
  return s;
}

// "count, avg X us" of a cumulative duration.
std::string Avg(const inference::StatisticDuration& d) {
  if (d.count() == 0) return "0";
  return absl::StrFormat("%d, avg %.1f us", d.count(), d.ns() / 1e3 / d.count());
}

absl::Status Stats(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<inference::ModelStatisticsResponse> stats =
      client.ModelStatistics(f.model, f.version);
  if (!stats.ok()) return stats.status();
  for (const inference::ModelStatistics& m : stats->model_stats()) {
    const auto& s = m.inference_stats();
    out << m.name() << " version " << m.version() << ": " << m.inference_count()
        << " inferences in " << m.execution_count() << " executions";
    if (m.execution_count() > 0) {
      out << absl::StrFormat(" (avg batch %.2f)",
                             static_cast<double>(m.inference_count()) / m.execution_count());
    }
    if (m.last_inference() > 0) {
      out << ", last at "
          << absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::FromUnixMillis(m.last_inference()),
                              absl::LocalTimeZone());
    }
    out << "\n  success         " << Avg(s.success()) << "\n  fail            " << Avg(s.fail())
        << "\n  queue           " << Avg(s.queue()) << "\n  compute input   "
        << Avg(s.compute_input()) << "\n  compute infer   " << Avg(s.compute_infer())
        << "\n  compute output  " << Avg(s.compute_output()) << "\n";
    for (const auto& b : m.batch_stats()) {
      out << "  batch size " << b.batch_size() << ": compute infer " << Avg(b.compute_infer())
          << "\n";
    }
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------ training commands
// Their output is "key: value" lines named after the response's fields, so
// scripts can pick one with grep.

// ------------------------------------------------------------------ the table

std::string NeedsModel(const Flags& f) {
  return !f.version.empty() && f.model.empty() ? "--version needs --model" : "";
}

std::vector<Command> MakeCommands(Flags& f) {
  std::vector<Command> commands;
  auto model_flags = [&f](po::options_description& d, bool version) {
    d.add_options()("model,m", po::value(&f.model)->value_name("MODEL"), "the model's name");
    if (version) {
      d.add_options()("version", po::value(&f.version)->value_name("V"),
                      "the model's version (default: the one the version policy picks)");
    }
  };

  po::options_description health("health flags");
  model_flags(health, true);
  commands.push_back({"health",
                      "health [--model M [--version V]]",
                      "Is the server live and ready (and the model ready)? Exit 1 if not.",
                      health,
                      {},
                      NeedsModel,
                      Health});

  po::options_description metadata("metadata flags");
  model_flags(metadata, true);
  commands.push_back({"metadata",
                      "metadata [--model M [--version V]]",
                      "The server's metadata, or a model's inputs and outputs.",
                      metadata,
                      {},
                      NeedsModel,
                      Metadata});

  po::options_description config("config flags");
  model_flags(config, true);
  commands.push_back({"config",
                      "config --model M [--version V]",
                      "A model's configuration (config.pbtxt's text format).",
                      config,
                      {"model"},
                      nullptr,
                      Config});

  po::options_description infer("infer flags");
  model_flags(infer, true);
  // clang-format off
  infer.add_options()
      ("input", po::value(&f.inputs)->composing()->value_name("NAME=FILE.npy"),
       "repeatable: an input tensor from a .npy file")
      ("json", po::value(&f.json)->value_name("FILE"),
       "the inputs (and requested outputs) as an Open Inference Protocol JSON body: "
       "{\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}], \"outputs\": [{\"name\"}]}")
      ("output", po::value(&f.outputs)->composing()->value_name("NAME"),
       "repeatable: only these outputs (default: all)")
      ("output-dir", po::value(&f.output_dir)->value_name("DIR"),
       "write each output to DIR/NAME.npy (created if missing); default: print them")
      ("id", po::value(&f.id)->value_name("ID"), "the request id");
  // clang-format on
  commands.push_back(
      {"infer",
       "infer --model M (--input NAME=FILE.npy ... | --json FILE) [--output NAME ...] "
       "[--output-dir DIR]",
       "Run an inference request.",
       infer,
       {"model"},
       [](const Flags& f) -> std::string {
         if (f.inputs.empty() == f.json.empty()) return "give either --input flags or --json";
         return CheckInputSpecs(f);
       },
       Infer});

  po::options_description index("index flags");
  index.add_options()("ready", po::bool_switch(&f.ready_only), "only the models ready to serve");
  commands.push_back({"index",
                      "index [--ready]",
                      "The repository's models, their versions and states.",
                      index,
                      {},
                      nullptr,
                      Index});

  po::options_description load("load flags");
  model_flags(load, false);
  commands.push_back({"load",
                      "load --model M",
                      "Load (or reload) a model from the repository (explicit control mode).",
                      load,
                      {"model"},
                      nullptr,
                      Load});

  po::options_description unload("unload flags");
  model_flags(unload, false);
  commands.push_back(
      {"unload", "unload --model M", "Unload a model.", unload, {"model"}, nullptr, Unload});

  po::options_description stats("stats flags");
  model_flags(stats, true);
  commands.push_back({"stats",
                      "stats [--model M [--version V]]",
                      "Inference statistics (all models by default).",
                      stats,
                      {},
                      NeedsModel,
                      Stats});

  po::options_description train("train flags");
  model_flags(train, true);
  // clang-format off
  train.add_options()
      ("input", po::value(&f.inputs)->composing()->value_name("NAME=FILE.npy"),
       "repeatable: an input of the train signature (features and labels) from a .npy file")
      ("id", po::value(&f.id)->value_name("ID"), "the request id");
  // clang-format on
  commands.push_back({"train",
                      "train --model M [--version V] --input NAME=FILE.npy ... [--id ID]",
                      "Train the model on examples: one step's loss, step and weights generation.",
                      train,
                      {"model", "input"},
                      CheckInputSpecs,
                      Train});

  po::options_description checkpoint("checkpoint flags");
  model_flags(checkpoint, true);
  commands.push_back({"checkpoint",
                      "checkpoint --model M [--version V]",
                      "Write a checkpoint of a training model's weights and optimizer state.",
                      checkpoint,
                      {"model"},
                      nullptr,
                      Checkpoint});

  po::options_description export_flags("export flags");
  model_flags(export_flags, true);
  export_flags.add_options()(
      "export-version", po::value(&f.export_version)->value_name("N"),
      "the version to write (default 0: one more than the highest in the repository)");
  commands.push_back(
      {"export",
       "export --model M [--version V] [--export-version N]",
       "Write a training model's current weights as a new version in the repository.",
       export_flags,
       {"model"},
       [](const Flags& f) -> std::string {
         return f.export_version < 0 ? "--export-version must be >= 0" : "";
       },
       Export});

  po::options_description rollback("rollback flags");
  model_flags(rollback, true);
  rollback.add_options()("checkpoint", po::value(&f.checkpoint)->value_name("NAME"),
                         "the checkpoint to restore (default: the newest)");
  commands.push_back({"rollback",
                      "rollback --model M [--version V] [--checkpoint NAME]",
                      "Restore a training model's weights from a checkpoint.",
                      rollback,
                      {"model"},
                      nullptr,
                      Rollback});

  po::options_description training_status("training-status flags");
  model_flags(training_status, true);
  commands.push_back({"training-status",
                      "training-status --model M [--version V]",
                      "A model's training: enabled, step, loss, queue, checkpoints.",
                      training_status,
                      {"model"},
                      nullptr,
                      TrainingStatus});
  return commands;
}

void PrintUsage(const std::vector<Command>& commands, std::ostream& out) {
  out << kUsage;
  for (const Command& c : commands) out << absl::StrFormat("  %-15s %s\n", c.name, c.help);
  out << "\nFlags of every command:\n"
         "  --url HOST:PORT   the server's gRPC endpoint (default localhost:8001)\n"
         "  --timeout-ms MS   deadline of each call (default 0: none)\n"
         "\n`gradserve-cli COMMAND --help` shows one command's flags.\n";
}

int Main(int argc, char** argv) {
  Flags f;
  std::vector<Command> commands = MakeCommands(f);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    PrintUsage(commands, argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  auto command = std::find_if(commands.begin(), commands.end(),
                              [&](const Command& c) { return c.name == name; });
  if (command == commands.end()) {
    std::cerr << "gradserve-cli: unknown command '" << name << "'\n\n";
    PrintUsage(commands, std::cerr);
    return 2;
  }
  const std::string usage = absl::StrCat("usage: gradserve-cli ", command->synopsis, "\n");
  po::options_description all;
  all.add(command->flags);
  po::options_description common("common flags");
  // clang-format off
  common.add_options()
      ("help,h", "show this help")
      ("url,u", po::value(&f.url)->default_value(f.url)->value_name("HOST:PORT"),
       "the server's gRPC endpoint")
      ("timeout-ms", po::value(&f.timeout_ms)->default_value(0)->value_name("MS"),
       "deadline of each call in milliseconds; 0: none");
  // clang-format on
  all.add(common);
  po::variables_map vm;
  std::string usage_error;
  try {
    po::store(po::command_line_parser(argc - 1, argv + 1).options(all).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    usage_error = e.what();
  }
  if (usage_error.empty() && vm.count("help")) {
    std::cout << usage << all << "\n";
    return 0;
  }
  for (const std::string& flag : command->required) {
    if (usage_error.empty() && !vm.count(flag))
      usage_error = absl::StrCat("--", flag, " is required");
  }
  if (usage_error.empty() && f.timeout_ms < 0) usage_error = "--timeout-ms must be >= 0";
  if (usage_error.empty() && command->check) usage_error = command->check(f);
  if (!usage_error.empty()) {
    std::cerr << "gradserve-cli " << name << ": " << usage_error << "\n\n" << usage << all << "\n";
    return 2;
  }

  ClientOptions options;
  options.url = f.url;
  if (f.timeout_ms > 0) options.timeout = absl::Milliseconds(f.timeout_ms);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  absl::Status status = client.ok() ? command->run(**client, f, std::cout) : client.status();
  if (!status.ok()) {
    std::cerr << "error: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
              << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace gradserve::client

int main(int argc, char** argv) { return gradserve::client::Main(argc, argv); }
