// Every CUDA and cuBLAS call is checked; a failure throws Error naming the call, file and line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "runtime/error.h"

namespace kvcomp {

inline void cuda_check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) fail(file, ":", line, ": ", call, " failed: ", cudaGetErrorString(e));
}

inline void cublas_check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail(file, ":", line, ": ", call, " failed: ", cublasGetStatusString(s));
}

}  // namespace kvcomp

#define KVCOMP_CUDA_CHECK(call) ::kvcomp::cuda_check((call), #call, __FILE__, __LINE__)
#define KVCOMP_CUBLAS_CHECK(call) ::kvcomp::cublas_check((call), #call, __FILE__, __LINE__)
// After every kernel launch.
#define KVCOMP_LAUNCH_CHECK() \
  ::kvcomp::cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
