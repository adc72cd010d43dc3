// GPU codec (compress/codec_cuda.h) against the CPU reference (compress/codec_ref.h), bit for
// bit, both ways:
//   GPU encode -> the block bytes equal encode_block_ref's, and decode_block_ref reads them;
//   CPU encode -> GPU decode: fp16 output bits equal decode_block_ref's values rounded to fp16
//                 (raw blocks: the stored fp16 bits), fp32 values and symbols equal too;
//   GPU histogram == quantize_block + histogram_add.
// Over every kind (kVCompact requests included: compact V blocks and their kV fallbacks), block
// size 16..256, odd token counts, head_dim 64 and 128 (and 32, 96, 256),
// ring-indexed sources that wrap, code lengths 1..12, one-symbol and uniform codebooks, symbols
// unseen at codebook time, NaN/Inf, constant and subnormal data, every raw reason, many jobs per
// CTA, an arena too small and invalid jobs. Fresh random inputs each run (the seed is printed;
// KVCOMP_TEST_SEED=<n> repeats a run); outputs and arena are poisoned before each run; source
// rows carry NaN padding past head_dim, so a kernel reading it would produce a raw block.
// Real K/V of the demo model are not used yet: they need a cache-dump API (added later); the
// K/V-like generator below (log-normal channel scales, outlier channels) stands in. Label: gpu.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "compress/codec_cuda.h"
#include "compress/codec_ref.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_context.h"
#include "runtime/device_buffer.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "tests/catch.h"
#include "tests/gpu_test_util.h"

using namespace kvcomp;
using namespace kvcomp::test;

namespace {

// Requests: kVCompact gives compact V blocks where the data allows them, kV blocks elsewhere.
constexpr BlockKind kKinds[] = {BlockKind::kKBlock, BlockKind::kKChannel, BlockKind::kV,
                                BlockKind::kVCompact};
constexpr uint8_t kArenaPoison = 0xA5;
constexpr uint16_t kOutPoison = 0xfdfbu;        // an fp16 NaN no test input contains
constexpr uint32_t kOutPoison32 = 0xffbadbadu;  // an fp32 NaN no decoder produces
constexpr uint16_t kPadNaN = 0x7e01u;           // source padding past head_dim

const char* kind_str(BlockKind k) {
  return k == BlockKind::kKBlock     ? "K block"
         : k == BlockKind::kKChannel ? "K channel"
         : k == BlockKind::kV        ? "V"
                                     : "V compact";
}

uint64_t test_seed() {
  static const uint64_t seed = [] {
    uint64_t s = 0;
    if (const char* e = std::getenv("KVCOMP_TEST_SEED")) {
      s = std::strtoull(e, nullptr, 0);
    } else {
      std::random_device rd;
      s = (uint64_t(rd()) << 32) ^ uint64_t(rd());
    }
    std::printf("test_codec_gpu: seed %llu (KVCOMP_TEST_SEED=%llu repeats this run)\n",
                (unsigned long long)s, (unsigned long long)s);
    std::fflush(stdout);
    return s;
  }();
  return seed;
}

std::mt19937_64& rng() {
  static std::mt19937_64 r(test_seed());
  return r;
}

// ---------------------------------------------------------------------------------------------
// Inputs

// fp16 rows [rows, stride]; columns past head_dim hold kPadNaN.
struct Source {
  int rows = 0, head_dim = 0;
  int64_t stride = 0;
  std::vector<uint16_t> h;
  uint16_t& at(int r, int c) { return h[size_t(r) * size_t(stride) + size_t(c)]; }
  uint16_t at(int r, int c) const { return h[size_t(r) * size_t(stride) + size_t(c)]; }
};

Source make_source(int rows, int head_dim, int pad = 5) {
  Source s;
  s.rows = rows;
  s.head_dim = head_dim;
  s.stride = head_dim + pad;
  s.h.assign(size_t(rows) * size_t(s.stride), kPadNaN);
  return s;
}

// K-like (outliers = true): per-channel scale log-normal, per-channel offset, a few outlier
// channels 8-16x larger; V-like: scale spread only. Gaussian values.
Source kv_like(int rows, int head_dim, bool outliers) {
  Source s = make_source(rows, head_dim);
  std::lognormal_distribution<float> scale_d(0.0f, outliers ? 0.8f : 0.4f);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  std::vector<float> scale(static_cast<size_t>(head_dim)), offset(static_cast<size_t>(head_dim));
  for (int c = 0; c < head_dim; ++c) {
    scale[size_t(c)] = scale_d(rng());
    offset[size_t(c)] = outliers ? 0.5f * nd(rng()) : 0.0f;
    if (outliers && ud(rng()) < 0.04f) scale[size_t(c)] *= 8.0f + 8.0f * ud(rng());
  }
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < head_dim; ++c) {
      s.at(r, c) = float_to_fp16(offset[size_t(c)] + scale[size_t(c)] * nd(rng()));
    }
  }
  return s;
}

Source uniform_data(int rows, int head_dim, float lo, float hi) {
  Source s = make_source(rows, head_dim);
  std::uniform_real_distribution<float> ud(lo, hi);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < head_dim; ++c) s.at(r, c) = float_to_fp16(ud(rng()));
  return s;
}

// ---------------------------------------------------------------------------------------------
// A case: a source, codebooks and the blocks to code from it

struct JobSpec {
  int first = 0;  // first row (ring: ring row of the first token)
  int n_tokens = 0;
  BlockKind kind = BlockKind::kKBlock;
  float eb = 0.05f;
  int codebook = 0;
};

struct Case {
  std::string name;
  Source src;
  bool ring = false;  // rows (first + r) % src.rows; else rows first + r
  std::vector<Codebook> cbs;
  std::vector<JobSpec> jobs;
  std::set<RawReason> expect_reasons;  // reasons (kNone: Huffman) the case must produce
  std::set<BlockKind> expect_kinds;    // kinds of Huffman blocks the case must produce
};

// The block's values as the reference sees them: [n_tokens, head_dim] fp32.
std::vector<float> gather(const Case& c, const JobSpec& j) {
  const int hd = c.src.head_dim;
  std::vector<float> x(size_t(j.n_tokens) * size_t(hd));
  for (int r = 0; r < j.n_tokens; ++r) {
    const int row = c.ring ? (j.first + r) % c.src.rows : j.first + r;
    for (int ch = 0; ch < hd; ++ch)
      x[size_t(r) * hd + size_t(ch)] = fp16_to_float(c.src.at(row, ch));
  }
  return x;
}

