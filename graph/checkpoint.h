// Checkpoints: named tensors (variable values) and a training step in one file.
//
// Note [Checkpoint layout]: all integers little-endian.
//
//   offset 0        "GSCKPT01"                          8-byte header magic
//   64-aligned      tensor 0's bytes (row-major)        one region per tensor, in the
//   64-aligned      tensor 1's bytes ...                order given to WriteCheckpoint
//   after the data  CheckpointIndex (proto/checkpoint.proto, binary): per tensor its
//                   name, dtype, shape, offset, size and zlib crc32; and the step
//   last 28 bytes   trailer: index offset u64, index size u64, crc32 of the index u32,
//                   "GSCKPT01"
//
// Gaps (alignment padding) are zero. Data starts on 64-byte boundaries so a
// reader may map the file and use tensors in place. The index sits at the end so
// the writer streams tensors without knowing their offsets in advance.
//
// Every byte is checked on read: the magics, the trailer against the file size
// (truncation or appended bytes), the index crc, each entry's dtype, shape, size
// and bounds, each tensor's crc32, and zero padding. Any failure is DataLoss and
// names the file and the part (trailer, index, the tensor's name, padding at an
// offset). The file is written atomically (see Note [Atomic file replacement] in
// graph/file_io.h): a crash leaves the previous checkpoint in place.
//
// Thread-safe (no shared state); concurrent writers to one path each produce a
// complete file and the last rename wins.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/tensor.h"
#include "proto/checkpoint.pb.h"

namespace gradserve {

inline constexpr absl::string_view kCheckpointMagic = "GSCKPT01";
inline constexpr uint64_t kCheckpointAlignment = 64;
inline constexpr uint64_t kCheckpointTrailerSize = 8 + 8 + 4 + 8;

struct Checkpoint {
  int64_t step = 0;
  std::map<std::string, Tensor> tensors;  // host tensors, by name
};

// Writes `tensors` (unique non-empty names; host-accessible numeric or bool
// tensors) and `step` to `path`, replacing it atomically. InvalidArgument for
// bad tensors; the system's error (with the path) for I/O failures, in which
// case any previous file at `path` is untouched.
absl::Status WriteCheckpoint(const std::string& path,
                             const std::vector<std::pair<std::string, Tensor>>& tensors,
                             int64_t step);

// Reads and fully verifies a checkpoint. NotFound (etc.) when it cannot be
// opened; DataLoss when it is truncated or corrupt.
absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path);

// Verifies only the trailer and the index (not the tensor data): cheap, for
// listing what a checkpoint holds.
absl::StatusOr<CheckpointIndex> ReadCheckpointIndex(const std::string& path);

}  // namespace gradserve
