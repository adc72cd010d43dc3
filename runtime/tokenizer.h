// sentencepiece tokenizer of a model directory (tokenizer.model), with the BOS rule of its
// config and a streaming detokenizer that emits text as soon as it is complete UTF-8.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace kvcomp {

class Tokenizer {
 public:
  // bos_id: the config's bos_token_id (-1: none); add_bos: prepend it when encoding a prompt.
  Tokenizer(const std::filesystem::path& model_file, int bos_id, bool add_bos);
  ~Tokenizer();

  // Token ids of `text`, with BOS first when the model adds one.
  std::vector<int> encode(const std::string& text) const;
  // Ids of `text` alone (no BOS).
  std::vector<int> encode_raw(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;
  std::string piece(int id) const;
  int vocab_size() const;
  int bos_id() const { return bos_id_; }
  bool add_bos() const { return add_bos_; }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int bos_id_;
  bool add_bos_;
};

// Loads DIR/tokenizer.model with the BOS rule from DIR/config.json's bos_token_id and
// DIR/tokenizer_config.json's add_bos_token (default true).
Tokenizer load_tokenizer(const std::filesystem::path& model_dir, int bos_id);

// Turns a stream of generated ids into text pieces. Text is emitted only once it cannot change
// any more: a byte-fallback piece that starts a multi-byte character is held until the character
// is complete, and a word's leading space is kept (decoding always restarts a few tokens back).
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