int max_values_of(const Case& c) {
  int m = 1;
  for (const JobSpec& j : c.jobs) m = std::max(m, j.n_tokens * c.src.head_dim);
  return m;
}

EncodeJob device_job(const Case& c, const JobSpec& s, const __half* d_src, uint8_t** slot) {
  EncodeJob e;
  if (c.ring) {
    e.src = d_src;
    e.ring_cap = c.src.rows;
    e.first = s.first;
  } else {
    e.src = d_src + int64_t(s.first) * c.src.stride;
    e.ring_cap = 0;
    e.first = 0;
  }
  e.row_stride = c.src.stride;
  e.n_tokens = s.n_tokens;
  e.head_dim = c.src.head_dim;
  e.kind = uint8_t(s.kind);
  e.eb = s.eb;
  e.codebook = s.codebook;
  e.slot = slot;
  return e;
}

struct CpuBlocks {
  std::vector<uint8_t> bytes;  // blocks back to back
  std::vector<EncodedBlock> blocks;
};

CpuBlocks cpu_encode(const Case& c) {
  CpuBlocks out;
  for (const JobSpec& j : c.jobs) {
    const std::vector<float> x = gather(c, j);
    out.blocks.push_back(encode_block_ref(j.kind, x.data(), j.n_tokens, c.src.head_dim,
                                          size_t(c.src.head_dim), j.eb, c.cbs[size_t(j.codebook)],
                                          out.bytes));
  }
  return out;
}

std::string job_str(const Case& c, size_t i) {
  const JobSpec& j = c.jobs[i];
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: job %zu (%s, first %d, %d tokens x %d, eb %g, codebook %d)",
                c.name.c_str(), i, kind_str(j.kind), j.first, j.n_tokens, c.src.head_dim,
                double(j.eb), j.codebook);
  return buf;
}

// Index of the first differing byte, or -1.
long first_diff(const uint8_t* a, const uint8_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return long(i);
  return -1;
}

// ---------------------------------------------------------------------------------------------
// The checks

// GPU encode == CPU encode, byte for byte; the arena is used exactly and nothing past it written.
void check_encode(const CudaContext& ctx, const Case& c, const CpuBlocks& cpu,
                  const DeviceBuffer& d_src, const GpuCodebooks& gcb) {
  const size_t n_jobs = c.jobs.size();
  DeviceBuffer d_slots(n_jobs * sizeof(uint8_t*), "test slots");
  KVCOMP_CUDA_CHECK(cudaMemset(d_slots.get(), 0xff, d_slots.bytes()));
  std::vector<EncodeJob> jobs;
  for (size_t i = 0; i < n_jobs; ++i) {
    jobs.push_back(device_job(c, c.jobs[i], d_src.as<const __half>(), d_slots.as<uint8_t*>() + i));
    check_encode_job(jobs.back(), gcb.size(), max_values_of(c));
  }
  DeviceBuffer d_jobs = upload(jobs, "test jobs");

  const uint64_t need = cpu.bytes.size();
  const uint64_t guard = 4096;
  BlockArenaBuffer arena_buf(need + guard, "test arena");
  BlockArena arena = arena_buf.view();
  arena.capacity = need;  // the guard past it must stay untouched
  KVCOMP_CUDA_CHECK(cudaMemset(arena.base, kArenaPoison, need + guard));
  block_arena_reset(ctx, arena);

  encode_blocks_cuda(ctx, d_jobs.as<const EncodeJob>(), int(n_jobs), gcb, arena, max_values_of(c));
  ctx.synchronize();
  const BlockArenaState st = block_arena_state(ctx, arena);
  INFO(c.name);
  REQUIRE(st.error == 0);
  REQUIRE(st.used == need);
  REQUIRE_NOTHROW(block_arena_check(ctx, arena, "test arena"));

  std::vector<uint8_t> mem(need + guard);
  KVCOMP_CUDA_CHECK(cudaMemcpy(mem.data(), arena.base, mem.size(), cudaMemcpyDeviceToHost));
  const std::vector<uint8_t*> slots = download<uint8_t*>(d_slots, n_jobs);

  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (size_t i = 0; i < n_jobs; ++i) {
    INFO(job_str(c, i));
    const EncodedBlock& b = cpu.blocks[i];
    REQUIRE(slots[i] != nullptr);
    REQUIRE(slots[i] >= arena.base);
    const uint64_t off = uint64_t(slots[i] - arena.base);
    REQUIRE(off % 4 == 0);
    REQUIRE(off + b.bytes <= need);
    const long diff = first_diff(mem.data() + off, cpu.bytes.data() + b.offset, b.bytes);
    INFO("block of " << b.bytes << " bytes, mode " << int(b.mode) << ", raw reason "
                     << int(b.raw_reason) << ": first differing byte " << diff);
    REQUIRE(diff == -1);
    // The reference decoder reads the GPU block.
    std::vector<float> y(size_t(c.jobs[i].n_tokens) * size_t(c.src.head_dim));
    const BlockHeader h =
        decode_block_ref(mem.data() + off, b.bytes, c.cbs[size_t(c.jobs[i].codebook)], y.data(),
                         size_t(c.src.head_dim));
    REQUIRE(h.block_bytes == b.bytes);
    spans.emplace_back(off, b.bytes);
  }
  // The blocks tile [0, need) without overlap; the guard is untouched.
  std::sort(spans.begin(), spans.end());
  uint64_t at = 0;
  for (const auto& sp : spans) {
    REQUIRE(sp.first == at);
    at += sp.second;
  }
  REQUIRE(at == need);
  for (uint64_t i = need; i < need + guard; ++i) REQUIRE(mem[size_t(i)] == kArenaPoison);
}

