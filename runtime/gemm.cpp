#include "runtime/gemm.h"

#include <algorithm>

#include "runtime/cuda_check.h"

namespace kvcomp {

cudaDataType cuda_type(DType t) {
  switch (t) {
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

void interleave_gate_up(const uint16_t* gate, const uint16_t* up, int inter, int in,
                        uint16_t* out) {
  check(inter % kGateUpGroup == 0, "interleave_gate_up: inter ", inter, " is not a multiple of ",
        kGateUpGroup);
  for (int j = 0; j < inter; ++j) {
    const int q = j / kGateUpGroup, r = j % kGateUpGroup;
    std::copy_n(gate + size_t(j) * in, in, out + (size_t(q) * 2 * kGateUpGroup + r) * in);
    std::copy_n(up + size_t(j) * in, in,
                out + (size_t(q) * 2 * kGateUpGroup + kGateUpGroup + r) * in);
  }
}

void linear_cuda(const CudaContext& ctx, DType t, const void* x, const void* w, int n, int in,
                 int out, float* y, float beta) {
  if (n == 0) return;
  if (gemv_applies(t, n, in)) return gemv_cuda(ctx, t, x, w, n, in, out, y, beta);
  const float alpha = 1.0f;
  // Column-major view: y^T [out, n] = w^T... i.e. C = op(A) B with A = w as [in, out] (ld in),
  // transposed, and B = x as [in, n] (ld in).
  KVCOMP_CUBLAS_CHECK(cublasGemmEx(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, w,
                                   cuda_type(t), in, x, cuda_type(t), in, &beta, y, CUDA_R_32F, out,
                                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace kvcomp
