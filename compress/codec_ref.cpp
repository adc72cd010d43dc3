#include "compress/codec_ref.h"

#include <cmath>
#include <cstring>

#include "runtime/error.h"
#include "runtime/half.h"

namespace kvcomp {

void validate_codec_options(const CodecOptions& o) {
  auto block_ok = [](int b) { return b == 16 || b == 32 || b == 64 || b == 128 || b == 256; };
  check(std::isfinite(o.eb_k) && o.eb_k > 0.0f, "codec option eb_k = ", o.eb_k,
        ": expected a finite value > 0");
  check(std::isfinite(o.eb_v) && o.eb_v > 0.0f, "codec option eb_v = ", o.eb_v,
        ": expected a finite value > 0");
  quant_max_symbol(o.eb_k);  // throws when the alphabet does not fit a byte
  quant_max_symbol(o.eb_v);
  check(block_ok(o.block_k), "codec option block_k = ", o.block_k,
        ": expected 16, 32, 64, 128 or 256");
  check(block_ok(o.block_v), "codec option block_v = ", o.block_v,
        ": expected 16, 32, 64, 128 or 256");
  check(o.max_code_len >= 1 && o.max_code_len <= kMaxCodeLen,
        "codec option max_code_len = ", o.max_code_len, ": expected 1..", kMaxCodeLen);
}

Codebook make_codebook(const CodecOptions& o, const uint64_t* hist, int alphabet_size) {
  if (o.fixed_codes) return Codebook::fixed_length(alphabet_size);
  return Codebook::from_histogram(hist, alphabet_size, o.max_code_len);
}

namespace {

void append(std::vector<uint8_t>& out, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}
void append_zeros(std::vector<uint8_t>& out, size_t n) {
  out.insert(out.end(), n, uint8_t(0));
}

const char* kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::kKBlock:
      return "K block-wise";
    case BlockKind::kKChannel:
      return "K channel-wise";
    case BlockKind::kV:
      return "V";
    case BlockKind::kVCompact:
      return "V compact";
  }
  return "?";
}

// The symbol of unit u, position i, in a [n_tokens, head_dim] symbol array.
size_t unit_symbol_index(BlockKind kind, int head_dim, uint32_t u, uint32_t i) {
  return block_kind_is_v(kind) ? size_t(i) * size_t(head_dim) + u
                               : size_t(u) * size_t(head_dim) + i;
}

void write_raw(const QuantBlock& q, std::vector<uint8_t>& out) {
  const uint32_t n = uint32_t(q.n_tokens) * uint32_t(q.head_dim);
  BlockHeader h{};
  h.mode = uint8_t(BlockMode::kRaw);
  h.kind = uint8_t(block_kind_widest(q.kind));  // a raw V block records kV
  h.raw_reason = uint8_t(q.raw_reason);
  h.n_tokens = uint16_t(q.n_tokens);
  h.head_dim = uint16_t(q.head_dim);
  h.block_bytes = raw_block_bytes(uint32_t(q.n_tokens), uint32_t(q.head_dim));
  h.payload_bytes = 2u * n;
  append(out, &h, sizeof h);
  append(out, q.raw_values.data(), 2u * n);
  append_zeros(out, round_up4(2u * n) - 2u * n);
}

}  // namespace