// CPU blocks -> GPU decode (fp16, fp32 values, fp32 symbols) against the reference decoder.
void check_decode(const CudaContext& ctx, const Case& c, const CpuBlocks& cpu,
                  const GpuCodebooks& gcb) {
  const size_t n_jobs = c.jobs.size();
  const int hd = c.src.head_dim;
  int max_n = 1;
  for (const JobSpec& j : c.jobs) max_n = std::max(max_n, j.n_tokens);
  DeviceBuffer d_blocks = upload(cpu.bytes, "test blocks");
  DeviceBuffer d_err(sizeof(int), "test error flag");

  // Expected output of each block: fp16 bits, fp32 values, fp32 symbols.
  std::vector<std::vector<uint16_t>> exp16(n_jobs);
  std::vector<std::vector<float>> exp32(n_jobs), exp_sym(n_jobs);
  for (size_t i = 0; i < n_jobs; ++i) {
    const EncodedBlock& b = cpu.blocks[i];
    const Codebook& cb = c.cbs[size_t(c.jobs[i].codebook)];
    const size_t nv = size_t(c.jobs[i].n_tokens) * size_t(hd);
    const QuantBlock q = decode_block_symbols_ref(cpu.bytes.data() + b.offset, b.bytes, cb);
    exp32[i].resize(nv);
    decode_block_ref(cpu.bytes.data() + b.offset, b.bytes, cb, exp32[i].data(), size_t(hd));
    exp16[i].resize(nv);
    exp_sym[i].resize(nv);
    for (size_t e = 0; e < nv; ++e) {
      exp16[i][e] = q.raw() ? q.raw_values[e] : float_to_fp16(exp32[i][e]);
      exp_sym[i][e] = q.raw() ? exp32[i][e] : float(q.symbols[e]);
    }
  }

  // Output rows with an even stride (32-bit copy path) and an odd one (16-bit path).
  for (int pad : {6, 3}) {
    const int64_t stride = hd + pad;
    const size_t per_job = size_t(max_n) * size_t(stride);
    for (int out : {0, 1, 2}) {  // fp16, fp32 values, fp32 symbols
      const size_t esize = out == 0 ? 2 : 4;
      DeviceBuffer d_out(n_jobs * per_job * esize, "test decode output");
      if (out == 0) {
        const std::vector<uint16_t> poison(n_jobs * per_job, kOutPoison);
        d_out.upload(poison.data(), d_out.bytes());
      } else {
        const std::vector<uint32_t> poison(n_jobs * per_job, kOutPoison32);
        d_out.upload(poison.data(), d_out.bytes());
      }
      std::vector<DecodeJob> jobs(n_jobs);
      for (size_t i = 0; i < n_jobs; ++i) {
        jobs[i].block = d_blocks.as<const uint8_t>() + cpu.blocks[i].offset;
        jobs[i].codebook = c.jobs[i].codebook;
        jobs[i].dst = d_out.as<uint8_t>() + i * per_job * esize;
        jobs[i].dst_row_stride = stride;
      }
      DeviceBuffer d_jobs = upload(jobs, "test decode jobs");
      d_err.zero();
      if (out == 0) {
        decode_blocks_cuda(ctx, d_jobs.as<const DecodeJob>(), int(n_jobs), gcb, max_values_of(c),
                           d_err.as<int>());
      } else {
        decode_blocks_f32_cuda(ctx, d_jobs.as<const DecodeJob>(), int(n_jobs), gcb,
                               max_values_of(c), out == 2, d_err.as<int>());
      }
      ctx.synchronize();
      INFO(c.name << ": decode to "
                  << (out == 0   ? "fp16"
                      : out == 1 ? "fp32"
                                 : "symbols")
                  << ", row stride " << stride);
      REQUIRE(download<int>(d_err, 1)[0] == 0);
      if (out == 0) {
        const std::vector<uint16_t> got = download<uint16_t>(d_out, n_jobs * per_job);
        for (size_t i = 0; i < n_jobs; ++i) {
          size_t bad = 0, first_t = 0, first_c = 0;
          for (int t = 0; t < max_n; ++t) {
            for (int ch = 0; ch < stride; ++ch) {
              const uint16_t g = got[i * per_job + size_t(t) * size_t(stride) + size_t(ch)];
              const bool inside = t < c.jobs[i].n_tokens && ch < hd;
              const uint16_t want = inside ? exp16[i][size_t(t) * hd + size_t(ch)] : kOutPoison;
              if (g != want && bad++ == 0) first_t = size_t(t), first_c = size_t(ch);
            }
          }
          INFO(job_str(c, i) << ": " << bad << " wrong fp16 values, first at (" << first_t << ", "
                             << first_c << ")");
          REQUIRE(bad == 0);
        }
      } else {
        const std::vector<uint32_t> got = download<uint32_t>(d_out, n_jobs * per_job);
        for (size_t i = 0; i < n_jobs; ++i) {
          const std::vector<float>& ex = out == 1 ? exp32[i] : exp_sym[i];
          size_t bad = 0, first_t = 0, first_c = 0;
          for (int t = 0; t < max_n; ++t) {
            for (int ch = 0; ch < stride; ++ch) {
              const uint32_t g = got[i * per_job + size_t(t) * size_t(stride) + size_t(ch)];
              const bool inside = t < c.jobs[i].n_tokens && ch < hd;
              const uint32_t want =
                  inside ? float_to_bits(ex[size_t(t) * hd + size_t(ch)]) : kOutPoison32;
              if (g != want && bad++ == 0) first_t = size_t(t), first_c = size_t(ch);
            }
          }
          INFO(job_str(c, i) << ": " << bad << " wrong fp32 values, first at (" << first_t << ", "
                             << first_c << ")");
          REQUIRE(bad == 0);
        }
      }
    }
  }
}

// GPU histogram == quantize_block + histogram_add, one launch per codebook (its alphabet).
void check_histogram(const CudaContext& ctx, const Case& c, const DeviceBuffer& d_src) {
  const int n_cb = int(c.cbs.size());
  DeviceBuffer d_hist(size_t(n_cb) * kMaxAlphabet * sizeof(unsigned long long), "test histogram");
  d_hist.zero();
  DeviceBuffer d_err(sizeof(int), "test error flag");
  d_err.zero();
  std::vector<uint64_t> want(size_t(n_cb) * kMaxAlphabet, 0);
  std::vector<DeviceBuffer> keep;
  for (int cbi = 0; cbi < n_cb; ++cbi) {
    const int alphabet = c.cbs[size_t(cbi)].alphabet_size();
    std::vector<EncodeJob> jobs;
    for (const JobSpec& j : c.jobs) {
      if (j.codebook != cbi) continue;
      jobs.push_back(device_job(c, j, d_src.as<const __half>(), nullptr));
      const std::vector<float> x = gather(c, j);
      const QuantBlock q = quantize_block(j.kind, x.data(), j.n_tokens, c.src.head_dim,
                                          size_t(c.src.head_dim), j.eb, alphabet - 1);
      histogram_add(q, want.data() + size_t(cbi) * kMaxAlphabet, alphabet);
    }
    if (jobs.empty()) continue;
    keep.push_back(upload(jobs, "test histogram jobs"));
    histogram_blocks_cuda(ctx, keep.back().as<const EncodeJob>(), int(jobs.size()), alphabet,
                          d_hist.as<unsigned long long>(), n_cb, d_err.as<int>());
  }
  ctx.synchronize();
  INFO(c.name << ": histogram");
  REQUIRE(download<int>(d_err, 1)[0] == 0);
  const std::vector<unsigned long long> got =
      download<unsigned long long>(d_hist, size_t(n_cb) * kMaxAlphabet);
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("codebook " << i / kMaxAlphabet << " symbol " << i % kMaxAlphabet);
    REQUIRE(uint64_t(got[i]) == want[i]);
  }
}

