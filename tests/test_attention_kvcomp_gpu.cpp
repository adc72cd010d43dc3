// The fused KVComp attention kernel against attention in double over the same decoded values
// (the CPU reference decoder's output): context lengths from 1 to many splits with odd sizes
// (around blocks and tiles), batches of sequences of different lengths, GQA ratios 1, 2, 4, 8,
// head_dim 64 and 128, blocks of 16 to 256 tokens, K block-wise and channel-wise, raw fallback
// blocks, windows of 0 and more, per-lane and shared decode tables, V blocks with compact
// (16-bit) token params, 32-bit ones, and both mixed in one sequence; Huffman and fixed-length
// codes of 2 to 8 bits. Outputs are poisoned (NaN)
// first. Label: gpu.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include "compress/attention_kvcomp.h"
#include "runtime/attention_decode.h"
#include "runtime/cuda_check.h"
#include "runtime/half.h"
#include "tests/catch.h"
#include "tests/gpu_test_util.h"
#include "tools/attention_testbed.h"

using namespace kvcomp;
using namespace kvcomp::testbed;
using kvcomp::test::rel_err;

namespace {

// fp32 decode + accumulate vs double, output rounded to fp16.
constexpr double kTolFused = 2e-3;

// K/V with the structure of real caches: per-channel scales, a few outlier channels. quiet_every
// > 0: every quiet_every-th V token is scaled by 2^-10, so the V blocks holding one keep 32-bit
// token params (their steps spread over more than 8 octaves) between compact ones.
HostKv synthetic_kv(int n_seqs, int n_kv, int hd, const std::vector<int>& len, uint64_t seed,
                    int quiet_every = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  HostKv kv;
  kv.n_seqs = kv.n_unique = n_seqs;
  kv.n_kv_heads = n_kv;
  kv.head_dim = hd;
  kv.len = len;
  for (int s = 0; s < n_seqs; ++s)
    for (int h = 0; h < n_kv; ++h) {
      std::vector<float> scale(hd), k(size_t(len[s]) * hd), v(size_t(len[s]) * hd);
      for (int c = 0; c < hd; ++c)
        scale[c] = std::exp(0.5f * nd(rng)) * (c % 37 == 5 ? 8.0f : 1.0f);
      for (int t = 0; t < len[s]; ++t)
        for (int c = 0; c < hd; ++c) {
          k[size_t(t) * hd + c] = round_fp16(scale[c] * nd(rng) + 0.3f * scale[c]);
          const float quiet = quiet_every > 0 && t % quiet_every == 7 ? 0x1p-10f : 1.0f;
          v[size_t(t) * hd + c] = round_fp16(0.5f * quiet * nd(rng));
        }
      kv.k.push_back(std::move(k));
      kv.v.push_back(std::move(v));
    }
  return kv;
}

struct Case {
  int heads, kv_heads, hd;
  std::vector<int> len;
  int window_k, window_v;
  bool channelwise;
  int max_code_len;
  int replicas;
  int split;
  bool v_params32 = false;       // every V block with 32-bit token params (kV)
  int quiet_every = 0;           // see synthetic_kv: a mix of compact and kV V blocks
  int block_k = 0, block_v = 0;  // 0: 64 / 128 (or as the windows below imply)
  bool fixed = false;            // fixed-length codes (kvcomp-fixed)
  float eb_k = 0.05f, eb_v = 0.1f;
  int fixed_k = 0, fixed_v = 0;  // the code lengths the bounds give (fixed cases)
  float q_scale = 1.0f;          // queries ~ N(0, q_scale^2)
};

}  // namespace

