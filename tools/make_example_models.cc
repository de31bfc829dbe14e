// make-example-models OUTDIR: writes the example saved models (graph/example_models.h)
// as OUTDIR/<model>/1/. The build runs it into configs/models (target example_models).
//
// Exit status: 0 on success, 1 when writing fails, 2 for bad arguments.
#include <iostream>
#include <string>

#include "absl/strings/str_replace.h"
#include "graph/example_models.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cerr << "usage: make-example-models OUTDIR\n"
                 "Writes OUTDIR/digits_mlp/1/ and OUTDIR/digits_cnn/1/ (saved models with\n"
                 "Glorot-uniform initial weights from a fixed seed).\n";
    return argc == 2 ? 0 : 2;
  }
  const absl::Status status = gradserve::WriteExampleModels(argv[1]);
  if (!status.ok()) {
    std::cerr << "make-example-models: error: "
              << absl::StrReplaceAll(status.message(), {{"\n", " "}}) << "\n";
    return 1;
  }
  std::cout << "make-example-models: wrote digits_mlp/1 and digits_cnn/1 under " << argv[1] << "\n";
  return 0;
}