void run_case(const CudaContext& ctx, const Case& c) {
  INFO("seed " << test_seed() << ", case " << c.name);
  REQUIRE(!c.jobs.empty());
  const CpuBlocks cpu = cpu_encode(c);
  // The case exercises what it claims.
  std::set<RawReason> seen;
  for (const EncodedBlock& b : cpu.blocks) seen.insert(b.raw_reason);
  for (RawReason r : c.expect_reasons) {
    INFO("expected raw reason " << int(r) << " (0: a Huffman block) among the blocks");
    REQUIRE(seen.count(r) == 1);
  }
  std::set<BlockKind> kinds;
  for (const EncodedBlock& b : cpu.blocks) {
    if (b.mode == BlockMode::kHuffman) kinds.insert(BlockKind(cpu.bytes[b.offset + 1]));
  }
  for (BlockKind k : c.expect_kinds) {
    INFO("expected Huffman blocks of kind " << kind_str(k));
    REQUIRE(kinds.count(k) == 1);
  }
  DeviceBuffer d_src = upload(c.src.h, "test source");
  const GpuCodebooks gcb(c.cbs);
  check_encode(ctx, c, cpu, d_src, gcb);
  check_decode(ctx, c, cpu, gcb);
  check_histogram(ctx, c, d_src);
}

// Codebook from the reference histogram of the case's jobs that use codebook index cbi.
Codebook codebook_from_jobs(const Case& c, int cbi, int alphabet, int max_len) {
  std::vector<uint64_t> hist(size_t(alphabet), 0);
  for (const JobSpec& j : c.jobs) {
    if (j.codebook != cbi) continue;
    const std::vector<float> x = gather(c, j);
    histogram_add(quantize_block(j.kind, x.data(), j.n_tokens, c.src.head_dim,
                                 size_t(c.src.head_dim), j.eb, alphabet - 1),
                  hist.data(), alphabet);
  }
  return Codebook::from_histogram(hist.data(), alphabet, max_len);
}

// Consecutive blocks of b tokens over the first `rows` rows, the last one partial.
void add_blocks(Case& c, int rows, int b, BlockKind kind, float eb, int cb) {
  for (int first = 0; first < rows; first += b) {
    c.jobs.push_back(JobSpec{first, std::min(b, rows - first), kind, eb, cb});
  }
}

float eb_of(BlockKind k) {
  return block_kind_is_v(k) ? 0.1f : 0.05f;
}

}  // namespace

TEST_CASE("codec gpu: every kind, block size and head_dim on K/V-like data", "[gpu][codec]") {
  CudaContext ctx;
  for (int hd : {64, 128}) {
    for (int b : {16, 32, 64, 128, 256}) {
      Case c;
      c.name = "K/V-like, head_dim " + std::to_string(hd) + ", block " + std::to_string(b);
      const int rows = 2 * b + 37;  // two full blocks and a partial one
      c.src = kv_like(rows, hd, /*outliers=*/true);
      for (BlockKind k : kKinds) {
        add_blocks(c, rows, b, k, eb_of(k), int(k) - 1);
        c.jobs.push_back(JobSpec{rows - 1, 1, k, eb_of(k), int(k) - 1});  // one token
      }
      for (BlockKind k : kKinds) {
        c.cbs.push_back(codebook_from_jobs(c, int(k) - 1, quant_max_symbol(eb_of(k), k) + 1, 8));
      }
      c.expect_reasons = {RawReason::kNone};
      c.expect_kinds = {BlockKind::kKBlock, BlockKind::kKChannel, BlockKind::kV,
                        BlockKind::kVCompact};
      run_case(ctx, c);
    }
  }
}

TEST_CASE("codec gpu: odd token counts, other head_dims, every error bound", "[gpu][codec]") {
  CudaContext ctx;
  for (int hd : {32, 64, 96, 128, 256}) {
    Case c;
    c.name = "odd counts, head_dim " + std::to_string(hd);
    const int rows = 300;
    c.src = kv_like(rows, hd, /*outliers=*/hd != 96);
    const float ebs[] = {0.01f, 0.02f, 0.05f, 0.1f, 0.2f, 0.5f};
    int cb = 0;
    for (BlockKind k : kKinds) {
      for (float eb : ebs) {
        int first = int(rng()() % 20);
        for (int n : {1, 3, 63, 65, 17, 255, 256}) {
          if (hd == 256 && n > 128 && eb < 0.05f) continue;  // keep the case small
          const int f = std::min(first, rows - n);
          c.jobs.push_back(JobSpec{f, n, k, eb, cb});
          first = (first + 7 * n) % rows;
        }
        ++cb;
      }
    }
    cb = 0;
    for (BlockKind k : kKinds) {
      for (float eb : ebs) {
        c.cbs.push_back(
            codebook_from_jobs(c, cb, quant_max_symbol(eb, k) + 1, 1 + cb % kMaxCodeLen));
        ++cb;
      }
    }
    c.expect_kinds = {BlockKind::kV, BlockKind::kVCompact};
    run_case(ctx, c);
  }
}

TEST_CASE("codec gpu: ring-indexed sources that wrap around", "[gpu][codec]") {
  CudaContext ctx;
  for (int hd : {64, 128}) {
    Case c;
    c.name = "ring, head_dim " + std::to_string(hd);
    c.ring = true;
    const int cap = 300;
    c.src = kv_like(cap, hd, true);
    for (BlockKind k : kKinds) {
      const int cb = int(k) - 1;
      c.jobs.push_back(JobSpec{250, 128, k, eb_of(k), cb});  // wraps after 50 rows
      c.jobs.push_back(JobSpec{299, 1, k, eb_of(k), cb});    // the last row
      c.jobs.push_back(JobSpec{299, 64, k, eb_of(k), cb});   // wraps after 1 row
      c.jobs.push_back(JobSpec{0, 256, k, eb_of(k), cb});    // no wrap
      c.jobs.push_back(JobSpec{1000, 65, k, eb_of(k), cb});  // first beyond the ring
      c.jobs.push_back(JobSpec{200, 256, k, eb_of(k), cb});  // wraps after 100 rows
    }
    for (BlockKind k : kKinds) {
      c.cbs.push_back(codebook_from_jobs(c, int(k) - 1, quant_max_symbol(eb_of(k), k) + 1, 8));
    }
    c.expect_kinds = {BlockKind::kVCompact};
    run_case(ctx, c);
  }
}

