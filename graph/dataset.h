// Labelled data sets for training and evaluation, read from files:
//
//   CSV      one example per line, numbers separated by commas, the label in
//            the last column (the UCI digits layout); ".gz" files are read
//            through zlib. Lines starting with '#' and empty lines are skipped.
//   IDX      LeCun's MNIST format (images idx3-ubyte + labels idx1-ubyte,
//            optionally gzipped), as Fashion-MNIST ships it.
//   NPY      a features .npy and a labels .npy (graph/npy.h).
//
// Features become float32 scaled by `scale` (digits: 1/16, IDX images: 1/255),
// shaped [N, ...] (CSV: [N, columns - 1]; IDX: [N, rows, cols]; NPY: the
// file's shape); labels become int64 class indices [N]. A CSV label may be
// written "3" or "3.0"; "3.5" and "-1" are rejected. A file with no examples
// is InvalidArgument.
//
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/tensor.h"

namespace gradserve {

struct Dataset {
  Tensor features;  // float32 [N, ...]
  Tensor labels;    // int64 [N]
  int64_t size() const { return labels.initialized() ? labels.shape().dim(0) : 0; }
};

// Errors: the system's (NotFound, ... with the path) when a file cannot be
// read; DataLoss for a corrupt or truncated gzip stream; InvalidArgument
// naming the file and line (CSV) or field (IDX/NPY) for malformed content: a
// non-numeric or non-finite value, rows of different lengths, a label that is
// not a non-negative integer, a bad IDX magic or dimension, truncated data, or
// features and labels of different lengths.
absl::StatusOr<Dataset> ReadCsvDataset(const std::string& path, float scale = 1.0f);
absl::StatusOr<Dataset> ReadIdxDataset(const std::string& images_path,
                                       const std::string& labels_path, float scale = 1.0f / 255);
// features .npy of any numeric dtype (converted to float32, times scale);
// labels .npy of an integer dtype, one dimension.
absl::StatusOr<Dataset> ReadNpyDataset(const std::string& features_path,
                                       const std::string& labels_path, float scale = 1.0f);

// Reshapes every example's features to `example_shape` (e.g. {8, 8, 1} for
// digits_cnn), sharing the buffer; InvalidArgument when the element counts
// differ or the shape has an unknown dimension.
absl::StatusOr<Dataset> ReshapeExamples(const Dataset& data, const Shape& example_shape);

// Examples [begin, end) (a copy; features and labels stay aligned). The range
// is clamped to [0, size()], so Take(d, 0, 100) of a smaller set is all of it.
Dataset Take(const Dataset& data, int64_t begin, int64_t end);
// The examples at `order` (a permutation or any list of indices in
// [0, size()); repeats allowed), copied.
Dataset Gather(const Dataset& data, const std::vector<int64_t>& order);
// A seeded shuffle (std::mt19937_64, Fisher-Yates; the same on every platform)
// split into (first train_fraction, rest): round(train_fraction * N) examples
// (train_fraction clamped to [0, 1]) and the others, disjoint, both copies.
std::pair<Dataset, Dataset> ShuffleSplit(const Dataset& data, double train_fraction, uint64_t seed);

// The number of classes: max label + 1 (0 for an empty set).
int64_t NumClasses(const Dataset& data);

}  // namespace gradserve
