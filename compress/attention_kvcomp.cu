// Fused decode attention over the KVComp cache: the launcher (the kernel and its KVComp policy
// are in compress/attention_kvcomp.cuh, which says how blocks are decoded).
#include "compress/attention_kvcomp.cuh"

#include <algorithm>

namespace kvcomp {

size_t kvcomp_attention_scratch_bytes(const KvcompAttentionParams& p, int max_len) {
  return decode_attention_scratch_bytes(p, max_len);  // tiles of >= 128 tokens: the same bound
}

void kvcomp_attention_cuda(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len,
                           DType act, void* scratch, size_t scratch_bytes,
                           const KvcompAttentionTuning& tuning) {
  if (p.n_chunks == 0 || max_len == 0) return;
  check(p.k_bits >= 1 && p.k_bits <= kMaxCodeLen && p.v_bits >= 1 && p.v_bits <= kMaxCodeLen,
        "kvcomp attention: decode tables of 1..12 bits expected, got ", p.k_bits, " and ",
        p.v_bits);
  check(p.block_k >= 16 && p.block_v >= 16 && (p.block_k & (p.block_k - 1)) == 0 &&
            (p.block_v & (p.block_v - 1)) == 0 && p.block_v <= 256,
        "kvcomp attention: blocks of 16..256 tokens (powers of two) expected, got ", p.block_k,
        " and ", p.block_v);
  const int bits = std::max(p.k_bits, p.v_bits);
  const int split = tuning.split_tokens;
  const bool fixed = (p.k_fixed_bits >= 2 || p.v_fixed_bits >= 2) && tuning.fixed_paths;
  using namespace kvcomp_attn;
  if (bits <= 8 && fixed) return run_fixed(ctx, p, max_len, act, scratch, scratch_bytes, split, tuning.mma_tiles);
  if (bits <= 8 && tuning.replicas != 1)
    return run_policy<KvcompBlocks<32, 4>>(ctx, p, max_len, act, scratch, scratch_bytes, split);
  if (bits <= 8)
    return run_policy<KvcompBlocks<1, 4>>(ctx, p, max_len, act, scratch, scratch_bytes, split);
  run_policy<KvcompBlocks<1, 2>>(ctx, p, max_len, act, scratch, scratch_bytes, split);
}

}  // namespace kvcomp
