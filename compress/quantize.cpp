#include "compress/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/error.h"
#include "runtime/half.h"

namespace kvcomp {

int quant_max_symbol(float eb) {
  check(std::isfinite(eb) && eb > 0.0f, "error bound eb = ", eb, ": expected a finite value > 0");
  // Host-side constant, computed once per codebook: double keeps it an upper bound (the 1e-9
  // margin covers the double roundings of this expression).
  const double ratio = (1.0 + 0x1p-10) * (1.0 + 0x1p-22) / double(eb);
  const double s = std::floor(ratio + 1.0 + 0x1p-3 + 1e-9);
  check(s <= 255.0, "error bound eb = ", eb, ": its alphabet needs symbols up to ", s,
        ", more than a byte holds (eb must be >= about 0.004)");
  return int(s);
}

int quant_max_symbol(float eb, BlockKind kind) {
  const int s = quant_max_symbol(eb);
  if (kind != BlockKind::kVCompact) return s;
  // A compact step is at most one table step (2^(1/32), with the two fp32 roundings of each step:
  // (1 + 2^-24)^2 / (1 - 2^-24)^2 < 1 + 2^-21) below the kV step, which S(eb) assumes.
  const double ratio =
      (1.0 + 0x1p-10) * (1.0 + 0x1p-22) * (1.0 + 0x1p-21) * std::exp2(1.0 / 32.0) / double(eb);
  const double sc = std::floor(ratio + 1.0 + 0x1p-3 + 1e-9);
  return int(std::min(sc, double(kMaxAlphabet - 1)));
}

uint16_t fp16_round_down(float t) {
  uint16_t h = float_to_fp16(t);
  // t >= 0: fp16 bit patterns of non-negative values are ordered, so one ulp down is h - 1.
  if (h != 0 && fp16_to_float(h) > t) --h;
  return h;
}

uint16_t fp16_from_float_raw(float x) {
  const uint32_t u = float_to_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
    uint16_t mant = uint16_t((u >> 13) & 0x3ffu);
    if (mant == 0) mant = 0x200u;
    return uint16_t(sign | 0x7c00u | mant);
  }
  return float_to_fp16(x);
}

RawReason quant_group_step(float mn, float mx, float eb, bool int16_m0, QuantStep* step) {
  QuantStep st;
  if (mx == mn) {
    const uint16_t h = float_to_fp16(std::fabs(mn));
    if (h == 0x7c00u) return RawReason::kStep;  // |mn| beyond fp16
    if (h == 0) {
      st.d = 1.0f;
      st.m0 = 0;
    } else {
      st.d = fp16_to_float(h);
      st.m0 = mn > 0.0f ? 1 : -1;
    }
    *step = st;
    return RawReason::kNone;
  }
  const float range = mx - mn;
  const float t = eb * range;
  const uint16_t h = fp16_round_down(t);
  if (h == 0 || h >= 0x7c00u) return RawReason::kStep;  // t below the smallest fp16, or Inf
  st.d = fp16_to_float(h);
  const float qmn = mn / st.d;
  const float qmx = mx / st.d;
  if (!(std::fabs(qmn) <= kQuantMaxRatio && std::fabs(qmx) <= kQuantMaxRatio)) {
    return RawReason::kStep;
  }
  st.m0 = int32_t(rintf(qmn));
  if (int16_m0 && (st.m0 < -32768 || st.m0 > 32767)) return RawReason::kStep;
  *step = st;
  return RawReason::kNone;
}

QuantStep QuantBlock::step_of(int token, int channel) const {
  switch (kind) {
    case BlockKind::kKBlock:
      return k_step;
    case BlockKind::kKChannel:
      return QuantStep{fp16_to_float(params[size_t(channel)].d), params[size_t(channel)].m0};
    case BlockKind::kV:
      return QuantStep{fp16_to_float(params[size_t(token)].d), params[size_t(token)].m0};
    case BlockKind::kVCompact:
      return QuantStep{v_compact_step(v_base, params8[size_t(token)].e, kVStepTable),
                       params8[size_t(token)].m0};
  }
  fail("QuantBlock: bad kind ", int(kind));
}

