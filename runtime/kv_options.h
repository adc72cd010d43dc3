// The --kv option: how the KV cache is stored and which attention path reads it.
#pragma once

#include <string>
#include <vector>

namespace kvcomp {

enum class KvMode {
  kFp32,           // CPU only: the cache keeps fp32 values (the exact reference)
  kFp16,           // uncompressed fp16 cache; on the GPU, split-K flash-decoding attention
  kFp16Cublas,     // the same cache; on the GPU, cuBLAS GEMM attention (the paper's baseline)
  kKvcomp,         // compressed cache, fused decode-and-attend kernel
  kKvcompUnfused,  // compressed cache, decoded to an fp16 scratch buffer, then cuBLAS attention
  kKvcompFixed,    // the same quantized symbols in fixed-length codes (larger; unpacked without
                   // table lookups by the fused kernel)
  // Fixed-bit baselines (compress/fixedbit.h): the same blocks and recent window as kvcomp,
  // dequantized to fp16 for attention.
  kKivi2,  // KIVI, 2 bits: K per channel within a block, V per token in groups of channels
  kKivi4,  // KIVI, 4 bits
  kInt8,   // 8 bits per token (asymmetric, one scale/zero per token and KV head), K and V
  kFp8,    // fp8 e4m3 with one scale per block and KV head (max |x| / 448), K and V
};

// True for the modes whose cache is KVComp-compressed.
inline bool kv_mode_compressed(KvMode m) {
  return m == KvMode::kKvcomp || m == KvMode::kKvcompUnfused || m == KvMode::kKvcompFixed;
}
// True for the fixed-bit baselines.
inline bool kv_mode_fixedbit(KvMode m) {
  return m == KvMode::kKivi2 || m == KvMode::kKivi4 || m == KvMode::kInt8 || m == KvMode::kFp8;
}

struct KvOptions {
  KvMode mode = KvMode::kFp16;
  // KVComp parameters (DESIGN.md; defaults are the paper's).
  float eb_k = 0.05f;          // relative error bound of K
  float eb_v = 0.1f;           // relative error bound of V
  int block_k = 64;            // tokens per K block
  int block_v = 128;           // tokens per V block
  int window_k = 128;          // recent K tokens kept uncompressed
  int window_v = 256;          // recent V tokens kept uncompressed
  int max_code_len = 8;        // longest Huffman code (bits)
  bool k_channelwise = false;  // K quantized per channel within a block (for comparison)
  bool codebook_per_head = false;
  bool v_params16 = true;  // V blocks with 16-bit token params where they allow it (--v-params32:
                           // off, every V block keeps 32-bit {fp16 d, int16 m0} token params)
  // Fixed-bit baselines: V channels per (scale, zero) group of kivi2/kivi4 (KIVI's default is
  // 32); 0 means the whole head. They use block_k/block_v and window_k/window_v above too.
  int quant_group = 32;
};

// Checks the KVComp parameters; throws Error naming the option.
void validate(const KvOptions& o);

const char* kv_mode_name(KvMode m);
// Parses a --kv value; throws Error naming the option and listing the accepted modes.
KvMode parse_kv_mode(const std::string& s, const char* option = "--kv");
std::vector<std::string> kv_mode_names();

}  // namespace kvcomp
