#include "runtime/gemm.h"

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
