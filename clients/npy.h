// NumPy .npy files as client Tensors, the client's own small reader and writer
// (clients link no engine library, so they do not reuse graph/npy.h).
//
// Reading: format versions 1.0, 2.0 and 3.0, C order, little-endian (or
// byte-order-free one-byte types), and the dtypes that have a protocol
// datatype:
//   |b1 BOOL  |u1 UINT8  <u2 UINT16  <u4 UINT32  <u8 UINT64
//   |i1 INT8  <i2 INT16  <i4 INT32   <i8 INT64
//   <f2 FP16  <f4 FP32   <f8 FP64
// Anything else (fortran_order=True, '>f4', strings, objects, a data section
// of the wrong length) is InvalidArgument saying what was found.
//
// Writing: version 1.0, the header padded so the data starts at a multiple of
// 64 bytes as numpy.save does. BF16 has no NumPy dtype and is written as '<f4'
// (widening is exact); BYTES is InvalidArgument.
//
// Thread-safe (no state).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clients/client.h"

namespace gradserve::client {

// The tensor in the bytes of a whole .npy file; its name is `name`.
absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes, const std::string& name = "");
// The bytes of a .npy file holding `tensor`.
absl::StatusOr<std::string> SerializeNpy(const Tensor& tensor);

// File forms; errors name the path (a missing file is NotFound).
absl::StatusOr<Tensor> ReadNpy(const std::string& path, const std::string& name = "");
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace gradserve::client