TEST_CASE("codec gpu: code lengths 1..12", "[gpu][codec]") {
  CudaContext ctx;
  for (int L = 1; L <= kMaxCodeLen; ++L) {
    Case c;
    c.name = "max code length " + std::to_string(L);
    const int hd = L % 2 ? 64 : 128;
    const int rows = 200;
    Codebook cb;
    float eb = 0;
    if (L == 1) {
      // Two symbols of 1 bit: data in {0, a} per group, eb 1 -> d = a, symbols 0 and 1.
      c.src = make_source(rows, hd);
      std::uniform_int_distribution<int> bit(0, 1);
      for (int r = 0; r < rows; ++r) {
        for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = bit(rng()) ? float_to_fp16(1.5f) : 0;
      }
      const uint64_t hist[2] = {10, 1};
      cb = Codebook::from_histogram(hist, 2, 1);
      eb = 1.0f;
    } else {
      // Alphabet L + 1 with geometric counts: lengths 1, 2, ..., L, L. eb such that every symbol
      // fits the alphabet (S(eb) <= L).
      std::vector<uint64_t> hist(size_t(L + 1));
      for (int s = 0; s <= L; ++s) hist[size_t(s)] = uint64_t(1) << (L - s + 1);
      cb = Codebook::from_histogram(hist.data(), L + 1, L);
      eb = 1.01f / (float(L) - 1.125f);
      REQUIRE(quant_max_symbol(eb) <= L);
      c.src = kv_like(rows, hd, true);
    }
    REQUIRE(cb.max_len() == L);
    c.cbs.push_back(cb);
    for (BlockKind k : kKinds) {
      add_blocks(c, 128, 64, k, eb, 0);
      c.jobs.push_back(JobSpec{5, 195, k, eb, 0});
      c.jobs.push_back(JobSpec{0, 256 > rows ? rows : 256, k, eb, 0});
    }
    run_case(ctx, c);
  }
}

TEST_CASE("codec gpu: one symbol, uniform and unseen symbols, unit overflow", "[gpu][codec]") {
  CudaContext ctx;
  const int hd = 128, rows = 256;
  {
    // Every group constant: only symbol 0 occurs; the codebook saw only symbol 0.
    Case c;
    c.name = "one symbol";
    c.src = make_source(rows, hd);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (int r = 0; r < rows; ++r) {
      const uint16_t v = float_to_fp16(nd(rng()));
      for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = v;  // every token constant
    }
    c.jobs.push_back(JobSpec{0, 64, BlockKind::kV, 0.1f, 0});
    c.jobs.push_back(JobSpec{64, 192, BlockKind::kV, 0.1f, 0});
    c.jobs.push_back(JobSpec{0, 64, BlockKind::kVCompact, 0.1f, 0});  // nonzero constants: kV
    c.jobs.push_back(JobSpec{0, 1, BlockKind::kKBlock, 0.05f, 1});    // one constant row
    c.jobs.push_back(JobSpec{7, 1, BlockKind::kKChannel, 0.05f, 1});  // one value per channel
    c.cbs.push_back(codebook_from_jobs(c, 0, quant_max_symbol(0.1f) + 1, 12));
    const uint64_t only0[22] = {1000};
    c.cbs.push_back(Codebook::from_histogram(only0, 22, 12));
    // A one-symbol alphabet: Huffman only when every symbol is 0, else raw (symbols).
    const uint8_t len1[1] = {1};
    c.cbs.push_back(Codebook::from_lengths(len1, 1));
    c.jobs.push_back(JobSpec{10, 100, BlockKind::kV, 0.1f, 2});
    c.jobs.push_back(JobSpec{10, 100, BlockKind::kKBlock, 0.1f, 2});
    c.expect_reasons = {RawReason::kNone, RawReason::kSymbols};
    run_case(ctx, c);
  }
  {
    // Uniform data and a uniform codebook: every symbol about equally likely.
    Case c;
    c.name = "uniform symbols";
    c.src = uniform_data(rows, hd, -1.0f, 1.0f);
    for (BlockKind k : kKinds) {
      const int a = quant_max_symbol(0.02f, k) + 1;
      const std::vector<uint64_t> flat(size_t(a), 1000);
      c.cbs.push_back(Codebook::from_histogram(flat.data(), a, 12));
      add_blocks(c, rows, 64, k, 0.02f, int(c.cbs.size()) - 1);
    }
    run_case(ctx, c);
  }
  {
    // The codebook saw one peaked histogram; the data is uniform: symbols unseen at codebook
    // time take long codes (up to 12 bits), and 256-symbol V units outgrow 255 bytes.
    Case c;
    c.name = "unseen symbols";
    c.src = uniform_data(rows, hd, -4.0f, 4.0f);
    const int a = quant_max_symbol(0.01f) + 1;
    // Counts falling 8x per symbol away from the middle: unlimited Huffman codes would exceed
    // 12 bits, so the limit binds.
    std::vector<uint64_t> peaked(size_t(a), 0);
    for (int sy = 0; sy < a; ++sy) {
      const int dist = std::abs(sy - a / 2);
      peaked[size_t(sy)] = dist < 13 ? uint64_t(1) << (40 - 3 * dist) : 0;
    }
    c.cbs.push_back(Codebook::from_histogram(peaked.data(), a, 12));
    REQUIRE(c.cbs[0].max_len() == 12);
    for (BlockKind k : kKinds) {
      add_blocks(c, rows, 64, k, 0.01f, 0);
      c.jobs.push_back(JobSpec{0, 256, k, 0.01f, 0});
    }
    c.expect_reasons = {RawReason::kNone, RawReason::kUnitOverflow};
    run_case(ctx, c);
  }
}

