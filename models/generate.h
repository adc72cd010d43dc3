// Text generation over an Engine: one batched prefill of every prompt, then one decode step per
// generated token for all unfinished sequences at once.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/engine.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer.h"

namespace kvcomp {

struct GenerateOptions {
  int n_predict = 128;  // tokens to generate per prompt at most
  int ctx = 0;          // context limit in tokens; 0: the model's max_position_embeddings
  bool stop_at_eos = true;
  bool prompts_formatted = false;  // prompts carry their special tokens as text (chat): no BOS added
  std::vector<int> stop_ids;       // ends a sequence besides the config's eos ids (chat's eos)
  SamplingOptions sampling;
  KvOptions kv;
};

// Why a sequence stopped generating.
enum class StopReason { kEos, kTokens, kContext };

struct GenerateStats {
  int n_seqs = 0;
  int ctx = 0;                   // the context limit in effect
  std::vector<StopReason> stop;  // per sequence
  int prompt_tokens = 0;     // over all prompts
  int generated_tokens = 0;  // over all sequences
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Text pieces arrive through on_text(seq, text) as they become final.
using TextCallback = std::function<void(int seq, const std::string& text)>;

GenerateStats generate(Engine& engine, const Tokenizer& tok,
                       const std::vector<std::string>& prompts, const GenerateOptions& opts,
                       const TextCallback& on_text);

}  // namespace kvcomp
