// Hugging Face tokenizers' tokenizer.json, read as the pipeline it describes:
//   added tokens -> normalizer -> pre-tokenizer -> BPE model -> post-processor; decoder.
// Each stage is chosen by its JSON "type"; a type this reader does not implement is an error
// that names it (never a silent approximation). Covers the files of today's Llama-family
// checkpoints: byte-level BPE (Llama 3, Qwen2, SmolLM2: Split regex + ByteLevel) and the
// sentencepiece-style BPE (Llama 2, Mistral, TinyLlama: Metaspace or Prepend/Replace, byte
// fallback). Regexes are Oniguruma's as HF writes them, run by PCRE2 (UTF + Unicode properties,
// \s and \S as Oniguruma's White_Space); Unicode normal forms come from utf8proc.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kvcomp {

struct HfPipeline;  // the stages, defined in tokenizer_json.cpp

// True when this build reads tokenizer.json (it needs PCRE2 and utf8proc at build time).
bool hf_tokenizer_supported();

class HfTokenizer {
 public:
  // Parses a tokenizer.json; `name` is used in error messages (the file's path).
  static HfTokenizer from_json_text(const std::string& text, const std::string& name);
  static HfTokenizer load(const std::filesystem::path& file);
  HfTokenizer(HfTokenizer&&) noexcept;
  HfTokenizer& operator=(HfTokenizer&&) noexcept;
  ~HfTokenizer();

  // Ids of `text` (valid UTF-8, else an error naming the byte offset). add_special: apply the
  // post-processor (Llama 3's and Llama 2's templates prepend BOS).
  std::vector<int> encode(std::string_view text, bool add_special) const;
  // Text of ids through the decoder; ids outside the vocabulary are an error.
  std::string decode(const std::vector<int>& ids) const;
  // The token string of an id (added tokens included), as tokenizer.json spells it.
  const std::string& token(int id) const;
  std::optional<int> token_id(const std::string& token) const;
  // One past the largest id (model vocabulary and added tokens).
  int vocab_size() const { return int(id_to_token_.size()); }
  // Ids the post-processor puts before and after a single sequence.
  const std::vector<int>& prefix_ids() const { return prefix_; }
  const std::vector<int>& suffix_ids() const { return suffix_; }
  // A one-line description: "BPE (byte-level), 128256 tokens, NFC, ...".
  const std::string& summary() const { return summary_; }

 private:
  HfTokenizer();
  std::unique_ptr<HfPipeline> p_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int> token_to_id_;
  std::vector<int> prefix_, suffix_;
  std::string summary_;
};

}  // namespace kvcomp
