#include "runtime/tokenizer.h"

#include <sentencepiece_processor.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/tokenizer_json.h"

namespace kvcomp {

Tokenizer::Tokenizer(const std::filesystem::path& model_file, int bos_id, bool add_bos)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), file_(model_file) {
  check(std::filesystem::is_regular_file(model_file), model_file.string(),
        ": tokenizer not found (expected a sentencepiece tokenizer.model in the model directory)");
  const auto status = sp_->Load(model_file.string());
  check(status.ok(), model_file.string(), ": not a sentencepiece model (", status.ToString(), ")");
  check(bos_id < sp_->GetPieceSize(), model_file.string(), ": bos_token_id ", bos_id,
        " is outside the tokenizer's vocabulary of ", sp_->GetPieceSize());
  if (add_bos && bos_id >= 0) prefix_ = {bos_id};
}

Tokenizer::Tokenizer(HfTokenizer hf, const std::filesystem::path& file)
    : hf_(std::make_unique<HfTokenizer>(std::move(hf))),
      file_(file),
      prefix_(hf_->prefix_ids()),
      suffix_(hf_->suffix_ids()) {}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

void Tokenizer::set_special(std::vector<int> prefix, std::vector<int> suffix) {
  for (const auto* ids : {&prefix, &suffix})
    for (int id : *ids)
      check(id >= 0 && id < vocab_size(), file_.string(), ": special token id ", id,
            " is outside the tokenizer's vocabulary of ", vocab_size());
  prefix_ = std::move(prefix);
  suffix_ = std::move(suffix);
}

std::vector<int> Tokenizer::encode_raw(const std::string& text) const {
  if (hf_) return hf_->encode(text, /*add_special=*/false);
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  check(status.ok(), "tokenizer: cannot encode text (", status.ToString(), ")");
  return ids;
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids = prefix_;
  const auto body = encode_raw(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  if (hf_) return hf_->decode(ids);
  for (int id : ids)
    check(id >= 0 && id < sp_->GetPieceSize(), "tokenizer: id ", id, " is not in the vocabulary of ",
          file_.string());
  std::string text;
  const auto status = sp_->Decode(ids, &text);
  check(status.ok(), "tokenizer: cannot decode ids (", status.ToString(), ")");
  return text;
}

std::string Tokenizer::piece(int id) const {
  if (hf_) return hf_->token(id);
  return sp_->IdToPiece(id);
}

std::optional<int> Tokenizer::piece_id(const std::string& piece) const {
  if (hf_) return hf_->token_id(piece);
  const int id = sp_->PieceToId(piece);
  if (id == sp_->unk_id() && piece != sp_->IdToPiece(id)) return std::nullopt;
  return id;
}

int Tokenizer::vocab_size() const {
  return hf_ ? hf_->vocab_size() : sp_->GetPieceSize();
}

std::string Tokenizer::describe() const {
  std::string s = file_.filename().string() + ": ";
  s += hf_ ? hf_->summary() : "sentencepiece, " + std::to_string(vocab_size()) + " pieces";
  auto names = [&](const std::vector<int>& ids) {
    std::string n;
    for (int id : ids) n += (n.empty() ? "" : " ") + piece(id);
    return n;
  };
  if (!prefix_.empty()) s += "; adds " + names(prefix_) + " before";
  if (!suffix_.empty()) s += "; adds " + names(suffix_) + " after";
  return s;
}

namespace {
// A token given in tokenizer_config.json: "<s>" or {"content": "<s>", ...} (older files).
std::optional<std::string> config_token(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return std::nullopt;
  const auto& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}
}  // namespace

Tokenizer load_tokenizer(const std::filesystem::path& model_dir, int bos_id) {
  nlohmann::json tc = nlohmann::json::object();
  const auto tc_file = model_dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(tc_file)) {
    std::ifstream in(tc_file);
    tc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    check(!tc.is_discarded(), tc_file.string(), ": malformed JSON");
    check(tc.is_object(), tc_file.string(), ": expected a JSON object");
  }
  auto flag = [&](const char* key) -> std::optional<bool> {
    if (!tc.contains(key) || tc[key].is_null()) return std::nullopt;
    check(tc[key].is_boolean(), tc_file.string(), ": ", key, " must be true or false");
    return tc[key].get<bool>();
  };

  const auto json_file = model_dir / "tokenizer.json";
  if (std::filesystem::exists(json_file)) {
    Tokenizer tok(HfTokenizer::load(json_file), json_file);
    // transformers rebuilds the template from these flags when the config sets them.
    const auto add_bos = flag("add_bos_token"), add_eos = flag("add_eos_token");
    if (add_bos || add_eos) {
      auto special = [&](const char* key, int fallback) {
        const auto name = config_token(tc, key);
        if (!name) return fallback;
        const auto id = tok.piece_id(*name);
        check(id.has_value(), tc_file.string(), ": ", key, " \"", *name, "\" is not a token of ",
              json_file.string());
        return *id;
      };
      std::vector<int> prefix = tok.prefix_ids(), suffix = tok.suffix_ids();
      if (add_bos) {
        const int bos = special("bos_token", bos_id);
        check(!*add_bos || bos >= 0, tc_file.string(),
              ": add_bos_token is true but no BOS token is defined (bos_token, bos_token_id)");
        prefix = *add_bos ? std::vector<int>{bos} : std::vector<int>{};
      }
      if (add_eos) {
        const int eos = special("eos_token", -1);
        check(!*add_eos || eos >= 0, tc_file.string(), ": add_eos_token is true but eos_token is not set");
        suffix = *add_eos ? std::vector<int>{eos} : std::vector<int>{};
      }
      tok.set_special(prefix, suffix);
    }
    return tok;
  }
  const auto sp_file = model_dir / "tokenizer.model";
  check(std::filesystem::exists(sp_file), model_dir.string(),
        ": tokenizer not found (expected tokenizer.json or a sentencepiece tokenizer.model)");
  return Tokenizer(sp_file, bos_id, flag("add_bos_token").value_or(true));
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
  const auto& special = tok_.prefix_ids();
  if (keep == context.size() && !special.empty() && ids_.size() >= special.size() &&
      std::equal(special.begin(), special.end(), ids_.begin()))
    ids_.erase(ids_.begin(), ids_.begin() + std::ptrdiff_t(special.size()));
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
