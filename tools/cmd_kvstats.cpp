// kvcomp kvstats: how KVComp compresses a model's own K and V. Runs windows of a text through
// the model with a dense fp16 cache, reads the cache back (Engine::read_kv), and compresses
// every complete block of every layer exactly as the compressed cache would (KvCompCacheRef with
// a recent window of 0: codebooks from all complete blocks, then every block encoded and
// decoded). Reports bits per value (metadata and codebooks included), the entropy of the coded
// symbols, the Huffman + metadata overhead over it, the ratio to fp16, the worst error against
// the bound d/2, the raw-fallback share and where the bytes go; per layer and in total, and with
// --eb-list over a range of error bounds; --v-params32 turns off the compact V token params.
// On the CPU it also reports, per layer, the relative error of the attention output that the
// decoded cache gives against the fp16 cache's, with the model's own queries (every 4th
// position of each window, every query head): where the error that reaches the model comes from.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "compress/kv_cache_kvcomp_ref.h"
#include "models/engine.h"
#include "models/perplexity.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "runtime/ops_ref.h"
#include "runtime/tokenizer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace kvcomp::cli {

namespace {

// Figures of one (layer, K|V) that the byte accounting does not hold.
struct PartFigures {
  double max_err = 0;       // worst |x - x'| / (d/2) over the Huffman-coded values
  double entropy_bits = 0;  // sum over codebooks of the entropy of the symbols each one coded
  uint64_t symbols = 0;     // symbols coded
  PartFigures& operator+=(const PartFigures& o) {
    max_err = std::max(max_err, o.max_err);
    entropy_bits += o.entropy_bits;
    symbols += o.symbols;
    return *this;
  }
  // Bits per symbol: what no code with these codebooks' granularity (one per layer or per head,
  // per window) can beat. The entropy of the pooled histogram of several codebooks would be
  // higher than what the codebooks achieve, so it is taken per codebook.
  double entropy() const { return symbols == 0 ? 0.0 : entropy_bits / double(symbols); }
};

// One compression setting over every window, per layer.
struct Setting {
  KvOptions kv;
  std::vector<KvStats> layers;      // [n_layers]
  std::vector<PartFigures> fig[2];  // [K|V][n_layers]
  // Attention output: sum of ||o' - o||^2 and of ||o||^2 over the sampled (position, head)s.
  std::vector<double> att_num, att_den;  // [n_layers]; empty without queries
  double att_err(int l) const {
    return att_den.empty() || att_den[l] == 0 ? NAN : std::sqrt(att_num[l] / att_den[l]);
  }
  double att_err_total() const {
    double n = 0, d = 0;
    for (size_t l = 0; l < att_den.size(); ++l) n += att_num[l], d += att_den[l];
    return d == 0 ? NAN : std::sqrt(n / d);
  }
  KvStats total() const {
    KvStats t;
    for (const auto& l : layers) t += l;
    return t;
  }
  PartFigures total_fig(KvPart p) const {
    PartFigures t;
    for (const auto& f : fig[int(p)]) t += f;
    return t;
  }
  double max_err() const {
    return std::max(total_fig(KvPart::kK).max_err, total_fig(KvPart::kV).max_err);
  }
};

// The figures of one (layer, K|V) of the single sequence of `cache`; x: the values that
// entered, [n, n_kv_heads, head_dim]. Raw blocks hold the fp16 values exactly (error 0).
PartFigures part_figures(const KvCompCacheRef& cache, KvPart p, int layer,
                         const std::vector<float>& x) {
  const KvShape& sh = cache.shape();
  const size_t row = size_t(sh.n_kv_heads) * sh.head_dim;
  const int B = cache.block_tokens(p);
  PartFigures f;
  std::vector<uint64_t> hist(kMaxAlphabet, 0);
  for (int h = 0; h < sh.n_kv_heads; ++h) {
    const CodecBytes& acct = cache.stream_bytes(p, layer, 0, h);
    for (int s = 0; s < kMaxAlphabet; ++s) hist[s] += acct.hist[s];
    if (cache.codec().codebook_per_head || h == sh.n_kv_heads - 1) {
      for (uint64_t c : hist) f.symbols += c;
      f.entropy_bits += entropy_bits(hist.data(), kMaxAlphabet);
      std::fill(hist.begin(), hist.end(), 0);
    }
    const Codebook* cb = cache.codebook(p, layer, h);
    for (int b = 0; b < cache.n_blocks(p, layer, 0); ++b) {
      const auto blk = cache.block(p, layer, 0, h, b);
      const QuantBlock q = decode_block_symbols_ref(blk.data, blk.bytes, *cb);
      if (q.raw()) continue;
      for (int t = 0; t < q.n_tokens; ++t) {
        for (int c = 0; c < q.head_dim; ++c) {
          const QuantStep st = q.step_of(t, c);
          const float in = round_fp16(x[(size_t(b) * B + t) * row + size_t(h) * sh.head_dim + c]);
          const float out = dequant_value(q.symbols[size_t(t) * q.head_dim + c], st);
          f.max_err =
              std::max(f.max_err, std::fabs(double(in) - double(out)) / (0.5 * double(st.d)));
        }
      }
    }
  }
  return f;
}

// Every kStride-th position's causal attention (attention_ref, the CPU engine's) over (k, v) and
// over the decoded (kd, vd) (all [n, KV, hd]; q: [n, H, hd]): adds sum ||o' - o||^2 to num and
// sum ||o||^2 to den.
constexpr int kStride = 4;
void attention_error(const std::vector<float>& q, const std::vector<float>& k,
                     const std::vector<float>& v, const std::vector<float>& kd,
                     const std::vector<float>& vd, int n, int H, int KV, int hd, double& num,
                     double& den) {
  const size_t qrow = size_t(H) * hd;
  std::vector<int> pos;
  std::vector<float> qs;
  for (int t = kStride - 1; t < n; t += kStride) {
    pos.push_back(t);
    qs.insert(qs.end(), q.begin() + int64_t(t) * qrow, q.begin() + int64_t(t + 1) * qrow);
  }
  const int m = int(pos.size());
  std::vector<float> o(qs.size()), od(qs.size());
  attention_ref(qs.data(), pos.data(), m, k.data(), v.data(), n, KV * hd, H, KV, hd, o.data());
  attention_ref(qs.data(), pos.data(), m, kd.data(), vd.data(), n, KV * hd, H, KV, hd, od.data());
  for (size_t i = 0; i < o.size(); ++i) {
    num += (double(od[i]) - o[i]) * (double(od[i]) - o[i]);
    den += double(o[i]) * o[i];
  }
}

// Compresses one window's K and V (k[l], v[l]: [n, n_kv_heads, head_dim]) under s.kv, with its
// own codebooks, and adds the result to s; with the window's queries (q[l]: [n, n_heads,
// head_dim]; empty: none) also the attention output's error.
void add_window(Setting& s, const KvShape& shape, const std::vector<std::vector<float>>& k,
                const std::vector<std::vector<float>>& v,
                const std::vector<std::vector<float>>& q, int n) {
  KvOptions o = s.kv;
  o.window_k = o.window_v = 0;  // every complete block
  KvCompCacheRef cache(shape, o);
  for (int l = 0; l < shape.n_layers; ++l) cache.append(l, 0, k[l].data(), v[l].data(), n);
  cache.commit();
  s.layers.resize(shape.n_layers);
  for (auto& f : s.fig) f.resize(shape.n_layers);
  for (int l = 0; l < shape.n_layers; ++l) {
    KvStats ls = cache.layer_stats(l);
    // The tail shorter than a block is not a block: leave it out of the figures.
    ls.window_k_values = ls.window_v_values = 0;
    s.layers[l] += ls;
    s.fig[0][l] += part_figures(cache, KvPart::kK, l, k[l]);
    s.fig[1][l] += part_figures(cache, KvPart::kV, l, v[l]);
  }
  if (q.empty()) return;
  s.att_num.resize(shape.n_layers, 0.0);
  s.att_den.resize(shape.n_layers, 0.0);
  std::vector<float> kd, vd;
  for (int l = 0; l < shape.n_layers; ++l) {
    check(cache.read(l, 0, kd, vd), "kvstats: the compressed cache cannot be read back");
    attention_error(q[l], k[l], v[l], kd, vd, n, shape.n_heads, shape.n_kv_heads, shape.head_dim,
                    s.att_num[l], s.att_den[l]);
  }
}

// A figure that may be missing (NaN): null in JSON, "-" in the table.
nlohmann::json json_num(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
}
std::string sci(double x) {
  if (!std::isfinite(x)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", x);
  return buf;
}

// Bits per value over the entropy, in %: what Huffman's integer code lengths, the unit byte
// padding, the metadata and the codebooks cost.
double overhead_pct(const CodecBytes& b, const PartFigures& f) {
  const double h = f.entropy();
  return h > 0 ? 100.0 * (b.bits_per_value() / h - 1.0) : 0.0;
}

double raw_share(const KvStats& s) {
  const uint64_t n = s.k.n_blocks + s.v.n_blocks;
  return n == 0 ? 0.0 : double(s.raw_blocks()) / double(n);
}

nlohmann::json bytes_json(const CodecBytes& b) {
  return {{"payload", b.payload},         {"unit_lengths", b.unit_lengths},
          {"params", b.params},           {"headers", b.headers},
          {"padding", b.padding},         {"raw", b.raw},
          {"codebooks", b.codebooks},     {"total", b.total_bytes()},
          {"values", b.n_values},         {"blocks", b.n_blocks},
          {"raw_blocks", b.n_raw_blocks}, {"compact_blocks", b.n_compact_blocks}};
}

// Bits per value of each part: they sum to bits_per_value().
nlohmann::json bits_json(const CodecBytes& b) {
  const double n = b.n_values > 0 ? double(b.n_values) : 1.0;
  auto bits = [&](uint64_t x) { return 8.0 * double(x) / n; };
  return {{"payload", bits(b.payload)}, {"unit_lengths", bits(b.unit_lengths)},
          {"params", bits(b.params)},   {"headers", bits(b.headers)},
          {"padding", bits(b.padding)}, {"codebooks", bits(b.codebooks)},
          {"raw", bits(b.raw)},         {"total", b.bits_per_value()}};
}

// Huffman V blocks that kept 32-bit token params (kV) although compact ones were asked for.
uint64_t v_wide_blocks(const CodecBytes& v) {
  return v.n_blocks - v.n_raw_blocks - v.n_compact_blocks;
}

std::vector<float> parse_eb_list(const std::string& s) {
  std::vector<float> out;
  for (const auto& item : split_list(s)) out.push_back(parse_number(item, "--eb-list"));
  check(!out.empty(),
        "--eb-list: empty list (expected a comma-separated list such as 0.02,0.05,0.1)");
  return out;
}

void print_bytes_line(const char* name, const CodecBytes& b) {
  const double n = b.n_values > 0 ? double(b.n_values) : 1.0;
  auto bits = [&](uint64_t x) { return 8.0 * double(x) / n; };
  std::printf(
      "  %s  %.3f bits/value = payload %.3f + unit lengths %.3f + params %.3f + headers "
      "%.3f + padding %.3f + codebooks %.4f + raw %.3f  (%llu bytes, %llu blocks, %llu "
      "raw)\n",
      name, b.bits_per_value(), bits(b.payload), bits(b.unit_lengths), bits(b.params),
      bits(b.headers), bits(b.padding), bits(b.codebooks), bits(b.raw),
      static_cast<unsigned long long>(b.total_bytes()), static_cast<unsigned long long>(b.n_blocks),
      static_cast<unsigned long long>(b.n_raw_blocks));
}

}  // namespace

void add_kvstats_command(CLI::App& app) {
  struct Opts {
    CommonOptions common;
    std::string text;
    int ctx = 0;
    int windows = 1;
    std::string eb_list;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "kvstats",
      "KVComp on the model's own K and V: bits per value, entropy, ratio, error against the "
      "bound, per layer (every complete block of each window, compressed as the cache would)");
  add_model_options(cmd, o->common);
  KvOptions& k = o->common.kv_opts;
  cmd->add_option("--text", o->text, "Text file: windows of [BOS] + encode(text) are run")
      ->required();
  cmd->add_option("--ctx", o->ctx, "Tokens per window")->required();
  cmd->add_option("--windows", o->windows, "Consecutive windows run, each with its own codebooks")
      ->capture_default_str();
  cmd->add_option("--eb-k", k.eb_k, "Relative error bound of K")->capture_default_str();
  cmd->add_option("--eb-v", k.eb_v, "Relative error bound of V")->capture_default_str();
  cmd->add_option("--block-k", k.block_k, "Tokens per K block")->capture_default_str();
  cmd->add_option("--block-v", k.block_v, "Tokens per V block")->capture_default_str();
  cmd->add_option("--max-code-len", k.max_code_len, "Longest Huffman code in bits")
      ->capture_default_str();
  cmd->add_flag("--k-channelwise", k.k_channelwise, "Quantize K per channel within a block");
  cmd->add_flag("--codebook-per-head", k.codebook_per_head,
                "One Huffman codebook per KV head instead of per layer");
  add_v_params32_flag(cmd, k);
  cmd->add_option("--eb-list", o->eb_list,
                  "Also a table over error bounds, e.g. 0.02,0.05,0.1,0.2: each row compresses "
                  "K and V both at that bound");
  cmd->add_flag("--json", o->json, "Print one JSON object on stdout");

  cmd->callback([o] {
    KvOptions base = o->common.kv_opts;
    base.mode = KvMode::kKvcomp;
    validate(base);
    check(o->windows >= 1, "--windows: expected a number >= 1, got ", o->windows);
    std::vector<Setting> settings(1);
    settings[0].kv = base;
    std::vector<float> ebs;
    if (!o->eb_list.empty()) ebs = parse_eb_list(o->eb_list);
    for (float eb : ebs) {
      Setting s;
      s.kv = base;
      s.kv.eb_k = s.kv.eb_v = eb;
      check(eb >= 1.0f / 250.0f && eb <= 1.0f,
            "--eb-list: expected error bounds in [0.004, 1], got ", eb);
      settings.push_back(s);
    }

    const std::string text = read_text_file(o->text, "--text");
    const auto dir = o->common.model_dir();
    auto engine = make_engine(dir, parse_device(o->common.device));
    const LlamaConfig& cfg = engine->config();
    const int N = o->ctx;
    check(N >= 1, "--ctx: expected at least 1 token, got ", N);
    check(N >= base.block_k && N >= base.block_v, "--ctx ", N,
          ": shorter than one block (--block-k ", base.block_k, ", --block-v ", base.block_v,
          "): nothing would be compressed");
    check(N <= cfg.max_position_embeddings, "--ctx: ", N,
          " tokens exceed the model's max_position_embeddings of ", cfg.max_position_embeddings);
    const Tokenizer tok = load_tokenizer(dir, cfg.bos_token_id);
    const std::vector<int> ids = perplexity_ids(tok, cfg.bos_token_id, text);
    const int available = int(ids.size() / size_t(N));
    check(available >= o->windows, "--windows ", o->windows, ": the text has ", ids.size(),
          " tokens (with BOS), ", available, " full windows of ", N);

    const KvShape shape{cfg.n_layers, 1, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim};
    const size_t want = size_t(N) * cfg.kv_dim();
    KvOptions dense;
    dense.mode = KvMode::kFp16;
    ProgressBar bar("kvstats");
    std::vector<std::vector<float>> k(cfg.n_layers), v(cfg.n_layers), q(cfg.n_layers);
    std::vector<float> logits;
    engine->keep_queries(true);
    bool queries = true;  // the engine hands them out (the CPU engine)
    for (int w = 0; w < o->windows; ++w) {
      engine->start(1, N, dense);
      const auto first = ids.begin() + int64_t(w) * N;
      engine->forward({{0, std::vector<int>(first, first + N)}}, false, logits);
      for (int l = 0; l < cfg.n_layers; ++l) {
        check(engine->read_kv(l, 0, k[l], v[l]), "kvstats: the ", engine->device_name(),
              " engine cannot read its KV cache back (Engine::read_kv); use --device cpu");
        check(k[l].size() == want && v[l].size() == want, "kvstats: read_kv returned ", k[l].size(),
              " K and ", v[l].size(), " V values for layer ", l, ", expected ", want);
      }
      for (int l = 0; l < cfg.n_layers && queries; ++l) queries = engine->read_q(l, 0, q[l]);
      static const std::vector<std::vector<float>> none;
      for (Setting& s : settings) add_window(s, shape, k, v, queries ? q : none, N);
      bar.update(w + 1, o->windows, "windows");
    }
    bar.finish();

    const Setting& primary = settings[0];
    const KvStats tot = primary.total();
    const PartFigures tk = primary.total_fig(KvPart::kK), tv = primary.total_fig(KvPart::kV);
    if (o->json) {
      nlohmann::json layers = nlohmann::json::array();
      for (int l = 0; l < cfg.n_layers; ++l) {
        const KvStats& s = primary.layers[l];
        const PartFigures& fk = primary.fig[0][l];
        const PartFigures& fv = primary.fig[1][l];
        layers.push_back({{"layer", l},
                          {"k_bits", s.k_bits()},
                          {"v_bits", s.v_bits()},
                          {"k_entropy", fk.entropy()},
                          {"v_entropy", fv.entropy()},
                          {"k_overhead_pct", overhead_pct(s.k, fk)},
                          {"v_overhead_pct", overhead_pct(s.v, fv)},
                          {"ratio", s.ratio()},
                          {"k_max_err_over_bound", fk.max_err},
                          {"v_max_err_over_bound", fv.max_err},
                          {"max_err_over_bound", std::max(fk.max_err, fv.max_err)},
                          {"attn_rel_err", json_num(primary.att_err(l))},
                          {"raw_blocks", s.raw_blocks()}});
      }
      nlohmann::json j = {{"model", dir.string()},
                          {"device", engine->device_name()},
                          {"text", o->text},
                          {"ctx", N},
                          {"windows", o->windows},
                          {"eb_k", base.eb_k},
                          {"eb_v", base.eb_v},
                          {"block_k", base.block_k},
                          {"block_v", base.block_v},
                          {"max_code_len", base.max_code_len},
                          {"k_channelwise", base.k_channelwise},
                          {"codebook_per_head", base.codebook_per_head},
                          {"v_params16", base.v_params16},
                          {"k_bits", tot.k_bits()},
                          {"v_bits", tot.v_bits()},
                          {"k_entropy", tk.entropy()},
                          {"v_entropy", tv.entropy()},
                          {"k_overhead_pct", overhead_pct(tot.k, tk)},
                          {"v_overhead_pct", overhead_pct(tot.v, tv)},
                          {"ratio", tot.ratio()},
                          {"max_err_over_bound", primary.max_err()},
                          {"attn_rel_err", json_num(primary.att_err_total())},
                          {"k_max_err_over_bound", tk.max_err},
                          {"v_max_err_over_bound", tv.max_err},
                          {"raw_blocks", tot.raw_blocks()},
                          {"raw_block_share", raw_share(tot)},
                          {"bytes", {{"k", bytes_json(tot.k)}, {"v", bytes_json(tot.v)}}},
                          {"bits", {{"k", bits_json(tot.k)}, {"v", bits_json(tot.v)}}},
                          {"v_compact_blocks", tot.v.n_compact_blocks},
                          {"v_wide_blocks", v_wide_blocks(tot.v)},
                          {"layers", layers}};
      if (!ebs.empty()) {
        nlohmann::json table = nlohmann::json::array();
        for (size_t i = 1; i < settings.size(); ++i) {
          const Setting& s = settings[i];
          const KvStats t = s.total();
          table.push_back({{"eb_k", s.kv.eb_k},
                           {"eb_v", s.kv.eb_v},
                           {"k_bits", t.k_bits()},
                           {"v_bits", t.v_bits()},
                           {"k_entropy", s.total_fig(KvPart::kK).entropy()},
                           {"v_entropy", s.total_fig(KvPart::kV).entropy()},
                           {"k_overhead_pct", overhead_pct(t.k, s.total_fig(KvPart::kK))},
                           {"v_overhead_pct", overhead_pct(t.v, s.total_fig(KvPart::kV))},
                           {"ratio", t.ratio()},
                           {"max_err_over_bound", s.max_err()},
                           {"attn_rel_err", json_num(s.att_err_total())},
                           {"raw_blocks", t.raw_blocks()},
                           {"v_compact_blocks", t.v.n_compact_blocks},
                           {"v_wide_blocks", v_wide_blocks(t.v)},
                           {"bits", {{"k", bits_json(t.k)}, {"v", bits_json(t.v)}}}});
        }
        j["eb_table"] = table;
      }
      std::printf("%s\n", j.dump().c_str());
      return;
    }

    std::printf(
        "kvstats: %s on %s, %d window(s) of %d tokens; eb_k %g, eb_v %g, block_k %d, "
        "block_v %d, max code length %d, K %s, codebook per %s, V token params %s\n",
        dir.string().c_str(), engine->device_name().c_str(), o->windows, N, double(base.eb_k),
        double(base.eb_v), base.block_k, base.block_v, base.max_code_len,
        base.k_channelwise ? "channel-wise" : "block-wise",
        base.codebook_per_head ? "KV head" : "layer",
        base.v_params16 ? "16-bit where possible" : "32-bit (--v-params32)");
    std::printf("%-6s %7s %7s %7s  %7s %7s %7s  %7s  %9s  %8s  %9s\n", "layer", "K bits", "K ent",
                "K ovh%", "V bits", "V ent", "V ovh%", "ratio", "err/bound", "raw blks",
                "attn err");
    auto print_row = [](const std::string& name, const KvStats& s, const PartFigures& fk,
                        const PartFigures& fv, double att) {
      std::printf("%-6s %7.3f %7.3f %7.1f  %7.3f %7.3f %7.1f  %6.2fx  %9.4f  %8llu  %9s\n",
                  name.c_str(), s.k_bits(), fk.entropy(), overhead_pct(s.k, fk), s.v_bits(),
                  fv.entropy(), overhead_pct(s.v, fv), s.ratio(), std::max(fk.max_err, fv.max_err),
                  static_cast<unsigned long long>(s.raw_blocks()), sci(att).c_str());
    };
    for (int l = 0; l < cfg.n_layers; ++l)
      print_row(std::to_string(l), primary.layers[l], primary.fig[0][l], primary.fig[1][l],
                primary.att_err(l));
    print_row("total", tot, tk, tv, primary.att_err_total());
    std::printf(
        "bits per value include every byte of the blocks and the codebooks; entropy: bits per "
        "coded symbol under each codebook; ovh = bits per value / entropy - 1; err/bound = max "
        "|x - x'| / (d/2); attn err: ||o' - o|| / ||o|| of the attention output with the "
        "model's own queries (every 4th position, CPU only); raw-fallback blocks: %.2f%% of "
        "%llu\n",
        100.0 * raw_share(tot), static_cast<unsigned long long>(tot.k.n_blocks + tot.v.n_blocks));
    std::printf("bytes:\n");
    print_bytes_line("K", tot.k);
    print_bytes_line("V", tot.v);
    std::printf(
        "V Huffman blocks: %llu with 16-bit token params, %llu with 32-bit (%.2f%% of all V "
        "blocks), %llu raw\n",
        static_cast<unsigned long long>(tot.v.n_compact_blocks),
        static_cast<unsigned long long>(v_wide_blocks(tot.v)),
        tot.v.n_blocks > 0 ? 100.0 * double(v_wide_blocks(tot.v)) / double(tot.v.n_blocks) : 0.0,
        static_cast<unsigned long long>(tot.v.n_raw_blocks));
    if (!ebs.empty()) {
      std::printf("\nover error bounds (K and V both at eb):\n");
      std::printf("%-7s %7s %9s %6s  %7s %9s %6s %7s  %7s  %9s  %8s  %9s\n", "eb", "K bits",
                  "K entropy", "K ovh%", "V bits", "V entropy", "V ovh%", "V p32", "ratio",
                  "err/bound", "raw blks", "attn err");
      for (size_t i = 1; i < settings.size(); ++i) {
        const Setting& s = settings[i];
        const KvStats t = s.total();
        const PartFigures fk = s.total_fig(KvPart::kK), fv = s.total_fig(KvPart::kV);
        std::printf("%-7g %7.3f %9.3f %6.1f  %7.3f %9.3f %6.1f %7llu  %6.2fx  %9.4f  %8llu  %9s\n",
                    double(s.kv.eb_k), t.k_bits(), fk.entropy(), overhead_pct(t.k, fk), t.v_bits(),
                    fv.entropy(), overhead_pct(t.v, fv),
                    static_cast<unsigned long long>(v_wide_blocks(t.v)), t.ratio(), s.max_err(),
                    static_cast<unsigned long long>(t.raw_blocks()), sci(s.att_err_total()).c_str());
      }
      std::printf("V p32: V Huffman blocks that kept 32-bit token params\n");
    }
  });
}

}  // namespace kvcomp::cli