TEST_CASE("codec gpu: NaN/Inf, constant, subnormal and far-offset data (raw reasons)",
          "[gpu][codec]") {
  CudaContext ctx;
  for (int hd : {64, 128}) {
    Case c;
    c.name = "special values, head_dim " + std::to_string(hd);
    const int rows = 16 * 12;
    c.src = kv_like(rows, hd, true);
    // Rows 0..15: NaN (several payloads and signs) and Inf in a few places.
    const uint16_t specials[] = {0x7e00u, 0xfe00u, 0x7c01u, 0xfc01u, 0x7fffu,
                                 0xffffu, 0x7c00u, 0xfc00u, 0x7d55u};
    for (size_t i = 0; i < std::size(specials); ++i) {
      c.src.at(int(i % 16), int((i * 37 + 5) % size_t(hd))) = specials[i];
    }
    // Rows 16..31: one Inf only.
    c.src.at(20, 3) = 0x7c00u;
    // Rows 32..47: constant blocks of assorted values, one value per row.
    const float consts[] = {0.0f,  -0.0f,   1.5f, -3.25f, 65504.0f, -65504.0f, 0x1p-24f, -0x1p-24f,
                            1e-4f, 1000.0f, 0.0f, 7.0f,   -1.0f,    2.0f,      0.5f,     3.0f};
    for (int r = 32; r < 48; ++r) {
      for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = float_to_fp16(consts[r - 32]);
    }
    // Rows 48..63: the whole block one constant.
    for (int r = 48; r < 64; ++r)
      for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = float_to_fp16(-2.75f);
    // Rows 64..79: subnormal fp16 values k * 2^-24, k in -7..7: steps below fp16 (kStep) or
    // subnormal steps with symbols beyond S(eb) (kSymbols), or quantizable subnormal steps.
    std::uniform_int_distribution<int> kd(-7, 7);
    for (int r = 64; r < 80; ++r)
      for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = float_to_fp16(float(kd(rng())) * 0x1p-24f);
    // Rows 80..95: 1000 + k/2: V and K channel-wise m0 beyond int16 (kStep) at eb 0.01.
    std::uniform_int_distribution<int> hd2(0, 3);
    for (int r = 80; r < 96; ++r)
      for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = float_to_fp16(1000.0f + 0.5f * hd2(rng()));
    // Rows 96..111: 60000 or 60032: |min / d| > 2^20 at eb 0.001 (kStep for every kind).
    for (int r = 96; r < 112; ++r)
      for (int ch = 0; ch < hd; ++ch)
        c.src.at(r, ch) = float_to_fp16(hd2(rng()) % 2 ? 60032.0f : 60000.0f);
    // Rows 112..127: NaN in one V token, step failure in another (precedence).
    for (int r = 112; r < 128; ++r)
      for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = float_to_fp16(float(ch % 4));
    c.src.at(113, 9) = 0x7e00u;
    for (int ch = 0; ch < hd; ++ch) c.src.at(115, ch) = float_to_fp16(ch % 2 ? 0x1p-24f : 0.0f);
    // Rows 128..143: symbols beyond a small alphabet in one token, a subnormal step in another.
    for (int r = 128; r < 144; ++r)
      for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = float_to_fp16(float(ch));
    for (int ch = 0; ch < hd; ++ch) c.src.at(130, ch) = float_to_fp16(ch % 2 ? 0x1p-24f : 0.0f);
    // Rows 144..191: ordinary data.

    const int a = quant_max_symbol(0.01f) + 1;
    const std::vector<uint64_t> flat(size_t(a), 1);
    c.cbs.push_back(Codebook::from_histogram(flat.data(), a, 8));
    const std::vector<uint64_t> flat4(4, 1);
    c.cbs.push_back(Codebook::from_histogram(flat4.data(), 4, 8));
    for (BlockKind k : kKinds) {
      for (float eb : {0.01f, 0.05f, 0.2f, 0.5f}) {
        for (int first = 0; first < 128; first += 16)
          c.jobs.push_back(JobSpec{first, 16, k, eb, 0});
      }
      c.jobs.push_back(JobSpec{96, 16, k, 0.001f, 0});
      c.jobs.push_back(JobSpec{128, 16, k, 0.05f, 1});
      c.jobs.push_back(JobSpec{144, 48, k, 0.05f, 0});
      c.jobs.push_back(JobSpec{0, 192, k, 0.05f, 0});
    }
    c.expect_reasons = {RawReason::kNone, RawReason::kNonFinite, RawReason::kStep,
                        RawReason::kSymbols};
    run_case(ctx, c);
  }
}

TEST_CASE("codec gpu: many jobs per CTA with alternating codebooks", "[gpu][codec]") {
  CudaContext ctx;
  Case c;
  c.name = "many small blocks";
  const int hd = 64, b = 16, n_blocks = 4000;
  c.src = kv_like(b * n_blocks, hd, true);
  // A NaN every 97 blocks: raw blocks between Huffman ones.
  for (int i = 0; i < n_blocks; i += 97) c.src.at(i * b + 3, 7) = 0x7e00u;
  for (int i = 0; i < n_blocks; ++i) {
    const BlockKind k = kKinds[(i / 5) % std::size(kKinds)];
    // Codebook changes every few jobs: the decoder reloads its table.
    c.jobs.push_back(JobSpec{i * b, b, k, eb_of(k), (i / 3) % 4});
  }
  const int a = quant_max_symbol(0.05f) + 1;
  for (int L : {8, 12, 5, 10}) c.cbs.push_back(codebook_from_jobs(c, int(c.cbs.size()), a, L));
  c.expect_reasons = {RawReason::kNone, RawReason::kNonFinite};
  run_case(ctx, c);
}

