// gradserve-model: inspect, run and convert saved models and GraphDefs, in the
// spirit of TensorFlow's saved_model_cli; train and evaluate classifiers.
// `gradserve-model --help` documents it.
//
// Exit status: 0 on success, 1 when the command fails (one line on stderr),
// 2 for bad flags (the message and the usage on stderr).
#include <unistd.h>

#include <cmath>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
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
  train    Train a saved model's `train` signature on a labelled data set (CSV,
           IDX or NPY) and write the result as a new model version.
  evaluate Print a classifier's accuracy and mean loss on a labelled data set.

`gradserve-model COMMAND --help` shows one command's flags.
)";

struct Command {
  const char* name;
  const char* synopsis;
  po::options_description flags;
};

// Every command's flag values (program_options writes into them).
struct Flags {
  RunOptions run;
  std::string model, graph, in, out, type;
  TrainOptions train;
  EvaluateOptions evaluate;
  // Parsed after program_options: they need more than its conversions.
  std::string scale, optimizer = "adam";
};

// --data/--idx/--npy (and --scale) into `source`; `prefix` names the test set's.
void AddDataFlags(po::options_description& flags, DataSource& source, const std::string& prefix,
                  const std::string& what) {
  flags.add_options()
      ((prefix + "data").c_str(), po::value(&source.csv)->value_name("FILE.csv[.gz]"),
       (what + ": a CSV file, one example per line, the label last (.gz read through zlib)")
           .c_str())
      ((prefix + "idx").c_str(),
       po::value(&source.idx)->multitoken()->value_name("IMAGES LABELS"),
       (what + ": IDX images (idx3-ubyte) and labels (idx1-ubyte), optionally gzipped, "
               "as MNIST and Fashion-MNIST ship them").c_str())
      ((prefix + "npy").c_str(),
       po::value(&source.npy)->multitoken()->value_name("FEATURES LABELS"),
       (what + ": a features .npy (any numeric dtype) and an integer labels .npy").c_str());
}

std::vector<Command> MakeCommands(Flags& f) {
  RunOptions& run = f.run;
  std::string &model = f.model, &graph = f.graph, &in = f.in, &out = f.out, &type = f.type;
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

  TrainOptions& t = f.train;
  po::options_description tr("train flags");
  tr.add_options()
      ("help,h", "show this help")
      ("model", po::value(&t.model_dir)->value_name("DIR"),
       "saved model version directory with a 'train' signature (one feature input, one "
       "int64 label input)");
  AddDataFlags(tr, t.data, "", "training data");
  const OptimizerConfig defaults;
  tr.add_options()
      ("scale", po::value(&f.scale)->value_name("X"),
       "multiply the features by X, a number or a fraction such as 1/16 (default: 1 for CSV "
       "and NPY, 1/255 for IDX; the shipped digits.csv.gz needs 1/16)")
      ("test-fraction", po::value(&t.test_fraction)->value_name("F")->default_value(0.2, "0.2"),
       "hold out this fraction of the data (shuffled with --seed) as the test set; 0: none");
  AddDataFlags(tr, t.test_data, "test-", "a separate test set instead of --test-fraction");
  tr.add_options()
      ("epochs", po::value(&t.epochs)->value_name("N")->default_value(t.epochs), "passes over "
       "the training data")
      ("batch-size", po::value(&t.batch_size)->value_name("B")->default_value(t.batch_size),
       "examples per step (the last batch of an epoch may be smaller)")
      ("optimizer", po::value(&f.optimizer)->value_name("sgd|momentum|adam|adamw")
                        ->default_value(f.optimizer), "the optimizer (Keras's defaults)")
      ("learning-rate", po::value(&t.optimizer.learning_rate)->value_name("LR")
                            ->default_value(defaults.learning_rate, "0.001"), "step size")
      ("momentum", po::value(&t.optimizer.momentum)->value_name("M")
                       ->default_value(defaults.momentum, "0.9"), "--optimizer momentum only")
      ("weight-decay", po::value(&t.optimizer.weight_decay)->value_name("WD")
                           ->default_value(defaults.weight_decay, "0.004"),
       "--optimizer adamw only: decoupled weight decay")
      ("clip-global-norm", po::value(&t.optimizer.clip_global_norm)->value_name("C")
                               ->default_value(0.0, "0"),
       "scale the gradients down to global norm C when above it; 0: no clipping")
      ("seed", po::value(&t.seed)->value_name("S")->default_value(t.seed),
       "seeds the test split and each epoch's shuffle (same seed, same batches)")
      ("output", po::value(&t.output_dir)->value_name("DIR"),
       "the new version directory to write (must not exist or be empty); default: the next "
       "free version beside --model, <model>/<max version + 1>")
      ("intra-op-threads", po::value(&t.session.intra_op_threads)->value_name("N")
                               ->default_value(0), "threads one op may use; 0: all cores")
      ("inter-op-threads", po::value(&t.session.inter_op_threads)->value_name("N")
                               ->default_value(0), "ops run at once; 0: all cores");
  commands.push_back(
      {"train",
       "train --model DIR (--data FILE.csv[.gz] | --idx IMAGES LABELS | --npy FEATURES LABELS)\n"
       "       [--test-fraction F | --test-data ... | --test-idx ... | --test-npy ...]\n"
       "       [--epochs N] [--batch-size B] [--optimizer NAME] [--learning-rate LR] "
       "[--output DIR] ...",
       tr});

  EvaluateOptions& e = f.evaluate;
  po::options_description ev("evaluate flags");
  ev.add_options()
      ("help,h", "show this help")
      ("model", po::value(&e.model_dir)->value_name("DIR"), "saved model version directory");
  AddDataFlags(ev, e.data, "", "the data");
  ev.add_options()
      ("scale", po::value(&f.scale)->value_name("X"),
       "multiply the features by X, a number or a fraction such as 1/16 (default: 1 for CSV "
       "and NPY, 1/255 for IDX)")
      ("signature", po::value(&e.signature)->value_name("KEY")->default_value(e.signature),
       "the signature to evaluate: one input, a 'logits' or 'probabilities' output")
      ("batch-size", po::value(&e.batch_size)->value_name("B")->default_value(e.batch_size),
       "examples per run")
      ("intra-op-threads", po::value(&e.session.intra_op_threads)->value_name("N")
                               ->default_value(0), "threads one op may use; 0: all cores")
      ("inter-op-threads", po::value(&e.session.inter_op_threads)->value_name("N")
                               ->default_value(0), "ops run at once; 0: all cores");
  commands.push_back(
      {"evaluate",
       "evaluate --model DIR (--data FILE.csv[.gz] | --idx IMAGES LABELS | --npy FEATURES "
       "LABELS) [--scale X]",
       ev});
  return commands;
}