TEST_CASE("fused KVComp attention equals attention over the decoded cache", "[gpu]") {
  CudaContext ctx;
  const uint64_t seed = std::random_device{}();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  const std::vector<Case> cases = {
      {8, 8, 128, {1}, 128, 256, false, 8, -1, 0},
      {8, 8, 128, {1, 3, 200, 1111}, 128, 256, false, 8, -1, 0},
      {8, 4, 128, {4099, 700, 129}, 128, 256, false, 8, -1, 0},
      {32, 4, 128, {2500, 1}, 0, 0, false, 8, -1, 256},
      {16, 2, 64, {1500, 333, 77}, 16, 32, false, 8, -1, 512},
      {8, 8, 64, {3000}, 128, 256, true, 8, -1, 0},
      {8, 2, 128, {2049, 1025}, 128, 256, false, 12, -1, 0},
      {8, 2, 128, {2049, 1025}, 128, 256, false, 8, 1, 0},
      {8, 1, 128, {5000, 2}, 64, 64, false, 8, -1, 0},
      {8, 2, 128, {2049, 1025}, 128, 256, false, 8, -1, 0, true},
      {16, 4, 64, {3000, 129}, 128, 256, false, 8, -1, 0, false, 300},
      {8, 8, 128, {1111, 4099}, 0, 0, false, 12, 1, 512, false, 500},
      // Lengths around blocks and tiles in one ragged batch; a long context over many splits.
      {8, 8, 128, {63, 64, 65, 127, 128, 129, 255, 256, 257, 383, 385}, 128, 256, false, 8, -1, 0},
      {32, 8, 128, {20000, 3, 1500}, 128, 256, false, 8, -1, 0},
      {64, 8, 128, {3001, 129}, 128, 256, false, 8, -1, 0},
      // Other block sizes: 256-token blocks (tiles of 256, K units past a pass), 16-token ones.
      {8, 2, 128, {3000, 700, 256}, 128, 256, false, 8, -1, 0, false, 0, 256, 256},
      {8, 2, 128, {2100, 511}, 64, 64, false, 8, -1, 0, false, 0, 256, 128},
      {8, 4, 64, {1000, 17, 33}, 16, 16, false, 8, -1, 0, false, 0, 16, 16},
      {16, 4, 128, {2222, 1}, 0, 0, false, 8, -1, 0, false, 0, 128, 64},
      // Codes of at most 6 and 5 bits: the pair tables (two codes per lookup).
      {8, 2, 128, {3000, 129, 64}, 128, 256, false, 6, -1, 0},
      {32, 8, 128, {5000, 1}, 128, 256, false, 5, -1, 0, false, 300},
      {8, 8, 64, {2000, 257}, 64, 64, true, 6, -1, 0},
      // Fixed-length codes of 2 to 8 bits: the unpacking fast paths (K 5 / V 4 bits are the
      // default bounds), with raw blocks, kV and compact V params, 16-token V blocks (table path).
      {8, 8, 128, {4099, 700, 129}, 128, 256, false, 8, -1, 0, false, 0, 0, 0, true, 0.05f, 0.1f,
       5, 4},
      {32, 8, 128, {20000, 3, 1500}, 128, 256, false, 8, -1, 0, false, 0, 0, 0, true, 0.05f, 0.1f,
       5, 4},
      {16, 2, 64, {1500, 333, 77}, 16, 32, false, 8, -1, 512, false, 0, 0, 0, true, 0.02f, 0.01f,
       6, 7},
      {8, 2, 128, {3000, 257}, 128, 256, false, 8, -1, 0, false, 0, 0, 0, true, 0.005f, 0.5f, 8,
       2},
      {8, 4, 128, {2500, 65}, 128, 256, false, 8, -1, 0, false, 0, 256, 256, true, 0.25f, 0.25f,
       3, 3},
      {32, 16, 128, {3000, 129}, 128, 256, false, 8, -1, 0, true, 300, 32, 32, true, 0.05f, 0.1f,
       5, 4},
      {16, 4, 64, {3000, 129}, 128, 256, true, 8, -1, 0, false, 300, 0, 0, true, 0.05f, 0.1f, 5,
       4},
      {8, 4, 64, {1000, 17, 33}, 16, 16, false, 8, -1, 0, false, 0, 16, 16, true, 0.05f, 0.1f, 5,
       4},
      // Fixed-length codes with 4 query heads per KV head and head_dim 128: the tensor-core paths
      // (odd and even code lengths, K blocks of 16 to 256 tokens, V blocks of 32 to 128 tokens on
      // tensor cores and of 256 on the FMA path), and queries past fp16's range (the FMA path).
      {32, 8, 128, {3000, 700, 129, 1}, 128, 256, false, 8, -1, 0, false, 0, 16, 32, true, 0.05f,
       0.1f, 5, 4},
      {16, 4, 128, {2600, 65, 200}, 128, 256, false, 8, -1, 0, false, 0, 32, 64, true, 0.02f,
       0.01f, 6, 7},
      {8, 2, 128, {3000, 257}, 128, 256, false, 8, -1, 0, false, 0, 128, 128, true, 0.25f, 0.25f,
       3, 3},
      {8, 2, 128, {2000, 300}, 128, 256, false, 8, -1, 0, false, 0, 256, 256, true, 0.05f, 0.1f,
       5, 4},
      {8, 2, 128, {3000, 129}, 128, 256, false, 8, -1, 0, false, 0, 0, 0, true, 0.05f, 0.1f, 5, 4,
       1e6f},
      // Tensor-core tiles (fixed-length codes at head_dim 128, every case above too) with 8 query
      // heads per KV head, kV and compact V blocks mixed; one KV head over many splits.
      {64, 8, 128, {5000, 129, 1}, 128, 256, false, 8, -1, 0, false, 300, 0, 0, true, 0.05f,
       0.1f, 5, 4},
      {4, 1, 128, {33000, 640}, 128, 256, false, 8, -1, 1024, false, 0, 0, 0, true, 0.05f, 0.1f,
       5, 4},
  };
  // KVCOMP_TEST_QUICK=1 (under compute-sanitizer, which runs kernels ~50x slower): the cases of
  // at most 6000 tokens in all.
  const bool quick = std::getenv("KVCOMP_TEST_QUICK") != nullptr;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case& c = cases[ci];
    if (quick && std::accumulate(c.len.begin(), c.len.end(), 0) > 6000) continue;
    const HostKv kv =
        synthetic_kv(int(c.len.size()), c.kv_heads, c.hd, c.len, seed + ci, c.quiet_every);
    ImageOptions o;
    o.window_k = c.window_k;
    o.window_v = c.window_v;
    o.codec.k_channelwise = c.channelwise;
    o.codec.max_code_len = c.max_code_len;
    o.codec.v_params16 = !c.v_params32;
    o.codec.fixed_codes = c.fixed;
    o.codec.eb_k = c.eb_k;
    o.codec.eb_v = c.eb_v;
    o.force_raw_every = 5;
    if (c.window_k == 16) o.codec.block_k = 16, o.codec.block_v = 32;
    if (c.window_k == 64) o.codec.block_k = 32, o.codec.block_v = 64;
    if (c.block_k > 0) o.codec.block_k = c.block_k, o.codec.block_v = c.block_v;
    KvcompImage img = build_kvcomp_image(kv, c.heads, o);
    // Fixed-length codes reach the kernel as such (else the unpacking paths would not run).
    REQUIRE(img.params.k_fixed_bits == (c.fixed ? c.fixed_k : 0));
    REQUIRE(img.params.v_fixed_bits == (c.fixed ? c.fixed_v : 0));
    // Queries and output.
    std::mt19937_64 rng(seed ^ 77);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(size_t(kv.n_seqs) * c.heads * c.hd);
    for (auto& x : q) x = c.q_scale * nd(rng);
    DeviceBuffer dq(q.size() * 4, "queries");
    dq.upload(q.data(), q.size() * 4);
    DeviceBuffer dout(q.size() * 2, "output");
    KVCOMP_CUDA_CHECK(cudaMemset(dout.get(), 0xff, dout.bytes()));  // NaN
    KvcompAttentionParams p = img.params;
    p.qkv = dq.as<float>();
    p.qkv_stride = int64_t(c.heads) * c.hd;
    p.q_col = 0;
    p.out = dout.get();
    const int max_len = *std::max_element(c.len.begin(), c.len.end());
    const size_t scratch = kvcomp_attention_scratch_bytes(p, max_len);
    DeviceBuffer dscratch(scratch, "scratch");
    const uint64_t v_huff = img.v_bytes.n_blocks - img.v_bytes.n_raw_blocks;
    const uint64_t v_compact = img.v_bytes.n_compact_blocks;
    // Fixed-length codes at head_dim 128: the tensor-core tiles (the default), then the FMA paths.
    for (int variant = 0; variant < (c.fixed && c.hd == 128 ? 2 : 1); ++variant) {
    KVCOMP_CUDA_CHECK(cudaMemset(dout.get(), 0xff, dout.bytes()));  // NaN
    KvcompAttentionTuning tune;
    tune.replicas = c.replicas;
    tune.split_tokens = c.split;
    tune.mma_tiles = variant == 0;
    kvcomp_attention_cuda(ctx, p, max_len, DType::kF16, dscratch.get(), scratch, tune);
    ctx.synchronize();
    std::vector<uint16_t> got16(q.size());
    dout.download(got16.data(), got16.size() * 2);
    std::vector<float> got(q.size());
    for (size_t i = 0; i < got.size(); ++i) got[i] = fp16_to_float(got16[i]);
    const auto want = reference_attention(kv, c.heads, img.k_dec, img.v_dec, q);
    const double e = rel_err(got, want);
    std::printf(
        "case %zu: heads %d/%d hd %d, %zu seqs (max %d), %s codes of %d/%d bits, %d raw blocks, V "
        "Huffman blocks %llu compact + %llu 32-bit%s: rel err %.2e\n",
        ci, c.heads, c.kv_heads, c.hd, c.len.size(), max_len, c.fixed ? "fixed" : "Huffman",
        p.k_bits, p.v_bits, img.raw_blocks,
        static_cast<unsigned long long>(v_compact),
        static_cast<unsigned long long>(v_huff - v_compact),
        c.fixed && c.hd == 128 ? (variant == 0 ? ", tensor-core tiles" : ", FMA paths") : "", e);
    INFO("case " << ci << " variant " << variant << " rel err " << e);
    REQUIRE(e < kTolFused);
    }
    // The V blocks take the forms the case is about.
    if (v_huff > 0) {
      if (c.v_params32) {
        REQUIRE(v_compact == 0);
      } else if (c.quiet_every > 0) {
        REQUIRE(v_compact > 0);
        REQUIRE(v_compact < v_huff);
      } else {
        REQUIRE(v_compact == v_huff);
      }
    }
  }
}