bool encode_quantized_ref(const QuantBlock& q, const Codebook& cb, std::vector<uint8_t>& out) {
  check(block_kind_valid(uint8_t(q.kind)), "encode: bad block kind ", int(q.kind));
  check(q.n_tokens >= 1 && q.n_tokens <= kMaxBlockTokens && q.head_dim >= 1 &&
            q.head_dim <= kMaxHeadDim &&
            uint64_t(q.n_tokens) * uint64_t(q.head_dim) <= kMaxBlockValues,
        "encode: block of ", q.n_tokens, " tokens x ", q.head_dim, " channels out of range");
  if (q.raw()) {
    check(q.raw_values.size() == size_t(q.n_tokens) * size_t(q.head_dim),
          "encode: raw block holds ", q.raw_values.size(), " values, expected ",
          size_t(q.n_tokens) * size_t(q.head_dim));
    write_raw(q, out);
    return true;
  }
  const uint32_t n_tokens = uint32_t(q.n_tokens), head_dim = uint32_t(q.head_dim);
  check(q.symbols.size() == size_t(n_tokens) * head_dim, "encode: block holds ", q.symbols.size(),
        " symbols, expected ", size_t(n_tokens) * head_dim);
  const bool compact = q.kind == BlockKind::kVCompact;
  const uint32_t n_params = block_n_params(q.kind, n_tokens, head_dim);
  const size_t have = compact ? q.params8.size() : q.params.size();
  check(have == n_params, "encode: block holds ", have, " params, expected ", n_params);
  check(!compact || (std::isfinite(q.v_base) && q.v_base > 0.0f),
        "encode: compact V block with base step ", q.v_base);
  for (uint8_t s : q.symbols) {
    check(s <= cb.max_symbol(), "encode: symbol ", int(s), " outside the codebook's alphabet [0, ",
          cb.max_symbol(), "]");
  }

  // Unit lengths first: a unit longer than kMaxUnitBytes makes the block unencodable.
  const uint32_t n_units = block_n_units(q.kind, n_tokens, head_dim);
  const uint32_t unit_syms = block_unit_symbols(q.kind, n_tokens, head_dim);
  std::vector<uint8_t> unit_len(n_units);
  uint32_t payload_bytes = 0;
  for (uint32_t u = 0; u < n_units; ++u) {
    uint32_t bits = 0;
    for (uint32_t i = 0; i < unit_syms; ++i) {
      bits += uint32_t(cb.length(q.symbols[unit_symbol_index(q.kind, q.head_dim, u, i)]));
    }
    const uint32_t bytes = (bits + 7u) / 8u;
    if (bytes > uint32_t(kMaxUnitBytes)) return false;
    unit_len[u] = uint8_t(bytes);
    payload_bytes += bytes;
  }

  BlockHeader h{};
  h.mode = uint8_t(BlockMode::kHuffman);
  h.kind = uint8_t(q.kind);
  h.raw_reason = uint8_t(RawReason::kNone);
  h.n_tokens = uint16_t(n_tokens);
  h.head_dim = uint16_t(head_dim);
  if (q.kind == BlockKind::kKBlock) {
    h.d = q.k_step.d;
    h.m0 = q.k_step.m0;
  } else if (compact) {
    h.d = q.v_base;
  }
  h.block_bytes = huffman_block_bytes(q.kind, n_tokens, head_dim, payload_bytes);
  h.payload_bytes = payload_bytes;

  const size_t start = out.size();
  out.reserve(start + h.block_bytes);
  append(out, &h, sizeof h);
  append(out, unit_len.data(), n_units);
  append_zeros(out, round_up4(n_units) - n_units);
  const uint32_t params_bytes = block_params_bytes(q.kind, n_tokens, head_dim);
  if (compact) {
    append(out, q.params8.data(), params_bytes);
  } else {
    append(out, q.params.data(), params_bytes);
  }
  append_zeros(out, round_up4(params_bytes) - params_bytes);

  // Payload: each unit's codes MSB-first, the last byte zero-padded.
  for (uint32_t u = 0; u < n_units; ++u) {
    uint64_t acc = 0;  // only the low nbits are pending
    int nbits = 0;
    for (uint32_t i = 0; i < unit_syms; ++i) {
      const int s = q.symbols[unit_symbol_index(q.kind, q.head_dim, u, i)];
      acc = (acc << cb.length(s)) | cb.code(s);
      nbits += cb.length(s);
      while (nbits >= 8) {
        out.push_back(uint8_t(acc >> (nbits - 8)));
        nbits -= 8;
      }
    }
    if (nbits > 0) out.push_back(uint8_t(acc << (8 - nbits)));
  }
  append_zeros(out, block_payload_section_bytes(payload_bytes) - payload_bytes);
  check(out.size() - start == h.block_bytes, "encode: internal error: wrote ", out.size() - start,
        " bytes, header says ", h.block_bytes);
  return true;
}

EncodedBlock encode_block_ref(BlockKind kind, const float* x, int n_tokens, int head_dim,
                              size_t row_stride, float eb, const Codebook& cb,
                              std::vector<uint8_t>& out, CodecBytes* acct) {
  check(cb.alphabet_size() >= 1, "encode: empty codebook");
  QuantBlock q = quantize_block(kind, x, n_tokens, head_dim, row_stride, eb, cb.max_symbol());
  EncodedBlock r;
  r.offset = out.size();
  if (!encode_quantized_ref(q, cb, out)) {
    // A unit too long for its uint8 length: store the input values raw.
    q.raw_reason = RawReason::kUnitOverflow;
    q.kind = block_kind_widest(q.kind);
    q.params.clear();
    q.params8.clear();
    q.symbols.clear();
    q.k_step = QuantStep{};
    q.v_base = 0.0f;
    q.raw_values.resize(size_t(n_tokens) * size_t(head_dim));
    for (int t = 0; t < n_tokens; ++t) {
      for (int c = 0; c < head_dim; ++c) {
        q.raw_values[size_t(t) * size_t(head_dim) + size_t(c)] =
            fp16_from_float_raw(x[size_t(t) * row_stride + size_t(c)]);
      }
    }
    encode_quantized_ref(q, cb, out);
  }
  r.bytes = out.size() - r.offset;
  r.mode = q.raw() ? BlockMode::kRaw : BlockMode::kHuffman;
  r.raw_reason = q.raw_reason;
  if (acct) {
    acct->add_block(out.data() + r.offset, r.bytes);
    if (!q.raw()) acct->add_symbols(q.symbols.data(), q.symbols.size());
  }
  return r;
}

