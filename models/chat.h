// Chat prompts for instruct models: the user's text wrapped in the model's chat format. The
// Jinja templates of tokenizer_config.json are not interpreted; their family is recognised
// (Llama 3, ChatML as Qwen2 and SmolLM2 use it, Mistral's [INST]) and rendered as that family's
// template renders one system and one user message with add_generation_prompt.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace kvcomp {

enum class ChatFamily { kLlama3, kChatML, kMistral };

struct ChatFormat {
  ChatFamily family = ChatFamily::kChatML;
  std::string bos, eos;        // tokenizer_config.json's bos_token / eos_token ("" if none)
  std::string default_system;  // the system message the template adds when none is given
  std::string date;            // Llama 3.1+: the "Today Date" of the system header ("" if none)
  std::string source;          // where the format came from, for messages
};

const char* chat_family_name(ChatFamily f);
// The family of a template's text; nullopt when it is none of the recognised ones.
std::optional<ChatFamily> detect_chat_family(const std::string& chat_template);

// The chat format of a model directory: its template (tokenizer_config.json's chat_template, or
// chat_template.jinja) recognised, or the family named by `family_name` (--chat-format:
// llama3, chatml, mistral). A missing or unrecognised template without a name is an error
// that says so and names the option.
ChatFormat load_chat_format(const std::filesystem::path& model_dir, const std::string& family_name);

// The prompt text the template would produce (special tokens written as text: encode it
// without adding special tokens). system: "" for none (the template's default applies).
std::string render_chat(const ChatFormat& f, const std::string& system, const std::string& user);

}  // namespace kvcomp
