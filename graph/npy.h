// NumPy .npy files, the tensor exchange format of the tools and tests.
//
// Reading accepts format versions 1.0, 2.0 and 3.0, C order, and these dtypes:
//   '<f2' half   '<f4' float   '<f8' double   '|i1' int8   '|u1' uint8
//   '<i2' int16  '<i4' int32   '<i8' int64    '|b1' bool
// (one-byte types may carry any byte-order mark). Everything else is an
// InvalidArgument error that says what was found: fortran_order=True, big-endian
// ('>f4'), structured or object dtypes, other types ('<u4', '<c8', ...), a
// malformed header, or a data section of the wrong length (truncated files,
// trailing bytes). Bool bytes other than 0 read as true, as NumPy prints them.
//
// Writing produces version 1.0 (2.0 for a header over 64 KiB), the header padded
// so the data starts at a multiple of 64 bytes, as numpy.save does. bfloat16 has
// no NumPy dtype: it is written as '<f4' (widening is exact), so it reads back as
// float. Tensors must be host-accessible numeric or bool tensors.
//
// All functions are thread-safe (no shared state).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/tensor.h"

namespace gradserve {

// Parses the bytes of a whole .npy file.
absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes);
// The bytes of a .npy file holding `tensor`.
absl::StatusOr<std::string> SerializeNpy(const Tensor& tensor);

// File forms; errors name the path. WriteNpy replaces `path` atomically.
absl::StatusOr<Tensor> ReadNpy(const std::string& path);
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace gradserve
