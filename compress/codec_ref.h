// KVComp codec, CPU reference: options, block encoder and decoder. The ground truth for the GPU
// encoder (which must produce bit-identical blocks) and decoders, and the decoder the CPU
// attention path calls. Format: compress/format.h; quantization: compress/quantize.h; codebooks:
// compress/huffman.h; byte accounting: compress/accounting.h.
//
// Typical use, per layer and KV head:
//   QuantBlock q = quantize_block(kind, x, n, head_dim, stride, eb, quant_max_symbol(eb));
//   histogram_add(q, hist, alphabet);                // over the prefill's blocks
//   Codebook cb = Codebook::from_histogram(hist, alphabet, opts.max_code_len);
//   encode_block_ref(kind, x, n, head_dim, stride, eb, cb, bytes);   // every block
//   decode_block_ref(bytes.data() + off, bytes.size() - off, cb, out, head_dim);
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "compress/accounting.h"
#include "compress/format.h"
#include "compress/huffman.h"
#include "compress/quantize.h"

namespace kvcomp {

struct CodecOptions {
  float eb_k = 0.05f;              // relative error bound of K blocks
  float eb_v = 0.1f;               // relative error bound of V tokens
  int block_k = 64;                // B_K, tokens per K block: 16, 32, 64, 128 or 256
  int block_v = 128;               // B_V, tokens per V block: 16, 32, 64, 128 or 256
  int max_code_len = 8;            // 1..12; raised to ceil(log2(alphabet)) when lower
  bool k_channelwise = false;      // K params per channel within a block (comparison variant)
  bool codebook_per_head = false;  // one codebook per (layer, K|V, KV head) instead of per layer
  bool v_params16 = true;  // V blocks with 16-bit token params (kVCompact) where they allow it;
                           // false: every V block keeps {fp16 d, int16 m0} (kV, 32 bits/token)
  bool fixed_codes = false;  // fixed-length codes (Codebook::fixed_length) instead of Huffman
                             // codes from the data: the same symbols in the same block format,
                             // larger, decoded without a serial dependency (kvcomp-fixed)

  BlockKind k_kind() const { return k_channelwise ? BlockKind::kKChannel : BlockKind::kKBlock; }
  // The kind V blocks are requested as (the encoder may write kV for a kVCompact request).
  BlockKind v_kind() const { return v_params16 ? BlockKind::kVCompact : BlockKind::kV; }
  int k_alphabet() const { return quant_max_symbol(eb_k, k_kind()) + 1; }
  int v_alphabet() const { return quant_max_symbol(eb_v, v_kind()) + 1; }
};

// Throws Error naming the option and the accepted values when an option is out of range.
void validate_codec_options(const CodecOptions& o);

// The codebook of an alphabet under the options: the fixed-length code when o.fixed_codes (hist
// is then not read and may be null), else Huffman codes of hist limited to o.max_code_len.
Codebook make_codebook(const CodecOptions& o, const uint64_t* hist, int alphabet_size);

struct EncodedBlock {
  size_t offset = 0;  // where the block starts in the output vector
  size_t bytes = 0;   // == header.block_bytes
  BlockMode mode = BlockMode::kHuffman;
  RawReason raw_reason = RawReason::kNone;
};

// Encodes one block of one KV head, x [n_tokens, head_dim] fp32 (row t at x + t * row_stride),
// quantized with bound eb and coded with cb (whose alphabet bounds the symbols), and appends it
// to out. kind is the request (kVCompact: compact V params where the block allows them, else kV).
// Falls back to a raw block (see RawReason). When acct is given, adds the block's bytes and its
// symbols to it. Throws Error on bad sizes or eb.
EncodedBlock encode_block_ref(BlockKind kind, const float* x, int n_tokens, int head_dim,
                              size_t row_stride, float eb, const Codebook& cb,
                              std::vector<uint8_t>& out, CodecBytes* acct = nullptr);

// Serializes an already quantized block (raw ones included). A Huffman block whose unit would
// exceed kMaxUnitBytes cannot become raw without the input values: returns false and appends
// nothing. Otherwise appends the block and returns true.
bool encode_quantized_ref(const QuantBlock& q, const Codebook& cb, std::vector<uint8_t>& out);

// Reads and validates the header of the block at data (avail bytes readable): mode, kind, sizes
// and block_bytes <= avail. Rejects kPacked. Throws Error naming what is wrong.
BlockHeader read_block_header(const uint8_t* data, size_t avail);

// Decodes a block into its quantized form (symbols + params, or the raw fp16 values), by table
// lookup. Throws Error on a malformed block or a stream that does not decode with cb.
QuantBlock decode_block_symbols_ref(const uint8_t* data, size_t avail, const Codebook& cb);

// Decodes a block to fp32 out [n_tokens, head_dim] (row t at out + t * out_stride): dequantized
// values, or the fp16 values of a raw block. The entry point of the CPU attention path. Returns
// the block's header (n_tokens, block_bytes to step to the next block).
BlockHeader decode_block_ref(const uint8_t* data, size_t avail, const Codebook& cb, float* out,
                             size_t out_stride);

}  // namespace kvcomp