BlockHeader read_block_header(const uint8_t* data, size_t avail) {
  check(avail >= sizeof(BlockHeader), "KV block: ", avail,
        " bytes left, fewer than a block header (", sizeof(BlockHeader), ")");
  BlockHeader h;
  std::memcpy(&h, data, sizeof h);
  check(h.mode != uint8_t(BlockMode::kPacked),
        "KV block: mode 'packed' (fixed bit width) is reserved and not supported by this decoder");
  check(h.mode == uint8_t(BlockMode::kRaw) || h.mode == uint8_t(BlockMode::kHuffman),
        "KV block: unknown mode ", int(h.mode), " (expected raw or huffman)");
  check(block_kind_valid(h.kind), "KV block: unknown kind ", int(h.kind));
  const BlockKind kind = BlockKind(h.kind);
  check(h.n_tokens >= 1 && h.head_dim >= 1, "KV block: ", h.n_tokens, " tokens x ", h.head_dim,
        " channels, expected at least 1 x 1");
  check(uint64_t(h.n_tokens) * h.head_dim <= kMaxBlockValues, "KV block: ", h.n_tokens,
        " tokens x ", h.head_dim, " channels, more than a block holds (", kMaxBlockValues, ")");
  const uint32_t n_values = uint32_t(h.n_tokens) * uint32_t(h.head_dim);
  if (h.mode == uint8_t(BlockMode::kRaw)) {
    check(h.raw_reason >= 1 && h.raw_reason <= 4, "KV block: raw block with raw reason ",
          int(h.raw_reason));
    check(kind != BlockKind::kVCompact,
          "KV block: raw block of kind 'V compact' (raw V blocks "
          "record kind V)");
    check(h.d == 0.0f && h.m0 == 0, "KV block: raw block with step or offset set");
    check(h.payload_bytes == 2u * n_values &&
              h.block_bytes == raw_block_bytes(h.n_tokens, h.head_dim),
          "KV block: raw block of ", h.n_tokens, " x ", h.head_dim, " with payload ",
          h.payload_bytes, " and size ", h.block_bytes, " bytes, expected ", 2u * n_values, " and ",
          raw_block_bytes(h.n_tokens, h.head_dim));
  } else {
    check(h.raw_reason == 0, "KV block: Huffman block with raw reason ", int(h.raw_reason));
    const uint32_t n_units = block_n_units(kind, h.n_tokens, h.head_dim);
    check(h.payload_bytes >= n_units && h.payload_bytes <= n_units * uint32_t(kMaxUnitBytes),
          "KV block: payload of ", h.payload_bytes, " bytes for ", n_units, " units");
    check(h.block_bytes == huffman_block_bytes(kind, h.n_tokens, h.head_dim, h.payload_bytes),
          "KV block: size ", h.block_bytes, " bytes, expected ",
          huffman_block_bytes(kind, h.n_tokens, h.head_dim, h.payload_bytes), " for a ",
          kind_name(kind), " block of ", h.n_tokens, " x ", h.head_dim, " with ", h.payload_bytes,
          " payload bytes");
    if (kind == BlockKind::kKBlock) {
      check(std::isfinite(h.d) && h.d > 0.0f && round_fp16(h.d) == h.d, "KV block: K step ", h.d,
            " is not a positive finite fp16 value");
      // The encoder keeps |min / d| <= kQuantMaxRatio, so |m0| <= 2^20.
      check(h.m0 >= -(1 << 20) && h.m0 <= (1 << 20), "KV block: K offset m0 = ", h.m0,
            " out of range (|m0| <= 2^20)");
    } else if (kind == BlockKind::kVCompact) {
      // b >= 2^-24 keeps every compact step a normal fp32 (format.h).
      check(std::isfinite(h.d) && h.d > 0.0f && round_fp16(h.d) == h.d && h.m0 == 0,
            "KV block: compact V base step ", h.d, " (offset ", h.m0,
            ") is not a positive finite fp16 value with offset 0");
    } else {
      check(h.d == 0.0f && h.m0 == 0, "KV block: ", kind_name(kind),
            " block with header step or offset set");
    }
  }
  check(h.block_bytes <= avail, "KV block: ", h.block_bytes, " bytes, only ", avail, " available");
  return h;
}

