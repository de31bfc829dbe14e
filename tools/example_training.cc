#include "tools/example_training.h"

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve::tools {

constexpr uint64_t kSplitSeed = 20240229;

absl::StatusOr<ExampleRecipe> RecipeFor(const std::string& model, bool full) {
  ExampleRecipe r;
  r.optimizer.kind = OptimizerKind::kAdam;
  r.loop.seed = kSplitSeed;
  r.loop.train_accuracy = false;
  if (model == "digits_mlp" || model == "digits_cnn") {
    r.optimizer.learning_rate = 0.003;
    r.loop.batch_size = 32;
    r.loop.epochs = 30;
  } else if (model == "fashion_mlp") {
    r.optimizer.learning_rate = 0.001;
    r.loop.batch_size = 64;
    r.loop.epochs = full ? 12 : 2;
  } else if (model == "fashion_cnn") {
    r.optimizer.learning_rate = 0.001;
    r.loop.batch_size = 64;
    r.loop.epochs = full ? 8 : 1;
    r.train_limit = full ? 0 : 12000;
  } else {
    return absl::NotFoundError(absl::StrCat("no training recipe for model '", model, "'"));
  }
  return r;
}

absl::StatusOr<std::pair<Dataset, Dataset>> ExampleData(const std::string& model,
                                                        const ExampleTrainingOptions& options) {
  if (model.rfind("digits_", 0) == 0) {
    GS_ASSIGN_OR_RETURN(Dataset all, ReadCsvDataset(options.digits_csv, 1.0f / 16));
    return ShuffleSplit(all, 0.8, kSplitSeed);
  }
  const std::string& d = options.fashion_dir;
  GS_ASSIGN_OR_RETURN(Dataset train, ReadIdxDataset(d + "/train-images-idx3-ubyte.gz",
                                                    d + "/train-labels-idx1-ubyte.gz"));
  GS_ASSIGN_OR_RETURN(Dataset test, ReadIdxDataset(d + "/t10k-images-idx3-ubyte.gz",
                                                   d + "/t10k-labels-idx1-ubyte.gz"));
  return std::make_pair(std::move(train), std::move(test));
}

absl::StatusOr<TrainReport> TrainExampleModel(const std::string& model, const std::string& init_dir,
                                              const std::string& out_dir,
                                              const ExampleTrainingOptions& options,
                                              std::ostream& log) {
  GS_ASSIGN_OR_RETURN(ExampleRecipe recipe, RecipeFor(model, options.full));
  GS_ASSIGN_OR_RETURN(auto data, ExampleData(model, options));
  Dataset& train = data.first;
  if (recipe.train_limit > 0) train = Take(train, 0, recipe.train_limit);
  GS_ASSIGN_OR_RETURN(auto trainer,
                      Trainer::Load(init_dir, recipe.optimizer,
                                    {.intra_op_threads = options.intra_op_threads,
                                     .inter_op_threads = options.inter_op_threads}));
  log << model << ": " << train.size() << " training examples, " << data.second.size()
      << " test examples, " << OptimizerKindName(recipe.optimizer.kind) << " learning rate "
      << recipe.optimizer.learning_rate << ", batch " << recipe.loop.batch_size << ", "
      << recipe.loop.epochs << " epochs\n";
  GS_ASSIGN_OR_RETURN(TrainReport report,
                      TrainEpochs(*trainer, train, data.second, recipe.loop, log));
  GS_RETURN_IF_ERROR(trainer->Save(out_dir));
  return report;
}

}  // namespace gradserve::tools
