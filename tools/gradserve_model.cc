// gradserve-model: inspect, run and convert saved models and GraphDefs, in the
// spirit of TensorFlow's saved_model_cli. `gradserve-model --help` documents it.
//
// Exit status: 0 on success, 1 when the command fails (one line on stderr),
// 2 for bad flags (the message and the usage on stderr).
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "boost/program_options.hpp"
#include "tools/model_commands.h"

namespace po = boost::program_options;

namespace gradserve::tools {
namespace {

constexpr char kUsage[] = R"(usage: gradserve-model COMMAND [FLAGS]

Commands:
  show     Print a saved model's signatures, variables and op counts, or a
           GraphDef's placeholders and op counts.
  run      Run a saved model's signature, or a bare GraphDef (e.g. a TensorFlow
           frozen graph), on inputs from .npy files; write outputs as .npy files.
  convert  Convert a GraphDef or SavedModel between binary (.pb) and text (.pbtxt).

`gradserve-model COMMAND --help` shows one command's flags.
)";

struct Command {
  const char* name;
  const char* synopsis;
  po::options_description flags;
};

std::vector<Command> MakeCommands(RunOptions& run, std::string& model, std::string& graph,
                                  std::string& in, std::string& out, std::string& type) {
  std::vector<Command> commands;

  po::options_description show("show flags");
  show.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model)->value_name("DIR"),
       "saved model directory (<model>/<version>, holding saved_model.pb)")
      ("graph", po::value(&graph)->value_name("FILE"),
       "a GraphDef instead: binary (.pb) or text (.pbtxt)");
  commands.push_back({"show", "show (--model DIR | --graph FILE)", show});

  po::options_description r("run flags");
  r.add_options()
      ("help,h", "show this help")
      ("model", po::value(&run.model_dir)->value_name("DIR"),
       "saved model directory; runs --signature")
      ("graph", po::value(&run.graph_path)->value_name("FILE"),
       "a GraphDef instead (.pb binary, .pbtxt text); needs --fetch")
      ("signature", po::value(&run.signature)->value_name("KEY")->default_value(run.signature),
       "with --model: the signature to run")
      ("input", po::value(&run.inputs)->value_name("KEY=FILE.npy")->composing(),
       "repeatable. With --model KEY is a signature input key; with --graph it is a "
       "placeholder (or any tensor) name, \"node\" or \"node:port\"")
      ("fetch", po::value(&run.fetches)->value_name("NODE:PORT")->composing(),
       "repeatable; with --graph: a tensor to compute, written to "
       "OUT/<NODE>_<PORT>.npy (':' becomes '_')")
      ("output-key", po::value(&run.output_keys)->value_name("KEY")->composing(),
       "repeatable; with --model: only these outputs (default: all), written to OUT/<KEY>.npy")
      ("output-dir", po::value(&run.output_dir)->value_name("OUT"),
       "directory for the output .npy files (created if missing)");
  commands.push_back(
      {"run",
       "run --model DIR [--signature KEY] --input KEY=FILE.npy ... --output-dir OUT\n"
       "   or: gradserve-model run --graph FILE --input NAME=FILE.npy ... --fetch NODE:PORT ... "
       "--output-dir OUT",
       r});

  po::options_description c("convert flags");
  c.add_options()
      ("help,h", "show this help")
      ("in", po::value(&in)->value_name("FILE"),
       "input: .pb (binary) or .pbtxt (text); a directory means its saved_model.pb")
      ("out", po::value(&out)->value_name("FILE"), "output: .pb (binary) or .pbtxt (text)")
      ("type", po::value(&type)->value_name("auto|graph|saved_model")->default_value("auto"),
       "what the file holds; auto: a directory or a file named saved_model.* is a "
       "SavedModel, anything else a GraphDef");
  commands.push_back({"convert", "convert --in A --out B [--type auto|graph|saved_model]", c});
  return commands;
}

void PrintHelp(const std::vector<Command>& commands, std::ostream& os) {
  os << kUsage;
  for (const Command& c : commands) os << "\ngradserve-model " << c.synopsis << "\n" << c.flags;
  os << "\nExit status: 0 success, 1 the command failed, 2 bad flags.\n";
}

int BadFlags(const std::string& message, const Command* command,
             const std::vector<Command>& commands) {
  std::cerr << "gradserve-model: " << message << "\n\n";
  if (command != nullptr) {
    std::cerr << "usage: gradserve-model " << command->synopsis << "\n" << command->flags;
  } else {
    std::cerr << kUsage;
  }
  return 2;
}

int Failed(const absl::Status& status) {
  std::cerr << "gradserve-model: error: "
            << absl::StrReplaceAll(status.message(), {{"\n", " "}}) << "\n";
  return 1;
}

int Main(int argc, char** argv) {
  RunOptions run;
  std::string model, graph, in, out, type;
  const std::vector<Command> commands = MakeCommands(run, model, graph, in, out, type);
  if (argc < 2) return BadFlags("no command given", nullptr, commands);
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintHelp(commands, std::cout);
    return 0;
  }
  const Command* command = nullptr;
  for (const Command& c : commands) {
    if (name == c.name) command = &c;
  }
  if (command == nullptr) return BadFlags("unknown command '" + name + "'", nullptr, commands);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc - 1, argv + 1).options(command->flags).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return BadFlags(e.what(), command, commands);
  }
  if (vm.count("help")) {
    std::cout << "usage: gradserve-model " << command->synopsis << "\n" << command->flags;
    return 0;
  }

  absl::Status status;
  if (name == "show") {
    if (model.empty() == graph.empty()) {
      return BadFlags("give exactly one of --model and --graph", command, commands);
    }
    status = model.empty() ? ShowGraph(graph, std::cout) : ShowSavedModel(model, std::cout);
  } else if (name == "run") {
    if (run.model_dir.empty() == run.graph_path.empty()) {
      return BadFlags("give exactly one of --model and --graph", command, commands);
    }
    if (run.output_dir.empty()) return BadFlags("--output-dir is required", command, commands);
    if (!run.graph_path.empty() && run.fetches.empty()) {
      return BadFlags("--graph needs at least one --fetch", command, commands);
    }
    if (!run.graph_path.empty() && (!run.output_keys.empty() || !vm["signature"].defaulted())) {
      return BadFlags("--output-key and --signature are for --model", command, commands);
    }
    if (!run.model_dir.empty() && !run.fetches.empty()) {
      return BadFlags("--fetch is for --graph; with --model use --output-key", command,
                      commands);
    }
    status = Run(run, std::cout);
  } else {
    if (in.empty() || out.empty()) {
      return BadFlags("--in and --out are required", command, commands);
    }
    status = Convert(in, out, type, std::cout);
  }
  return status.ok() ? 0 : Failed(status);
}

}  // namespace
}  // namespace gradserve::tools

int main(int argc, char** argv) { return gradserve::tools::Main(argc, argv); }