TEST_CASE("codec gpu: an arena too small", "[gpu][codec]") {
  CudaContext ctx;
  Case c;
  c.name = "small arena";
  const int hd = 128;
  c.src = kv_like(64 * 40, hd, true);
  for (BlockKind k : kKinds) add_blocks(c, 64 * 40, 64, k, eb_of(k), int(k) - 1);
  for (BlockKind k : kKinds) {
    c.cbs.push_back(codebook_from_jobs(c, int(k) - 1, quant_max_symbol(eb_of(k), k) + 1, 8));
  }
  const CpuBlocks cpu = cpu_encode(c);
  DeviceBuffer d_src = upload(c.src.h, "test source");
  const GpuCodebooks gcb(c.cbs);
  const size_t n_jobs = c.jobs.size();
  const uint64_t need = cpu.bytes.size();
  for (uint64_t capacity : {uint64_t(0), (need / 2) & ~uint64_t(3), need - 4}) {
    INFO("seed " << test_seed() << ", capacity " << capacity << " of " << need);
    DeviceBuffer d_slots(n_jobs * sizeof(uint8_t*), "test slots");
    KVCOMP_CUDA_CHECK(cudaMemset(d_slots.get(), 0xff, d_slots.bytes()));
    std::vector<EncodeJob> jobs;
    for (size_t i = 0; i < n_jobs; ++i) {
      jobs.push_back(
          device_job(c, c.jobs[i], d_src.as<const __half>(), d_slots.as<uint8_t*>() + i));
    }
    DeviceBuffer d_jobs = upload(jobs, "test jobs");
    const uint64_t guard = need + 4096;  // room for everything past the capacity
    BlockArenaBuffer arena_buf(capacity + guard, "test arena");
    BlockArena arena = arena_buf.view();
    arena.capacity = capacity;
    KVCOMP_CUDA_CHECK(cudaMemset(arena.base, kArenaPoison, capacity + guard));
    block_arena_reset(ctx, arena);
    encode_blocks_cuda(ctx, d_jobs.as<const EncodeJob>(), int(n_jobs), gcb, arena,
                       max_values_of(c));
    ctx.synchronize();
    const BlockArenaState st = block_arena_state(ctx, arena);
    REQUIRE(st.error == kCodecErrOverflow);
    REQUIRE(st.used == need);  // every block asked for its bytes
    REQUIRE_THROWS_WITH(block_arena_check(ctx, arena, "test cache"),
                        HasSubstr("compressed blocks needed"));

    std::vector<uint8_t> mem(capacity + guard);
    KVCOMP_CUDA_CHECK(cudaMemcpy(mem.data(), arena.base, mem.size(), cudaMemcpyDeviceToHost));
    const std::vector<uint8_t*> slots = download<uint8_t*>(d_slots, n_jobs);
    size_t placed = 0;
    uint64_t placed_bytes = 0;
    for (size_t i = 0; i < n_jobs; ++i) {
      if (slots[i] == nullptr) continue;
      INFO(job_str(c, i));
      const EncodedBlock& b = cpu.blocks[i];
      const uint64_t off = uint64_t(slots[i] - arena.base);
      REQUIRE(off + b.bytes <= capacity);
      REQUIRE(first_diff(mem.data() + off, cpu.bytes.data() + b.offset, b.bytes) == -1);
      ++placed;
      placed_bytes += b.bytes;
    }
    REQUIRE(placed < n_jobs);
    if (capacity == 0) REQUIRE(placed == 0);
    // Nothing written past the capacity (every byte there is still poison).
    for (uint64_t i = capacity; i < capacity + guard; ++i) REQUIRE(mem[size_t(i)] == kArenaPoison);
    REQUIRE(placed_bytes <= capacity);
  }
}

TEST_CASE("codec gpu: invalid jobs and malformed blocks are skipped and flagged", "[gpu][codec]") {
  CudaContext ctx;
  const int hd = 64;
  Source src = kv_like(64, hd, true);
  DeviceBuffer d_src = upload(src.h, "test source");
  const std::vector<uint64_t> flat(22, 1);
  const std::vector<Codebook> cbs = {Codebook::from_histogram(flat.data(), 22, 8)};
  const GpuCodebooks gcb(cbs);

  DeviceBuffer d_slots(3 * sizeof(uint8_t*), "test slots");
  KVCOMP_CUDA_CHECK(cudaMemset(d_slots.get(), 0xff, d_slots.bytes()));
  EncodeJob good;
  good.src = d_src.as<const __half>();
  good.row_stride = src.stride;
  good.n_tokens = 16;
  good.head_dim = hd;
  good.kind = uint8_t(BlockKind::kKBlock);
  good.eb = 0.05f;
  good.codebook = 0;
  good.slot = d_slots.as<uint8_t*>();
  EncodeJob bad_kind = good, bad_cb = good;
  bad_kind.kind = 7;
  bad_kind.slot = d_slots.as<uint8_t*>() + 1;
  bad_cb.codebook = 3;
  bad_cb.slot = d_slots.as<uint8_t*>() + 2;
  REQUIRE_NOTHROW(check_encode_job(good, 1, 16 * hd));
  REQUIRE_THROWS_WITH(check_encode_job(bad_kind, 1, 16 * hd), HasSubstr("kind"));
  REQUIRE_THROWS_WITH(check_encode_job(bad_cb, 1, 16 * hd), HasSubstr("codebook"));
  REQUIRE_THROWS_WITH(check_encode_job(good, 1, 15 * hd), HasSubstr("max_block_values"));

  const std::vector<EncodeJob> jobs = {good, bad_kind, bad_cb};
  DeviceBuffer d_jobs = upload(jobs, "test jobs");
  BlockArenaBuffer arena_buf(1 << 16, "test arena");
  const BlockArena arena = arena_buf.view();
  block_arena_reset(ctx, arena);
  encode_blocks_cuda(ctx, d_jobs.as<const EncodeJob>(), 3, gcb, arena, 16 * hd);
  const BlockArenaState st = block_arena_state(ctx, arena);
  REQUIRE(st.error == kCodecErrBadJob);
  const std::vector<uint8_t*> slots = download<uint8_t*>(d_slots, 3);
  REQUIRE(slots[0] != nullptr);
  REQUIRE(slots[1] == nullptr);
  REQUIRE(slots[2] == nullptr);
  REQUIRE_THROWS_WITH(block_arena_check(ctx, arena, "test cache"), HasSubstr("invalid"));

  // Decoding: a packed-mode header and a truncated size are rejected, the output untouched.
  std::vector<uint8_t> bytes;
  std::vector<float> x(size_t(16) * hd);
  for (int t = 0; t < 16; ++t)
    for (int ch = 0; ch < hd; ++ch) x[size_t(t) * hd + size_t(ch)] = fp16_to_float(src.at(t, ch));
  encode_block_ref(BlockKind::kKBlock, x.data(), 16, hd, size_t(hd), 0.05f, cbs[0], bytes);
  const size_t one = bytes.size();
  const std::vector<uint8_t> block = bytes;
  bytes.insert(bytes.end(), block.begin(), block.end());
  bytes[one] = uint8_t(BlockMode::kPacked);
  bytes.insert(bytes.end(), block.begin(), block.end());
  bytes[2 * one + 16] ^= 4;  // block_bytes off by 4
  DeviceBuffer d_blocks = upload(bytes, "test blocks");
  // Jobs: the good block, the packed one, the mis-sized one, and a null job (skipped, no flag).
  DeviceBuffer d_out(4 * size_t(16) * hd * 2, "test decode output");
  KVCOMP_CUDA_CHECK(cudaMemset(d_out.get(), 0xff, d_out.bytes()));
  std::vector<DecodeJob> djobs(4);
  for (int i = 0; i < 4; ++i) {
    djobs[size_t(i)].block = i < 3 ? d_blocks.as<const uint8_t>() + size_t(i) * one : nullptr;
    djobs[size_t(i)].codebook = 0;
    djobs[size_t(i)].dst = d_out.as<uint8_t>() + size_t(i) * 16 * hd * 2;
    djobs[size_t(i)].dst_row_stride = hd;
  }
  DeviceBuffer d_djobs = upload(djobs, "test decode jobs");
  DeviceBuffer d_err(sizeof(int), "test error flag");
  d_err.zero();
  decode_blocks_cuda(ctx, d_djobs.as<const DecodeJob>(), 4, gcb, 16 * hd, d_err.as<int>());
  ctx.synchronize();
  REQUIRE(download<int>(d_err, 1)[0] == kCodecErrBadBlock);
  const std::vector<uint16_t> out = download<uint16_t>(d_out, size_t(4) * 16 * hd);
  std::vector<float> y(size_t(16) * hd);
  decode_block_ref(bytes.data(), one, cbs[0], y.data(), size_t(hd));
  for (size_t e = 0; e < size_t(16) * hd; ++e) {
    REQUIRE(out[e] == float_to_fp16(y[e]));
    for (size_t k = 1; k < 4; ++k) REQUIRE(out[k * 16 * size_t(hd) + e] == 0xffffu);
  }
  // The null job alone raises nothing.
  d_err.zero();
  decode_blocks_cuda(ctx, d_djobs.as<const DecodeJob>() + 3, 1, gcb, 16 * hd, d_err.as<int>());
  ctx.synchronize();
  REQUIRE(download<int>(d_err, 1)[0] == 0);
}

