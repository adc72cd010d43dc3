// The dense fp16 cache's decode attention: attention_decode.cuh's kernel over rows only.
#include "runtime/attention_decode.cuh"

namespace kvcomp {

bool decode_attention_supported(int head_dim, int n_heads, int n_kv_heads) {
  const int g = n_kv_heads > 0 && n_heads % n_kv_heads == 0 ? n_heads / n_kv_heads : 0;
  return (head_dim == 64 || head_dim == 128) && (g == 1 || g == 2 || g == 4 || g == 8);
}

size_t decode_attention_scratch_bytes(const DecodeAttentionParams& p, int max_len) {
  return decode_attn::scratch_for(p,
                                  (max_len + decode_attn::kMinSplit - 1) / decode_attn::kMinSplit);
}

void decode_attention_cuda(const CudaContext& ctx, const DecodeAttentionParams& p, int max_len,
                           DType act, void* scratch, size_t scratch_bytes, int split_tokens) {
  if (p.n_chunks == 0 || max_len == 0) return;
  decode_attn::dispatch_shape(p, "decode attention", [&](auto hd, auto g) {
    decode_attn::launch<decltype(hd)::value, decltype(g)::value, decode_attn::NoBlocks>(
        ctx, p, max_len, act, scratch, scratch_bytes, split_tokens);
  });
}

}  // namespace kvcomp