// "0.5", "1/16": the --scale value, or nullopt when it is neither.
std::optional<float> ParseScale(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, '/');
  double num = 0, den = 1;
  if (parts.empty() || parts.size() > 2 || !absl::SimpleAtod(parts[0], &num) ||
      (parts.size() == 2 && !absl::SimpleAtod(parts[1], &den)) || den == 0) {
    return std::nullopt;
  }
  const double scale = num / den;
  if (!std::isfinite(scale) || scale == 0) return std::nullopt;
  return static_cast<float>(scale);
}

// The empty string, or what is wrong with a data source's flags.
std::string DataSourceProblem(const DataSource& d, const std::string& prefix) {
  if (d.count() > 1) {
    return "give one of --" + prefix + "data, --" + prefix + "idx and --" + prefix + "npy";
  }
  if (!d.idx.empty() && d.idx.size() != 2) return "--" + prefix + "idx takes IMAGES LABELS";
  if (!d.npy.empty() && d.npy.size() != 2) return "--" + prefix + "npy takes FEATURES LABELS";
  return "";
}

// Checks the train/evaluate flags that program_options cannot; "" when fine.
std::string CheckTrainFlags(Flags& f, const po::variables_map& vm, bool train) {
  DataSource& data = train ? f.train.data : f.evaluate.data;
  if ((train ? f.train.model_dir : f.evaluate.model_dir).empty()) return "--model is required";
  if (data.count() == 0) return "give the data: --data, --idx or --npy";
  if (std::string p = DataSourceProblem(data, ""); !p.empty()) return p;
  if (!f.scale.empty()) {
    const std::optional<float> scale = ParseScale(f.scale);
    if (!scale) return "--scale must be a non-zero number or a fraction such as 1/16, not '" +
                       f.scale + "'";
    data.scale = scale;
  }
  if (!train) {
    if (f.evaluate.batch_size < 1) return "--batch-size must be positive";
    return "";
  }
  TrainOptions& t = f.train;
  if (std::string p = DataSourceProblem(t.test_data, "test-"); !p.empty()) return p;
  t.test_data.scale = data.scale;
  if (t.test_data.count() > 0 && !vm["test-fraction"].defaulted()) {
    return "give --test-fraction or a separate test set, not both";
  }
  if (t.test_fraction < 0 || t.test_fraction >= 1) return "--test-fraction must be in [0, 1)";
  if (t.epochs < 1) return "--epochs must be at least 1";
  if (t.batch_size < 1) return "--batch-size must be positive";
  absl::StatusOr<OptimizerKind> kind = ParseOptimizerKind(f.optimizer);
  if (!kind.ok()) return "--optimizer: " + std::string(kind.status().message());
  t.optimizer.kind = *kind;
  if (!vm["momentum"].defaulted() && *kind != OptimizerKind::kMomentum) {
    return "--momentum applies to --optimizer momentum only";
  }
  if (!vm["weight-decay"].defaulted() && *kind != OptimizerKind::kAdamW) {
    return "--weight-decay applies to --optimizer adamw only";
  }
  if (absl::Status valid = t.optimizer.Validate(); !valid.ok()) {
    return std::string(valid.message());
  }
  if (::isatty(STDERR_FILENO)) t.progress = &std::cerr;
  return "";
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
  Flags flags;
  const std::vector<Command> commands = MakeCommands(flags);
  RunOptions& run = flags.run;
  const std::string &model = flags.model, &graph = flags.graph, &in = flags.in, &out = flags.out,
                    &type = flags.type;
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
  } else if (name == "train" || name == "evaluate") {
    const bool train = name == "train";
    if (std::string problem = CheckTrainFlags(flags, vm, train); !problem.empty()) {
      return BadFlags(problem, command, commands);
    }
    status = train ? Train(flags.train, std::cout) : EvaluateModel(flags.evaluate, std::cout);
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
