// The fused KVComp attention kernel with the fixed-length fast paths (kvcomp-fixed), in its own
// translation unit so that it compiles in parallel with the Huffman variants.
#include "compress/attention_kvcomp.cuh"

namespace kvcomp {
namespace kvcomp_attn {

void run_fixed(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len, DType act,
               void* scratch, size_t scratch_bytes, int split_tokens, bool mma) {
  // One shared decode table: only the rare slow paths look codes up.
  if (mma && KvcompMma<1, 4>::mma_params_ok(p))
    return run_policy<KvcompMma<1, 4>>(ctx, p, max_len, act, scratch, scratch_bytes, split_tokens);
  run_policy<KvcompBlocks<1, 4, true>>(ctx, p, max_len, act, scratch, scratch_bytes, split_tokens);
}

}  // namespace kvcomp_attn
}  // namespace kvcomp
