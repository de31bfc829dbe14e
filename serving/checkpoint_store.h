// CheckpointStore: the training checkpoints of one served model version, in
// one directory, one file each (graph/checkpoint.h: per-tensor crc32, written
// to a temporary name, fsync'd, renamed, directory fsync'd):
//
//   <dir>/ckpt-<generation, 12 digits>.gsckpt
//
// Each holds the model's variables, the optimizer state (global_step
// included) and the weights generation (tensor kGenerationTensor). Files are
// ordered by generation, which only grows (a rollback publishes a new one), so
// the newest file is the newest state even after a rollback rewound the step.
//
// Thread safety: not synchronized; the online trainer serializes its calls.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "graph/checkpoint.h"

namespace gradserve::serving {

inline constexpr char kGenerationTensor[] = "gradserve/weights_generation";

struct CheckpointEntry {
  std::string name;  // file name, e.g. "ckpt-000000000042.gsckpt"
  std::string path;
  int64_t generation = 0;
  int64_t step = 0;  // from the file's index; -1 when the index is unreadable
  absl::Time time;   // modification time
};

class CheckpointStore {
 public:
  // `keep`: files kept after each Write (the newest), >= 1.
  CheckpointStore(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {}

  // Creates the directory and removes the temporary files an interrupted
  // write left behind.
  absl::Status Init() const;

  // The checkpoints on disk, newest (highest generation) first. Only the file
  // names and indexes are read, not the tensors.
  std::vector<CheckpointEntry> List() const;

  // Writes `tensors` plus the generation tensor, then deletes all but the
  // newest `keep` files. Returns the new entry.
  absl::StatusOr<CheckpointEntry> Write(std::vector<std::pair<std::string, Tensor>> tensors,
                                        int64_t step, int64_t generation) const;

  // Reads and verifies the named checkpoint: NotFound when there is none of
  // that name (with the names there are), DataLoss when it is corrupt.
  absl::StatusOr<std::pair<CheckpointEntry, Checkpoint>> Read(const std::string& name) const;

  // The newest checkpoint that reads back intact and that `accept` takes
  // (e.g. it matches the model's variables); each one skipped is reported to
  // `skipped` with the reason. NotFound when none is usable.
  absl::StatusOr<std::pair<CheckpointEntry, Checkpoint>> ReadNewestValid(
      const std::function<absl::Status(const Checkpoint&)>& accept,
      const std::function<void(const CheckpointEntry&, const absl::Status&)>& skipped) const;

  const std::string& dir() const { return dir_; }

 private:
  absl::StatusOr<std::pair<CheckpointEntry, Checkpoint>> ReadEntry(
      const CheckpointEntry& entry) const;

  const std::string dir_;
  const int keep_;
};

}  // namespace gradserve::serving
