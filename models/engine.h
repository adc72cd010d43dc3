// An engine runs one model on one device: it owns the weights and the KV cache of a batch of
// sequences and advances them by prefill chunks or single decode tokens. generate, perplexity
// and bench are written once against this interface.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "compress/kv_cache_blocked_ref.h"  // KvStats
#include "models/config.h"
#include "runtime/kv_options.h"

namespace kvcomp {

// Tokens appended to one sequence in one forward step.
struct SeqChunk {
  int seq = 0;
  std::vector<int> tokens;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const LlamaConfig& config() const = 0;
  virtual std::string device_name() const = 0;

  // Drops every sequence and prepares an empty cache for n_seqs sequences of at most
  // max_tokens tokens each.
  virtual void start(int n_seqs, int max_tokens, const KvOptions& kv) = 0;

  // Appends each chunk's tokens to its sequence (all layers) and returns logits [rows, vocab]:
  // one row per token when all_logits, else one row per chunk (its last token).
  virtual void forward(const std::vector<SeqChunk>& chunks, bool all_logits,
                       std::vector<float>& logits) = 0;

  // Like forward, but returns for every token the negative log-likelihood of the matching entry
  // of `targets` (one per token of every chunk, in order; -1: not scored, nll 0).
  virtual void forward_nll(const std::vector<SeqChunk>& chunks, const std::vector<int>& targets,
                           std::vector<double>& nll) = 0;

  // Tokens held by sequence `seq`.
  virtual int length(int seq) const = 0;
  // Bytes the KV cache's contents take now.
  virtual int64_t kv_bytes() const = 0;
  // Memory the KV cache holds (device memory on the GPU, host memory on the CPU), at capacity.
  virtual int64_t kv_bytes_reserved() const = 0;

  // Byte accounting of a compressed KV cache now (bits per value, ratio, raw blocks; see
  // KvStats); compressed == false and zeros for a dense cache or an engine that cannot tell.
  virtual KvStats kv_stats() const { return {}; }

  // The KV cache of one layer and sequence as attention reads it: k (after RoPE) and v, both
  // [length(seq), n_kv_heads, head_dim] fp32 (a dense fp16 cache: its fp16 values; a compressed
  // cache: the decoded values, then the raw window). False when this engine's cache cannot be
  // read back.
  virtual bool read_kv(int /*layer*/, int /*seq*/, std::vector<float>& /*k*/,
                       std::vector<float>& /*v*/) const {
    return false;
  }
  // With keep_queries(true) before start(), the engine keeps every token's queries (after
  // RoPE) and read_q returns them: q [length(seq), n_heads, head_dim] fp32 of one layer. False
  // when this engine cannot (the GPU engines).
  virtual void keep_queries(bool /*on*/) {}
  virtual bool read_q(int /*layer*/, int /*seq*/, std::vector<float>& /*q*/) const {
    return false;
  }
  // The first layer whose output held a NaN or infinity in the last forward call, or -1 (none,
  // or this engine does not check: the GPU engines).
  virtual int nonfinite_layer() const { return -1; }

  // Sequence `to` (empty) receives a copy of sequence `from`'s cache: its length and every byte
  // its cache holds, allocated anew (what `bench --fit` fills a batch with). GPU engines only.
  virtual void copy_sequence(int from, int to);
};

// ", first in the output of layer L (model.layers.L)" when the engine knows where a forward's NaN
// or infinity appeared, else "".
std::string nonfinite_where(const Engine& e);

// Checks a step against the batch: every sequence in range and at most once, chunks not empty,
// lengths within max_tokens (and a Mistral sliding window), token ids within the vocabulary.
// len: [n_seqs] tokens each sequence holds. Throws Error naming the sequence or token.
void check_step(const LlamaConfig& cfg, const std::vector<int>& len, int max_tokens,
                const std::vector<SeqChunk>& chunks);

enum class Device { kAuto, kCpu, kCuda };
Device parse_device(const std::string& s);  // "auto" | "cpu" | "cuda"; Error otherwise
bool cuda_available();                      // a usable GPU and a build with the CUDA backend

// Opens the model directory (config, tensors checked, weights loaded) on the device.
std::unique_ptr<Engine> make_engine(const std::filesystem::path& model_dir, Device device);

}  // namespace kvcomp