TEST_CASE("codec gpu: worst_case_block_bytes bounds every block", "[gpu][codec]") {
  // Not a GPU computation, but the GPU arena relies on it: the worst case over Huffman and raw.
  for (BlockKind k : kKinds) {
    for (int n : {1, 16, 64, 128, 256}) {
      for (int hd : {64, 128}) {
        const uint32_t w = worst_case_block_bytes(k, uint32_t(n), uint32_t(hd));
        REQUIRE(w >= raw_block_bytes(uint32_t(n), uint32_t(hd)));
        const uint32_t syms = block_unit_symbols(k, uint32_t(n), uint32_t(hd));
        const uint32_t unit = std::min<uint32_t>(kMaxUnitBytes, (syms * kMaxCodeLen + 7) / 8);
        REQUIRE(w >= huffman_block_bytes(k, uint32_t(n), uint32_t(hd),
                                         unit * block_n_units(k, uint32_t(n), uint32_t(hd))));
        REQUIRE(w % 4 == 0);
      }
    }
  }
}

TEST_CASE("codec gpu: compact V params and every fallback to 32-bit params", "[gpu][codec]") {
  // V blocks requested compact (kVCompact): GPU encode == CPU encode byte for byte, CPU blocks
  // decode on the GPU bit for bit, GPU histograms == CPU ones, whichever form each block takes.
  CudaContext ctx;
  for (int hd : {64, 128}) {
    Case c;
    c.name = "compact V, head_dim " + std::to_string(hd);
    const int rows = 16 * 10;
    c.src = kv_like(rows, hd, false);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    // Rows 0..15: token scales over 7 octaves: compact, codes up to ~224.
    for (int r = 0; r < 16; ++r)
      for (int ch = 0; ch < hd; ++ch)
        c.src.at(r, ch) = float_to_fp16(nd(rng()) * std::exp2(-7.0f * float(r % 8) / 7.0f));
    // Rows 16..31: one near-silent token (range 2^-10 of the others): e > 255, kV.
    for (int ch = 0; ch < hd; ++ch) c.src.at(21, ch) = float_to_fp16(nd(rng()) * 0x1p-10f);
    // Rows 32..47: one token in [100, 101]: m0 ~ 1000 at eb 0.1 outgrows int8, kV.
    for (int ch = 0; ch < hd; ++ch)
      c.src.at(40, ch) = float_to_fp16(100.0f + float(ch) / float(hd - 1));
    // Rows 48..63: one nonzero constant token: kV; one zero token (-0 and +0): compact.
    for (int ch = 0; ch < hd; ++ch) {
      c.src.at(50, ch) = float_to_fp16(-1.25f);
      c.src.at(55, ch) = ch % 3 ? 0x8000u : 0u;
    }
    // Rows 64..79: every token zero: compact with base 1.
    for (int r = 64; r < 80; ++r)
      for (int ch = 0; ch < hd; ++ch) c.src.at(r, ch) = 0;
    // Rows 80..159: ordinary V-like data.
    const float eb = 0.02f;
    for (int first = 0; first < 80; first += 16) {
      c.jobs.push_back(JobSpec{first, 16, BlockKind::kVCompact, 0.1f, 0});
      c.jobs.push_back(JobSpec{first, 16, BlockKind::kVCompact, eb, 1});
    }
    // Odd token counts (a params section of 2n bytes padded to 4), every error bound.
    int cb = 2;
    for (float e : {0.01f, 0.05f, 0.2f, 0.5f}) {
      for (int n : {1, 3, 17, 63, 80})
        c.jobs.push_back(JobSpec{80, n, BlockKind::kVCompact, e, cb});
      ++cb;
    }
    c.jobs.push_back(JobSpec{0, 160, BlockKind::kVCompact, 0.1f, 0});
    c.cbs.push_back(codebook_from_jobs(c, 0, quant_max_symbol(0.1f, BlockKind::kVCompact) + 1, 8));
    // Codebook 1 has the kV alphabet S(0.02) = 51 < 52: tokens whose compact symbols reach 52
    // keep their block kV.
    c.cbs.push_back(codebook_from_jobs(c, 1, quant_max_symbol(eb) + 1, 12));
    cb = 2;
    for (float e : {0.01f, 0.05f, 0.2f, 0.5f}) {
      c.cbs.push_back(codebook_from_jobs(c, cb, quant_max_symbol(e, BlockKind::kVCompact) + 1,
                                         cb % 2 ? 8 : 12));
      ++cb;
    }
    c.expect_reasons = {RawReason::kNone};
    c.expect_kinds = {BlockKind::kV, BlockKind::kVCompact};
    run_case(ctx, c);
  }
}
