#include "compress/accounting.h"

#include "compress/codec_ref.h"
#include "compress/huffman.h"
#include "runtime/error.h"

namespace kvcomp {

void CodecBytes::add_block(const uint8_t* block, size_t avail) {
  add_header(read_block_header(block, avail));
}

void CodecBytes::add_header(const BlockHeader& h) {
  const BlockKind kind = BlockKind(h.kind);
  const uint64_t n_values = uint64_t(h.n_tokens) * h.head_dim;
  headers += sizeof(BlockHeader);
  this->n_values += n_values;
  ++n_blocks;
  if (h.mode == uint8_t(BlockMode::kRaw)) {
    ++n_raw_blocks;
    n_raw_values += n_values;
    raw += h.payload_bytes;
    padding += h.block_bytes - sizeof(BlockHeader) - h.payload_bytes;
    return;
  }
  const uint64_t n_units = block_n_units(kind, h.n_tokens, h.head_dim);
  const uint64_t param_bytes = block_params_bytes(kind, h.n_tokens, h.head_dim);
  if (kind == BlockKind::kVCompact) ++n_compact_blocks;
  unit_lengths += n_units;
  params += param_bytes;
  payload += h.payload_bytes;
  padding += h.block_bytes - sizeof(BlockHeader) - n_units - param_bytes - h.payload_bytes;
}

void CodecBytes::add_codebook(const Codebook& cb) {
  codebooks += cb.stored_bytes();
}

void CodecBytes::add_symbols(const uint8_t* symbols, size_t n) {
  for (size_t i = 0; i < n; ++i) ++hist[symbols[i]];
}

CodecBytes& CodecBytes::operator+=(const CodecBytes& o) {
  headers += o.headers;
  unit_lengths += o.unit_lengths;
  params += o.params;
  payload += o.payload;
  padding += o.padding;
  raw += o.raw;
  codebooks += o.codebooks;
  n_values += o.n_values;
  n_blocks += o.n_blocks;
  n_raw_blocks += o.n_raw_blocks;
  n_raw_values += o.n_raw_values;
  n_compact_blocks += o.n_compact_blocks;
  for (int s = 0; s < kMaxAlphabet; ++s) hist[s] += o.hist[s];
  return *this;
}

double CodecBytes::bits_per_value() const {
  return n_values == 0 ? 0.0 : 8.0 * double(total_bytes()) / double(n_values);
}

double CodecBytes::ratio_to_fp16() const {
  return total_bytes() == 0 ? 0.0 : 2.0 * double(n_values) / double(total_bytes());
}

double CodecBytes::entropy_bits_per_symbol() const {
  uint64_t n = 0;
  for (int s = 0; s < kMaxAlphabet; ++s) n += hist[s];
  return n == 0 ? 0.0 : entropy_bits(hist, kMaxAlphabet) / double(n);
}

double CodecBytes::payload_bits_per_coded_value() const {
  const uint64_t coded = n_values - n_raw_values;
  return coded == 0 ? 0.0 : 8.0 * double(payload) / double(coded);
}

}  // namespace kvcomp
