#include "tools/real_kv.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

#include "runtime/error.h"
#include "runtime/half.h"
#include "runtime/tokenizer.h"

namespace kvcomp {

RealKv load_real_kv(const std::filesystem::path& model_dir, Device device, int window,
                    int max_windows) {
  check(window >= 1 && max_windows >= 1, "load_real_kv: window ", window, " and max_windows ",
        max_windows, " must be >= 1");
  auto engine = make_engine(model_dir, device);
  const LlamaConfig& cfg = engine->config();
  const Tokenizer tok = load_tokenizer(model_dir, cfg.bos_token_id);
  const std::filesystem::path text_path = model_dir / "heldout.txt";
  std::ifstream in(text_path, std::ios::binary);
  check(bool(in), text_path.string(), ": cannot open the held-out text the K/V are taken from");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::vector<int> ids = tok.encode(text);
  const int windows = int(std::min<size_t>(size_t(max_windows), ids.size() / size_t(window)));
  check(windows >= 1, text_path.string(), ": ", ids.size(), " tokens, fewer than one window of ",
        window);

  RealKv kv;
  kv.n_layers = cfg.n_layers;
  kv.n_kv_heads = cfg.n_kv_heads;
  kv.head_dim = cfg.head_dim;
  kv.tokens = int64_t(windows) * window;
  const int KV = cfg.n_kv_heads, hd = cfg.head_dim, L = cfg.n_layers;
  const size_t stream_values = size_t(kv.tokens) * hd;
  kv.k.assign(size_t(L) * KV, std::vector<uint16_t>(stream_values));
  kv.v.assign(size_t(L) * KV, std::vector<uint16_t>(stream_values));
  constexpr int kBatch = 16;  // sequences per forward
  std::vector<float> logits, k, v;
  for (int w0 = 0; w0 < windows; w0 += kBatch) {
    const int nb = std::min(kBatch, windows - w0);
    engine->start(nb, window, KvOptions{});  // dense fp16 cache
    std::vector<SeqChunk> chunks;
    for (int b = 0; b < nb; ++b) {
      chunks.push_back({b, std::vector<int>(ids.begin() + int64_t(w0 + b) * window,
                                            ids.begin() + int64_t(w0 + b + 1) * window)});
    }
    engine->forward(chunks, false, logits);
    for (int b = 0; b < nb; ++b) {
      for (int l = 0; l < L; ++l) {
        check(engine->read_kv(l, b, k, v), "load_real_kv: the ", engine->device_name(),
              " engine's cache cannot be read back");
        // k, v: [window, KV, hd] -> stream (l, h) at token (w0 + b) * window.
        for (int h = 0; h < KV; ++h) {
          uint16_t* ko = kv.k[size_t(l) * KV + h].data() + size_t(w0 + b) * window * hd;
          uint16_t* vo = kv.v[size_t(l) * KV + h].data() + size_t(w0 + b) * window * hd;
          for (int t = 0; t < window; ++t) {
            const size_t src = (size_t(t) * KV + h) * hd;
            for (int c = 0; c < hd; ++c) {
              ko[size_t(t) * hd + c] = float_to_fp16(k[src + c]);
              vo[size_t(t) * hd + c] = float_to_fp16(v[src + c]);
            }
          }
        }
      }
    }
  }
  return kv;
}

namespace {

template <typename T, typename Convert>
void copy_head(const RealKv& kv, RealKvPart part, int head, int64_t tokens, T* out,
               Convert convert) {
  check(kv.n_streams() > 0 && kv.tokens > 0, "real_kv_head: no K/V streams loaded");
  check(head >= 0 && tokens >= 0, "real_kv_head: head ", head, " and tokens ", tokens,
        " must be >= 0");
  const auto& streams = part == RealKvPart::kK ? kv.k : kv.v;
  const std::vector<uint16_t>& s = streams[size_t(head % kv.n_streams())];
  const size_t hd = size_t(kv.head_dim);
  const int64_t off = int64_t(head / kv.n_streams()) * kRealKvHeadOffset;
  for (int64_t t = 0; t < tokens; ++t) {
    const size_t src = size_t((off + t) % kv.tokens);
    for (size_t c = 0; c < hd; ++c) out[size_t(t) * hd + c] = convert(s[src * hd + c]);
  }
}

}  // namespace

void real_kv_head(const RealKv& kv, RealKvPart part, int head, int64_t tokens, float* out) {
  copy_head(kv, part, head, tokens, out, [](uint16_t x) { return fp16_to_float(x); });
}

void real_kv_head(const RealKv& kv, RealKvPart part, int head, int64_t tokens, uint16_t* out) {
  copy_head(kv, part, head, tokens, out, [](uint16_t x) { return x; });
}

}  // namespace kvcomp
