// cuBLAS, loaded with dlopen on first use instead of linked.
//
// Why: libcublasLt (which libcublas needs) has ~94 KB of thread-local storage.
// A library the program links is loaded at start-up, and glibc then puts its
// TLS in the static TLS block at the top of every thread's stack; civetweb
// (our HTTP server and prometheus-cpp's) starts its workers with small stacks,
// and with that block in them thread creation fails ("Cannot create threads").
// A library loaded by dlopen gets its TLS allocated on demand instead, so the
// server links none of cuBLAS and defines here, with cuBLAS's own names and
// signatures, the functions our code calls; each forwards to the symbol of
// libcublas.so.13, resolved once. (TensorFlow's stream executor loads cuBLAS
// the same way.) Without the library every call returns
// CUBLAS_STATUS_NOT_INITIALIZED, and CublasLoadError() says why.
#include <cublas_v2.h>
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "runtime/cuda/cuda_device.h"

namespace gradserve {
namespace {

#define GS_STR2(x) #x
#define GS_STR(x) GS_STR2(x)
// The major version of the toolkit we compiled against (CUBLAS_VER_MAJOR).
constexpr const char* kLibrary = "libcublas.so." GS_STR(CUBLAS_VER_MAJOR);

struct Library {
  void* handle = nullptr;
  std::string error;
};

const Library& Load() {
  static const Library* lib = [] {
    auto* l = new Library;
    l->handle = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (l->handle == nullptr) {
      const char* why = dlerror();
      l->error = std::string("cannot load ") + kLibrary + ": " + (why ? why : "unknown error");
    }
    return l;
  }();
  return *lib;
}

// The library's `name`, cast to the type of our declaration; nullptr when the
// library or the symbol is missing.
template <typename Fn>
Fn Symbol(const char* name) {
  const Library& lib = Load();
  if (lib.handle == nullptr) return nullptr;
  return reinterpret_cast<Fn>(dlsym(lib.handle, name));
}

}  // namespace

std::string CublasLoadError() {
  const Library& lib = Load();
  if (lib.handle == nullptr) return lib.error;
  if (dlsym(lib.handle, "cublasGemmEx") == nullptr) {
    return std::string(kLibrary) + " lacks cublasGemmEx";
  }
  return "";
}

}  // namespace gradserve

// Each definition: resolve once (a function-local static), then forward. The
// signature is written once, as in cublas_api.h (whose C++ overloads make
// decltype(&name) ambiguous).
#define GS_CUBLAS_FORWARD(ret, name, params, args, missing) \
  ret name params {                                         \
    using Fn = ret(*) params;                               \
    static const Fn fn = gradserve::Symbol<Fn>(#name);      \
    if (fn == nullptr) return missing;                      \
    return fn args;                                         \
  }

extern "C" {

GS_CUBLAS_FORWARD(cublasStatus_t, cublasCreate_v2, (cublasHandle_t * handle), (handle),
                  CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(cublasStatus_t, cublasDestroy_v2, (cublasHandle_t handle), (handle),
                  CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(cublasStatus_t, cublasSetStream_v2, (cublasHandle_t handle, cudaStream_t stream),
                  (handle, stream), CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(cublasStatus_t, cublasSetWorkspace_v2,
                  (cublasHandle_t handle, void* workspace, size_t bytes),
                  (handle, workspace, bytes), CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(cublasStatus_t, cublasSetMathMode, (cublasHandle_t handle, cublasMath_t mode),
                  (handle, mode), CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(cublasStatus_t, cublasSetPointerMode_v2,
                  (cublasHandle_t handle, cublasPointerMode_t mode), (handle, mode),
                  CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(const char*, cublasGetStatusString, (cublasStatus_t status), (status),
                  "cuBLAS is not loaded")

GS_CUBLAS_FORWARD(const char*, cublasGetStatusName, (cublasStatus_t status), (status),
                  "CUBLAS_STATUS_NOT_INITIALIZED")

GS_CUBLAS_FORWARD(cublasStatus_t, cublasSgemm_v2,
                  (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                   int n, int k, const float* alpha, const float* A, int lda, const float* B,
                   int ldb, const float* beta, float* C, int ldc),
                  (handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc),
                  CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(cublasStatus_t, cublasSgemmStridedBatched,
                  (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                   int n, int k, const float* alpha, const float* A, int lda, long long int strideA,
                   const float* B, int ldb, long long int strideB, const float* beta, float* C,
                   int ldc, long long int strideC, int batchCount),
                  (handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta,
                   C, ldc, strideC, batchCount),
                  CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(cublasStatus_t, cublasGemmEx,
                  (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                   int n, int k, const void* alpha, const void* A, cudaDataType Atype, int lda,
                   const void* B, cudaDataType Btype, int ldb, const void* beta, void* C,
                   cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                   cublasGemmAlgo_t algo),
                  (handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C,
                   Ctype, ldc, computeType, algo),
                  CUBLAS_STATUS_NOT_INITIALIZED)

GS_CUBLAS_FORWARD(cublasStatus_t, cublasGemmStridedBatchedEx,
                  (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                   int n, int k, const void* alpha, const void* A, cudaDataType Atype, int lda,
                   long long int strideA, const void* B, cudaDataType Btype, int ldb,
                   long long int strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
                   long long int strideC, int batchCount, cublasComputeType_t computeType,
                   cublasGemmAlgo_t algo),
                  (handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb,
                   strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo),
                  CUBLAS_STATUS_NOT_INITIALIZED)

}  // extern "C"
