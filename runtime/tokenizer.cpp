#include "runtime/tokenizer.h"

#include <sentencepiece_processor.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/error.h"

namespace kvcomp {

Tokenizer::Tokenizer(const std::filesystem::path& model_file, int bos_id, bool add_bos)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()),
      bos_id_(bos_id),
      add_bos_(add_bos && bos_id >= 0) {
  check(std::filesystem::is_regular_file(model_file), model_file.string(),
        ": tokenizer not found (expected a sentencepiece tokenizer.model in the model directory)");
  const auto status = sp_->Load(model_file.string());
  check(status.ok(), model_file.string(), ": not a sentencepiece model (", status.ToString(), ")");
  check(bos_id_ < sp_->GetPieceSize(), model_file.string(), ": bos_token_id ", bos_id_,
        " is outside the tokenizer's vocabulary of ", sp_->GetPieceSize());
}

Tokenizer::~Tokenizer() = default;

std::vector<int> Tokenizer::encode_raw(const std::string& text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  check(status.ok(), "tokenizer: cannot encode text (", status.ToString(), ")");
  return ids;
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  if (add_bos_) ids.push_back(bos_id_);
  const auto body = encode_raw(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string text;
  const auto status = sp_->Decode(ids, &text);
  check(status.ok(), "tokenizer: cannot decode ids (", status.ToString(), ")");
  return text;
}

std::string Tokenizer::piece(int id) const {
  return sp_->IdToPiece(id);
}

int Tokenizer::vocab_size() const {
  return sp_->GetPieceSize();
}

Tokenizer load_tokenizer(const std::filesystem::path& model_dir, int bos_id) {
  bool add_bos = true;
  const auto tc = model_dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(tc)) {
    std::ifstream in(tc);
    const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    check(!j.is_discarded(), tc.string(), ": malformed JSON");
    if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean())
      add_bos = j["add_bos_token"].get<bool>();
  }
  return Tokenizer(model_dir / "tokenizer.model", bos_id, add_bos);
}

namespace {
// True when the text ends inside a character: sentencepiece renders incomplete byte sequences
// as U+FFFD (EF BF BD).
bool ends_incomplete(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tok, const std::vector<int>& context) : tok_(tok) {
  // Keep a few context tokens so that the decoder sees the word boundary before the first
  // generated token (sentencepiece drops the leading space of the first piece it decodes).
  const size_t keep = std::min<size_t>(context.size(), 4);
  ids_.assign(context.end() - keep, context.end());
  if (!ids_.empty() && tok_.add_bos() && ids_.front() == tok_.bos_id()) ids_.erase(ids_.begin());
  prefix_ = 0;
  read_ = ids_.size();
}

std::string StreamDecoder::push(int id) {
  ids_.push_back(id);
  const std::vector<int> prefix_ids(ids_.begin() + prefix_, ids_.begin() + read_);
  const std::vector<int> all_ids(ids_.begin() + prefix_, ids_.end());
  const std::string prefix_text = tok_.decode(prefix_ids);
  const std::string text = tok_.decode(all_ids);
  if (text.size() > prefix_text.size() && !ends_incomplete(text)) {
    prefix_ = read_;
    read_ = ids_.size();
    return text.substr(prefix_text.size());
  }
  return "";
}

std::string StreamDecoder::flush() {
  const std::vector<int> prefix_ids(ids_.begin() + prefix_, ids_.begin() + read_);
  const std::vector<int> all_ids(ids_.begin() + prefix_, ids_.end());
  const std::string prefix_text = tok_.decode(prefix_ids);
  const std::string text = tok_.decode(all_ids);
  prefix_ = read_ = ids_.size();
  return text.size() > prefix_text.size() ? text.substr(prefix_text.size()) : "";
}

}  // namespace kvcomp
