#include "runtime/device.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace gradserve {

absl::StatusOr<std::unique_ptr<CpuDevice>> CpuDevice::Create(const Options& options) {
  if (options.intra_op_threads < 0) {
    return absl::InvalidArgumentError("intra_op_threads must be >= 0");
  }
  int threads = options.intra_op_threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  return std::unique_ptr<CpuDevice>(new CpuDevice(options.name, threads));
}

CpuDevice::CpuDevice(std::string name, int threads)
    : Device(std::move(name), kDeviceCpu), threads_(threads) {
  // With one thread Eigen runs expressions on the caller (a pool of 1 would add a
  // hand-off per op); with more, the caller works alongside threads - 1 workers.
  pool_ = std::make_unique<Eigen::ThreadPool>(std::max(1, threads - 1));
  eigen_device_ = std::make_unique<Eigen::ThreadPoolDevice>(pool_.get(), threads);
}

CpuDevice::~CpuDevice() = default;

absl::Status Device::BeginGraphCapture() {
  return absl::UnimplementedError(absl::StrCat(name(), " has no device graphs"));
}

absl::StatusOr<std::unique_ptr<DeviceGraph>> Device::EndGraphCapture() {
  return absl::UnimplementedError(absl::StrCat(name(), " has no device graphs"));
}

absl::StatusOr<MatMulPrecision> ParseMatMulPrecision(absl::string_view name) {
  if (name == "float32") return MatMulPrecision::kFloat32;
  if (name == "tf32") return MatMulPrecision::kTf32;
  if (name == "bfloat16") return MatMulPrecision::kBFloat16;
  if (name == "float16") return MatMulPrecision::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown matmul precision '", name, "' (float32, tf32, bfloat16 or float16)"));
}

}  // namespace gradserve