QuantBlock decode_block_symbols_ref(const uint8_t* data, size_t avail, const Codebook& cb) {
  const BlockHeader h = read_block_header(data, avail);
  QuantBlock q;
  q.kind = BlockKind(h.kind);
  q.n_tokens = h.n_tokens;
  q.head_dim = h.head_dim;
  const size_t n_values = size_t(h.n_tokens) * size_t(h.head_dim);
  if (h.mode == uint8_t(BlockMode::kRaw)) {
    q.raw_reason = RawReason(h.raw_reason);
    q.raw_values.resize(n_values);
    std::memcpy(q.raw_values.data(), data + raw_block_values_offset(), 2 * n_values);
    return q;
  }
  check(cb.alphabet_size() >= 1, "KV block: decoding with an empty codebook");

  const uint32_t n_units = block_n_units(q.kind, h.n_tokens, h.head_dim);
  const uint32_t unit_syms = block_unit_symbols(q.kind, h.n_tokens, h.head_dim);
  const uint32_t n_params = block_n_params(q.kind, h.n_tokens, h.head_dim);
  const uint8_t* lengths = data + block_lengths_offset();
  const uint8_t* payload = data + block_payload_offset(q.kind, h.n_tokens, h.head_dim);

  if (q.kind == BlockKind::kKBlock) q.k_step = QuantStep{h.d, h.m0};
  const uint8_t* params = data + block_params_offset(q.kind, h.n_tokens, h.head_dim);
  if (q.kind == BlockKind::kVCompact) {
    // Every (e, m0) byte pair is valid; the base step was checked with the header.
    q.v_base = h.d;
    q.params8.resize(n_params);
    std::memcpy(q.params8.data(), params, sizeof(QuantParams8) * n_params);
  } else {
    q.params.resize(n_params);
    if (n_params > 0) std::memcpy(q.params.data(), params, sizeof(QuantParams16) * n_params);
    for (uint32_t i = 0; i < n_params; ++i) {
      const uint16_t d = q.params[i].d;
      check((d & 0x8000u) == 0 && d != 0 && d < 0x7c00u, "KV block: param ", i, " has step bits ",
            d, ", not a positive finite fp16 value");
    }
  }

  uint32_t sum = 0;
  for (uint32_t u = 0; u < n_units; ++u) sum += lengths[u];
  check(sum == h.payload_bytes, "KV block: unit lengths sum to ", sum, " bytes, header says ",
        h.payload_bytes);

  const int L = cb.max_len();
  const std::vector<DecodeEntry>& table = cb.table();
  q.symbols.resize(n_values);
  uint32_t start = 0;
  for (uint32_t u = 0; u < n_units; ++u) {
    const uint8_t* unit = payload + start;
    const uint32_t len = lengths[u];
    const uint32_t len_bits = 8u * len;
    auto byte_at = [&](uint32_t i) -> uint32_t { return i < len ? unit[i] : 0u; };
    uint32_t p = 0;  // bit position in the unit
    for (uint32_t i = 0; i < unit_syms; ++i) {
      check(p < len_bits, "KV block: unit ", u, " ends after ", i, " of ", unit_syms, " symbols");
      // The next L bits, MSB-first, zeros past the unit's end (L <= 12, p % 8 <= 7: 24 bits).
      const uint32_t b = p >> 3;
      const uint32_t window = (byte_at(b) << 16) | (byte_at(b + 1) << 8) | byte_at(b + 2);
      const uint32_t idx = ((window << (p & 7u)) & 0xffffffu) >> (24 - L);
      const DecodeEntry e = table[idx];
      check(e.len != 0 && p + e.len <= len_bits, "KV block: unit ", u, " symbol ", i,
            " does not decode with this codebook");
      q.symbols[unit_symbol_index(q.kind, h.head_dim, u, i)] = e.symbol;
      p += e.len;
    }
    check((p + 7u) / 8u == len, "KV block: unit ", u, " decodes in ", (p + 7u) / 8u,
          " bytes, its length says ", len);
    check((p & 7u) == 0 || (unit[len - 1] & ((1u << (8u - (p & 7u))) - 1u)) == 0, "KV block: unit ",
          u, " has nonzero padding bits");
    start += len;
  }
  return q;
}

BlockHeader decode_block_ref(const uint8_t* data, size_t avail, const Codebook& cb, float* out,
                             size_t out_stride) {
  const QuantBlock q = decode_block_symbols_ref(data, avail, cb);
  dequantize_block(q, out, out_stride);
  BlockHeader h;
  std::memcpy(&h, data, sizeof h);
  return h;
}

}  // namespace kvcomp