namespace {

// Quantizes one group of `count` values at x[i * stride] into sym[i * sym_stride].
// Returns kNone, kStep or kSymbols; on kNone fills *st.
RawReason quant_group(const float* x, int count, size_t stride, float eb, bool int16_m0,
                      int max_symbol, QuantStep* st, uint8_t* sym, size_t sym_stride) {
  float mn = x[0], mx = x[0];
  for (int i = 1; i < count; ++i) {
    const float v = x[size_t(i) * stride];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  const RawReason r = quant_group_step(mn, mx, eb, int16_m0, st);
  if (r != RawReason::kNone) return r;
  bool over = false;
  for (int i = 0; i < count; ++i) {
    const int32_t s = quant_symbol(x[size_t(i) * stride], *st);
    // s >= 0 holds by monotonicity of division and rintf; checked anyway.
    if (s < 0 || s > max_symbol) {
      over = true;
      continue;
    }
    sym[size_t(i) * sym_stride] = uint8_t(s);
  }
  return over ? RawReason::kSymbols : RawReason::kNone;
}

// The compact form of a V block (format.h) from its tokens' ranges [mn[t], mx[t]] and kV steps
// st[t]: true, with q.v_base, q.params8 and st replaced by the compact steps, when every token
// allows it; false (nothing changed) otherwise. The GPU encoder repeats it step for step.
bool v_compact_params(const std::vector<float>& mn, const std::vector<float>& mx, int max_symbol,
                      std::vector<QuantStep>& st, QuantBlock& q) {
  const size_t n = st.size();
  float b = 0.0f;  // the largest step of a non-constant token
  for (size_t t = 0; t < n; ++t)
    if (mx[t] != mn[t]) b = st[t].d > b ? st[t].d : b;
  if (b == 0.0f) b = 1.0f;
  std::vector<QuantParams8> p(n);
  std::vector<QuantStep> c(n);
  for (size_t t = 0; t < n; ++t) {
    uint32_t e = 0;
    if (mx[t] == mn[t]) {
      if (st[t].m0 != 0) return false;  // a nonzero constant: kV keeps its fp16 value exactly
    } else {
      e = v_compact_code(b, st[t].d, kVStepTable);
      if (e > kVCompactMaxCode) return false;  // steps spread over more than 8 octaves
    }
    const float d = v_compact_step(b, e, kVStepTable);
    const int32_t m0 = mx[t] == mn[t] ? 0 : int32_t(rintf(mn[t] / d));
    if (m0 < -128 || m0 > 127) return false;
    if (int32_t(rintf(mx[t] / d)) - m0 > max_symbol) return false;
    p[t] = QuantParams8{uint8_t(e), int8_t(m0)};
    c[t] = QuantStep{d, m0};
  }
  q.v_base = b;
  q.params8 = std::move(p);
  st = std::move(c);
  return true;
}

// Highest-precedence reason of two (kNone counts as lowest).
RawReason first_reason(RawReason a, RawReason b) {
  if (a == RawReason::kNone) return b;
  if (b == RawReason::kNone) return a;
  return uint8_t(a) < uint8_t(b) ? a : b;
}

}  // namespace

QuantBlock quantize_block(BlockKind kind, const float* x, int n_tokens, int head_dim,
                          size_t row_stride, float eb, int max_symbol) {
  check(block_kind_valid(uint8_t(kind)), "quantize_block: bad block kind ", int(kind));
  check(n_tokens >= 1 && n_tokens <= kMaxBlockTokens, "quantize_block: n_tokens = ", n_tokens,
        ", expected 1..", kMaxBlockTokens);
  check(head_dim >= 1 && head_dim <= kMaxHeadDim, "quantize_block: head_dim = ", head_dim,
        ", expected 1..", kMaxHeadDim);
  check(uint64_t(n_tokens) * uint64_t(head_dim) <= kMaxBlockValues, "quantize_block: ", n_tokens,
        " x ", head_dim, " values, more than a block holds (", kMaxBlockValues, ")");
  check(row_stride >= size_t(head_dim), "quantize_block: row stride ", row_stride, " < head_dim ",
        head_dim);
  check(std::isfinite(eb) && eb > 0.0f, "quantize_block: error bound eb = ", eb,
        ", expected a finite value > 0");
  check(max_symbol >= 0 && max_symbol < kMaxAlphabet, "quantize_block: max_symbol = ", max_symbol,
        ", expected 0..", kMaxAlphabet - 1);

  QuantBlock q;
  q.kind = kind;
  q.n_tokens = n_tokens;
  q.head_dim = head_dim;
  const size_t n = size_t(n_tokens) * size_t(head_dim);
  const size_t hd = size_t(head_dim);

  RawReason reason = RawReason::kNone;
  for (int t = 0; t < n_tokens && reason == RawReason::kNone; ++t) {
    for (int c = 0; c < head_dim; ++c) {
      if (!std::isfinite(x[size_t(t) * row_stride + size_t(c)])) {
        reason = RawReason::kNonFinite;
        break;
      }
    }
  }

  if (reason == RawReason::kNone) {
    q.symbols.assign(n, 0);
    switch (kind) {
      case BlockKind::kKBlock: {
        // One group over the whole block: min/max over every row, then the symbols.
        float mn = x[0], mx = x[0];
        for (int t = 0; t < n_tokens; ++t) {
          const float* row = x + size_t(t) * row_stride;
          for (int c = 0; c < head_dim; ++c) {
            mn = row[c] < mn ? row[c] : mn;
            mx = row[c] > mx ? row[c] : mx;
          }
        }
        reason = quant_group_step(mn, mx, eb, /*int16_m0=*/false, &q.k_step);
        if (reason != RawReason::kNone) break;
        for (int t = 0; t < n_tokens; ++t) {
          const float* row = x + size_t(t) * row_stride;
          for (int c = 0; c < head_dim; ++c) {
            const int32_t s = quant_symbol(row[c], q.k_step);
            if (s < 0 || s > max_symbol) {
              reason = RawReason::kSymbols;
              continue;
            }
            q.symbols[size_t(t) * hd + size_t(c)] = uint8_t(s);
          }
        }
        break;
      }
      case BlockKind::kKChannel:
        q.params.resize(hd);
        for (int c = 0; c < head_dim; ++c) {
          QuantStep st;
          const RawReason r = quant_group(x + c, n_tokens, row_stride, eb, /*int16_m0=*/true,
                                          max_symbol, &st, q.symbols.data() + c, hd);
          reason = first_reason(reason, r);
          q.params[size_t(c)] = QuantParams16{float_to_fp16(st.d), int16_t(st.m0)};
        }
        break;
      case BlockKind::kV:
      case BlockKind::kVCompact: {
        // Per token: its range and kV step; then the compact form if asked for and possible;
        // then the symbols with the chosen steps.
        const size_t n = size_t(n_tokens);
        std::vector<float> mn(n), mx(n);
        std::vector<QuantStep> st(n);
        for (size_t t = 0; t < n; ++t) {
          const float* row = x + t * row_stride;
          mn[t] = mx[t] = row[0];
          for (int c = 1; c < head_dim; ++c) {
            mn[t] = row[c] < mn[t] ? row[c] : mn[t];
            mx[t] = row[c] > mx[t] ? row[c] : mx[t];
          }
          reason =
              first_reason(reason, quant_group_step(mn[t], mx[t], eb, /*int16_m0=*/true, &st[t]));
        }
        if (reason != RawReason::kNone) break;
        q.kind = BlockKind::kV;
        if (kind == BlockKind::kVCompact && v_compact_params(mn, mx, max_symbol, st, q)) {
          q.kind = BlockKind::kVCompact;
        } else {
          q.params.resize(n);
          for (size_t t = 0; t < n; ++t)
            q.params[t] = QuantParams16{float_to_fp16(st[t].d), int16_t(st[t].m0)};
        }
        for (size_t t = 0; t < n; ++t) {
          const float* row = x + t * row_stride;
          for (int c = 0; c < head_dim; ++c) {
            const int32_t s = quant_symbol(row[c], st[t]);
            if (s < 0 || s > max_symbol) {
              reason = RawReason::kSymbols;
              continue;
            }
            q.symbols[t * hd + size_t(c)] = uint8_t(s);
          }
        }
        break;
      }
    }
  }

  if (reason != RawReason::kNone) {
    q.raw_reason = reason;
    q.kind = block_kind_widest(kind);  // a raw V block records kV
    q.k_step = QuantStep{};
    q.v_base = 0.0f;
    q.params.clear();
    q.params8.clear();
    q.symbols.clear();
    q.raw_values.resize(n);
    for (int t = 0; t < n_tokens; ++t) {
      const float* row = x + size_t(t) * row_stride;
      for (int c = 0; c < head_dim; ++c)
        q.raw_values[size_t(t) * hd + size_t(c)] = fp16_from_float_raw(row[c]);
    }
  }
  return q;
}

void dequantize_block(const QuantBlock& q, float* out, size_t out_stride) {
  const size_t hd = size_t(q.head_dim);
  check(out_stride >= hd, "dequantize_block: out stride ", out_stride, " < head_dim ", hd);
  if (q.raw()) {
    check(q.raw_values.size() == size_t(q.n_tokens) * hd, "dequantize_block: raw block holds ",
          q.raw_values.size(), " values, expected ", size_t(q.n_tokens) * hd);
    for (int t = 0; t < q.n_tokens; ++t) {
      for (size_t c = 0; c < hd; ++c) {
        out[size_t(t) * out_stride + c] = fp16_to_float(q.raw_values[size_t(t) * hd + c]);
      }
    }
    return;
  }
  check(q.symbols.size() == size_t(q.n_tokens) * hd, "dequantize_block: block holds ",
        q.symbols.size(), " symbols, expected ", size_t(q.n_tokens) * hd);
  const size_t n_params = q.kind == BlockKind::kVCompact ? q.params8.size() : q.params.size();
  check(n_params == block_n_params(q.kind, uint32_t(q.n_tokens), uint32_t(q.head_dim)),
        "dequantize_block: block holds ", n_params, " params, expected ",
        block_n_params(q.kind, uint32_t(q.n_tokens), uint32_t(q.head_dim)));
  const bool v = block_kind_is_v(q.kind);
  for (int t = 0; t < q.n_tokens; ++t) {
    const uint8_t* sym = q.symbols.data() + size_t(t) * hd;
    float* row = out + size_t(t) * out_stride;
    if (v) {  // one step per token
      const QuantStep st = q.step_of(t, 0);
      for (size_t c = 0; c < hd; ++c) row[c] = dequant_value(sym[c], st);
    } else {
      for (size_t c = 0; c < hd; ++c) row[c] = dequant_value(sym[c], q.step_of(t, int(c)));
    }
  }
}

void histogram_add(const QuantBlock& q, uint64_t* hist, int alphabet_size) {
  if (q.raw()) return;
  for (uint8_t s : q.symbols) {
    check(s < alphabet_size, "histogram_add: symbol ", int(s), " outside the alphabet [0, ",
          alphabet_size - 1, "]");
    ++hist[s];
  }
}

}  // namespace kvcomp
