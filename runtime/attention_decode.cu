// The dense fp16 cache's decode attention: attention_decode.cuh's kernel over rows only.
#include "runtime/attention_decode.cuh"

namespace kvcomp {

size_t decode_attention_scratch_bytes(const DecodeAttentionParams& p, int max_len) {
  return decode_attn::scratch_for(p, (max_len + decode_attn::kMinSplit - 1) /
                                         decode_attn::kMinSplit);
}

void decode_attention_cuda(const CudaContext& ctx, const DecodeAttentionParams& p, int max_len,
                           DType act, void* scratch, size_t scratch_bytes, int split_tokens) {
  if (p.n_chunks == 0 || max_len == 0) return;
  decode_attn::dispatch_shape(p, "decode attention", [&](auto hd, auto g) {
    constexpr int HD = decltype(hd)::value, G = decltype(g)::value;
    using decode_attn::NoBlocks;
    if constexpr (G <= 4)
      if (decode_attn::min_blocks_wanted() == 3)
        return decode_attn::launch<HD, G, NoBlocks, 3>(ctx, p, max_len, act, scratch,
                                                       scratch_bytes, split_tokens);
    decode_attn::launch<HD, G, NoBlocks, 2>(ctx, p, max_len, act, scratch, scratch_bytes,
                                            split_tokens);
  });
}

}  // namespace kvcomp
