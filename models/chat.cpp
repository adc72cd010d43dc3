#include "models/chat.h"

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "runtime/error.h"

namespace kvcomp {

const char* chat_family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::kLlama3:
      return "llama3";
    case ChatFamily::kChatML:
      return "chatml";
    case ChatFamily::kMistral:
      return "mistral";
  }
  return "?";
}

std::optional<ChatFamily> detect_chat_family(const std::string& t) {
  if (t.find("<|start_header_id|>") != std::string::npos) return ChatFamily::kLlama3;
  if (t.find("<|im_start|>") != std::string::npos) return ChatFamily::kChatML;
  if (t.find("[INST]") != std::string::npos) return ChatFamily::kMistral;
  return std::nullopt;
}

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  check(bool(in), p.string(), ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A token in tokenizer_config.json: "<s>", {"content": "<s>"} or null.
std::string config_token(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return "";
  const auto& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

// Python's str.strip(), as Jinja's trim filter applies it.
std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// A Jinja string literal's escapes (\n, \t, \', \", \\).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char e = s[++i];
      out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

ChatFormat load_chat_format(const std::filesystem::path& dir, const std::string& family_name) {
  ChatFormat f;
  nlohmann::json tc = nlohmann::json::object();
  const auto tc_file = dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(tc_file)) {
    tc = nlohmann::json::parse(read_file(tc_file), nullptr, /*allow_exceptions=*/false);
    check(!tc.is_discarded() && tc.is_object(), tc_file.string(), ": malformed JSON");
  }
  f.bos = config_token(tc, "bos_token");
  f.eos = config_token(tc, "eos_token");

  // The template: chat_template.jinja (transformers >= 4.43 saves it there), else the config's
  // chat_template, a string or a list of {name, template} (the one named "default").
  std::string tmpl;
  const auto jinja = dir / "chat_template.jinja";
  if (std::filesystem::is_regular_file(jinja)) {
    tmpl = read_file(jinja);
    f.source = jinja.string();
  } else if (tc.contains("chat_template")) {
    const auto& t = tc["chat_template"];
    if (t.is_string()) tmpl = t.get<std::string>();
    if (t.is_array())
      for (const auto& e : t)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          tmpl = e["template"].get<std::string>();
    f.source = tc_file.string() + " (chat_template)";
  }

  if (!family_name.empty()) {
    if (family_name == "llama3") f.family = ChatFamily::kLlama3;
    else if (family_name == "chatml") f.family = ChatFamily::kChatML;
    else if (family_name == "mistral") f.family = ChatFamily::kMistral;
    else fail("--chat-format: '", family_name, "' is not one of llama3, chatml, mistral");
    if (f.source.empty()) f.source = "--chat-format " + family_name;
  } else {
    check(!tmpl.empty(), "--chat: ", dir.string(),
          " has no chat template (tokenizer_config.json's chat_template or chat_template.jinja); "
          "name its format with --chat-format llama3|chatml|mistral");
    const auto fam = detect_chat_family(tmpl);
    check(fam.has_value(), "--chat: the chat template of ", f.source,
          " is not one of the recognised families (llama3, chatml, mistral); name the format "
          "with --chat-format if it is one of them");
    f.family = *fam;
  }

  // What the template adds on its own: ChatML's default system message (Qwen's "You are Qwen,
  // ..."), Llama 3.1's knowledge-cutoff header with its date (a fixed date_string, or today's
  // with strftime_now as Llama 3.2's template does).
  if (f.family == ChatFamily::kChatML) {
    std::smatch m;
    static const std::regex kDefault(R"('<\|im_start\|>system\\n((?:[^'\\]|\\.)*?)<\|im_end\|>\\n')");
    if (std::regex_search(tmpl, m, kDefault)) f.default_system = unescape(m[1].str());
  }
  if (f.family == ChatFamily::kLlama3 && tmpl.find("Cutting Knowledge Date") != std::string::npos) {
    std::smatch m;
    static const std::regex kDate(R"(set date_string = ["']([^"']+)["'])");
    if (tmpl.find("strftime_now") != std::string::npos) {
      const std::time_t now = std::time(nullptr);
      char buf[32];
      std::strftime(buf, sizeof buf, "%d %b %Y", std::localtime(&now));
      f.date = buf;
    } else if (std::regex_search(tmpl, m, kDate)) {
      f.date = m[1].str();
    } else {
      f.date = "26 Jul 2024";
    }
  }
  return f;
}

std::string render_chat(const ChatFormat& f, const std::string& system, const std::string& user) {
  std::string s;
  switch (f.family) {
    case ChatFamily::kLlama3: {
      s = f.bos;
      auto turn = [&](const char* role, const std::string& content) {
        s += std::string("<|start_header_id|>") + role + "<|end_header_id|>\n\n" + content + "<|eot_id|>";
      };
      if (!f.date.empty())
        turn("system", "Cutting Knowledge Date: December 2023\nToday Date: " + f.date + "\n\n" + trim(system));
      else if (!system.empty())
        turn("system", trim(system));
      turn("user", trim(user));
      s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
    case ChatFamily::kChatML: {
      const std::string sys = system.empty() ? f.default_system : system;
      if (!system.empty() || !f.default_system.empty()) s += "<|im_start|>system\n" + sys + "<|im_end|>\n";
      s += "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
      break;
    }
    case ChatFamily::kMistral:
      // Mistral's templates put a system message in front of the (last) user message.
      s = f.bos + "[INST] " + (system.empty() ? "" : system + "\n\n") + user + " [/INST]";
      break;
  }
  return s;
}

}  // namespace kvcomp
