// make-example-models: writes the example model repository's saved models
// (graph/example_models.h), trained by their recipes (tools/example_training.h),
// as OUTDIR/<model>/<version>/. The build runs it into configs/models (target
// example_models) with the quick recipes; `--full` runs the documented full
// trainings (README "Example models").
//
// Exit status: 0 on success, 1 when training or writing fails, 2 for bad flags.
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "boost/program_options.hpp"
#include "graph/example_models.h"
#include "tools/example_training.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  gradserve::tools::ExampleTrainingOptions options;
  std::string out_dir, models = "digits_mlp,digits_cnn,fashion_mlp,fashion_cnn";
  int version = 1;
  po::options_description flags(
      "usage: make-example-models --out DIR [flags]\n"
      "Builds the example models (fixed-seed Glorot initial weights), trains each by its\n"
      "recipe and writes DIR/<model>/<version>/ (saved model, weights and optimizer state)");
  flags.add_options()
      ("help,h", "show this help")
      ("out", po::value(&out_dir)->value_name("DIR"), "the model repository to write into")
      ("models", po::value(&models)->value_name("A,B")->default_value(models),
       "comma-separated example models to write")
      ("version", po::value(&version)->value_name("N")->default_value(version),
       "the version folder to write")
      ("full", po::bool_switch(&options.full),
       "the full training runs (Fashion-MNIST: all 60,000 images, more epochs)")
      ("digits", po::value(&options.digits_csv)->value_name("CSV")->default_value(
           "configs/datasets/digits/digits.csv.gz"), "the UCI digits CSV")
      ("fashion", po::value(&options.fashion_dir)->value_name("DIR")->default_value(
           "/usr/share/datasets/fashion-mnist"),
       "Fashion-MNIST IDX files (Debian package dataset-fashion-mnist); its models are "
       "skipped with a warning when absent")
      ("intra-op-threads", po::value(&options.intra_op_threads)->default_value(0),
       "threads per op (0 = all cores)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, flags), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "make-example-models: " << e.what() << "\n" << flags << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return 0;
  }
  if (out_dir.empty() || version < 1) {
    std::cerr << "make-example-models: --out DIR is required and --version must be >= 1\n"
              << flags << "\n";
    return 2;
  }
  auto fail = [](const absl::Status& status) {
    std::cerr << "make-example-models: error: "
              << absl::StrReplaceAll(status.message(), {{"\n", " "}}) << "\n";
    return 1;
  };
  const std::string init_dir = out_dir + "/.untrained";
  std::filesystem::remove_all(init_dir);
  if (absl::Status s = gradserve::WriteExampleModels(init_dir); !s.ok()) return fail(s);
  for (absl::string_view name : absl::StrSplit(models, ',', absl::SkipEmpty())) {
    const std::string model(name);
    if (model.rfind("fashion_", 0) == 0 &&
        !std::filesystem::exists(options.fashion_dir + "/train-images-idx3-ubyte.gz")) {
      std::cerr << "make-example-models: warning: " << options.fashion_dir
                << " has no Fashion-MNIST (install dataset-fashion-mnist); skipping " << model
                << "\n";
      continue;
    }
    const std::string out = out_dir + "/" + model + "/" + std::to_string(version);
    std::filesystem::remove_all(out);
    auto report = gradserve::tools::TrainExampleModel(model, init_dir + "/" + model + "/1", out,
                                                      options, std::cout);
    if (!report.ok()) return fail(report.status());
    std::cout << "make-example-models: wrote " << out << "\n";
  }
  std::filesystem::remove_all(init_dir);
  return 0;
}