// The fp16 cache's flash decoding (the same kernel with rows only) against attention in double
// over the fp16-rounded K/V, with fp16 and bf16 outputs: ragged batches whose sequences end in
// different splits (the last block of each (sequence, KV head) to finish merges its splits), and
// forced splits of one granule. The fused path's bf16 output on one compressed case.
TEST_CASE("flash decoding over fp16 rows, fp16 and bf16 outputs", "[gpu]") {
  CudaContext ctx;
  const uint64_t seed = std::random_device{}();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  struct Flash {
    int heads, kv_heads, hd;
    std::vector<int> len;
    int split;
  };
  const std::vector<Flash> cases = {
      {8, 8, 128, {1, 2, 127, 1025, 9000}, 0},
      {32, 8, 128, {20000, 1, 3000}, 0},
      {16, 2, 64, {4097, 5000, 63}, 1024},
      {8, 1, 128, {3001, 12000}, 0},
  };
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Flash& c = cases[ci];
    const HostKv kv =
        synthetic_kv(int(c.len.size()), c.kv_heads, c.hd, c.len, seed + 1000 + ci);
    DenseImage dense = build_dense_image(kv);
    std::mt19937_64 rng(seed ^ 99);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(size_t(kv.n_seqs) * c.heads * c.hd);
    for (auto& x : q) x = nd(rng);
    DeviceBuffer dq(q.size() * 4, "queries"), dout(q.size() * 2, "output");
    dq.upload(q.data(), q.size() * 4);
    std::vector<int> lens = c.len;
    DeviceBuffer dlen(lens.size() * 4, "lengths");
    dlen.upload(lens.data(), lens.size() * 4);
    DecodeAttentionParams fp;
    fp.n_heads = c.heads;
    fp.n_kv_heads = c.kv_heads;
    fp.head_dim = c.hd;
    fp.scale = 1.0f / std::sqrt(float(c.hd));
    fp.qkv = dq.as<float>();
    fp.qkv_stride = int64_t(c.heads) * c.hd;
    fp.n_chunks = kv.n_seqs;
    fp.chunk_seq = dense.chunk_seq.as<int>();
    fp.seq_len = dlen.as<int>();
    fp.ring_k = dense.k.as<uint16_t>();
    fp.ring_v = dense.v.as<uint16_t>();
    fp.cap_k = fp.cap_v = dense.cap;
    fp.out = dout.get();
    const int max_len = *std::max_element(c.len.begin(), c.len.end());
    DeviceBuffer scratch(decode_attention_scratch_bytes(fp, max_len), "scratch");
    const auto want = reference_attention(kv, c.heads, kv.k, kv.v, q);
    for (DType act : {DType::kF16, DType::kBF16}) {
      KVCOMP_CUDA_CHECK(cudaMemset(dout.get(), 0xff, dout.bytes()));  // NaN in both types
      // Twice: the split counters must be left ready for the next launch.
      for (int rep = 0; rep < 2; ++rep)
        decode_attention_cuda(ctx, fp, max_len, act, scratch.get(), scratch.bytes(), c.split);
      ctx.synchronize();
      std::vector<uint16_t> got16(q.size());
      dout.download(got16.data(), got16.size() * 2);
      std::vector<float> got(q.size());
      for (size_t i = 0; i < got.size(); ++i)
        got[i] = act == DType::kF16 ? fp16_to_float(got16[i]) : bf16_to_float(got16[i]);
      const double e = rel_err(got, want);
      std::printf("flash case %zu (%s out): heads %d/%d hd %d, %zu seqs (max %d): rel err %.2e\n",
                  ci, act == DType::kF16 ? "fp16" : "bf16", c.heads, c.kv_heads, c.hd,
                  c.len.size(), max_len, e);
      INFO("flash case " << ci << " rel err " << e);
      REQUIRE(e < (act == DType::kF16 ? kTolFused : 1e-2));  // bf16: 8 mantissa bits
    }
  }
  // The fused kernel with a bf16 output (fixed-length codes, G = 4).
  const std::vector<int> len = {3000, 700, 129, 1};
  const HostKv kv = synthetic_kv(int(len.size()), 8, 128, len, seed + 2000);
  ImageOptions o;
  o.codec.fixed_codes = true;
  KvcompImage img = build_kvcomp_image(kv, 32, o);
  std::mt19937_64 rng(seed ^ 101);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(size_t(kv.n_seqs) * 32 * 128);
  for (auto& x : q) x = nd(rng);
  DeviceBuffer dq(q.size() * 4, "queries"), dout(q.size() * 2, "output");
  dq.upload(q.data(), q.size() * 4);
  KVCOMP_CUDA_CHECK(cudaMemset(dout.get(), 0xff, dout.bytes()));
  KvcompAttentionParams p = img.params;
  p.qkv = dq.as<float>();
  p.qkv_stride = 32 * 128;
  p.q_col = 0;
  p.out = dout.get();
  DeviceBuffer scratch(kvcomp_attention_scratch_bytes(p, 3000), "scratch");
  kvcomp_attention_cuda(ctx, p, 3000, DType::kBF16, scratch.get(), scratch.bytes());
  ctx.synchronize();
  std::vector<uint16_t> got16(q.size());
  dout.download(got16.data(), got16.size() * 2);
  std::vector<float> got(q.size());
  for (size_t i = 0; i < got.size(); ++i) got[i] = bf16_to_float(got16[i]);
  const double e = rel_err(got, reference_attention(kv, 32, img.k_dec, img.v_dec, q));
  std::printf("fused, bf16 out: rel err %.2e\n", e);
  REQUIRE(e < 1e-2);
}
