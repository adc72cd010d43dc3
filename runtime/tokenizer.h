// The tokenizer of a model directory: Hugging Face's tokenizer.json (runtime/tokenizer_json.h)
// or a sentencepiece tokenizer.model, with the BOS/EOS rule of the model's configs, and a
// streaming detokenizer that emits text as soon as it is complete UTF-8.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace kvcomp {

class HfTokenizer;

class Tokenizer {
 public:
  // A sentencepiece tokenizer.model. bos_id: the config's bos_token_id (-1: none); add_bos:
  // prepend it when encoding a prompt.
  Tokenizer(const std::filesystem::path& model_file, int bos_id, bool add_bos);
  // A tokenizer.json; the ids put around a prompt are its post-processor's unless the caller
  // overrides them (tokenizer_config.json's add_bos_token / add_eos_token).
  explicit Tokenizer(HfTokenizer hf, const std::filesystem::path& file);
  Tokenizer(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text`, with the model's special tokens around it (BOS first when it adds one).
  std::vector<int> encode(const std::string& text) const;
  // Ids of `text` alone (no BOS).
  std::vector<int> encode_raw(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;
  std::string piece(int id) const;
  std::optional<int> piece_id(const std::string& piece) const;
  int vocab_size() const;
  // The ids encode() puts before and after the text.
  const std::vector<int>& prefix_ids() const { return prefix_; }
  const std::vector<int>& suffix_ids() const { return suffix_; }
  void set_special(std::vector<int> prefix, std::vector<int> suffix);
  int bos_id() const { return prefix_.empty() ? -1 : prefix_.front(); }
  bool add_bos() const { return !prefix_.empty(); }
  // The file it was read from, and a one-line description ("tokenizer.json: BPE (byte-level) ...").
  const std::filesystem::path& file() const { return file_; }
  std::string describe() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::unique_ptr<HfTokenizer> hf_;
  std::filesystem::path file_;
  std::vector<int> prefix_, suffix_;
};

// The tokenizer of a model directory: tokenizer.json when it exists (as transformers' fast
// tokenizers read it), else tokenizer.model. bos_id: config.json's bos_token_id. For
// tokenizer.model, BOS follows tokenizer_config.json's add_bos_token (default true); for
// tokenizer.json, its post-processor, unless tokenizer_config.json sets add_bos_token or
// add_eos_token (then its bos_token / eos_token, or config.json's ids).
Tokenizer load_tokenizer(const std::filesystem::path& model_dir, int bos_id);

// Turns a stream of generated ids into text pieces. Text is emitted only once it cannot change
// any more: a piece that ends inside a multi-byte character is held until the character is
// complete, and a word's leading space is kept (decoding always restarts a few tokens back).
class StreamDecoder {
 public:
  // context: ids already shown (the prompt), so the first generated word gets its space.
  StreamDecoder(const Tokenizer& tok, const std::vector<int>& context);
  // Returns the text that became final with this id (may be empty).
  std::string push(int id);
  // Returns whatever is held back (at the end of generation).
  std::string flush();

 private:
  const Tokenizer& tok_;
  std::vector<int> ids_;
  size_t prefix_ = 0;  // decoding restarts here
  size_t read_ = 0;    // text of ids_[prefix_, read_) has been emitted
};

}  // namespace kvcomp
