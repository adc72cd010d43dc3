// K/V with real statistics for the benchmarks: a model's own K (after RoPE) and V over its
// held-out text, then laid out as a benchmark's n_heads heads of any number of tokens. Shared by
// kvcomp_bench_attention and kvcomp_bench_codec, so that both time their kernels on the same data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "models/engine.h"

namespace kvcomp {

// One stream per (layer, KV head), index layer * n_kv_heads + head, each the concatenation of
// the model's windows over the held-out text: [tokens][head_dim] fp16 bits. Values as the fp16
// cache holds them (the CPU engine's values are rounded to fp16 the same way).
struct RealKv {
  int n_layers = 0, n_kv_heads = 0, head_dim = 0;
  int64_t tokens = 0;                       // per stream
  std::vector<std::vector<uint16_t>> k, v;  // [n_layers * n_kv_heads] -> [tokens][head_dim]
  int n_streams() const { return int(k.size()); }
};

// Runs the model in model_dir over model_dir/heldout.txt, cut into consecutive windows of
// `window` tokens (at most max_windows of them, 16 sequences per forward), with a dense fp16 cache
// on `device`, and reads back every layer's cache. Throws Error naming the file when the text is
// missing or shorter than one window.
RealKv load_real_kv(const std::filesystem::path& model_dir, Device device, int window = 1024,
                    int max_windows = 1 << 20);

// Head `head` of a benchmark's layout, `tokens` tokens long: stream head % n_streams, read from
// token (head / n_streams) * kRealKvHeadOffset on and wrapping around the stream, so that heads
// sharing a stream see different text. out: [tokens][head_dim].
constexpr int64_t kRealKvHeadOffset = 7919 * 1024;
enum class RealKvPart { kK, kV };
void real_kv_head(const RealKv& kv, RealKvPart part, int head, int64_t tokens, float* out);
void real_kv_head(const RealKv& kv, RealKvPart part, int head, int64_t tokens,
                  uint16_t* out);  // fp16 bits

}  // namespace kvcomp
