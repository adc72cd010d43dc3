#include "tools/cli_common.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "models/model_files.h"
#include "runtime/error.h"
#include "runtime/units.h"
#include "runtime/utf8.h"
#ifdef KVCOMP_HAVE_CUDA
#include "runtime/device_buffer.h"
#endif

namespace kvcomp::cli {

bool runs_on_gpu(const Engine& engine) {
  return engine.device_name().rfind("cuda", 0) == 0;
}

nlohmann::json memory_json(const Engine& engine) {
  nlohmann::json j = {{"kv_bytes_used", engine.kv_bytes()},
                      {"kv_bytes_reserved", engine.kv_bytes_reserved()}};
#ifdef KVCOMP_HAVE_CUDA
  if (runs_on_gpu(engine)) j["peak_device_bytes"] = device_bytes_peak();
#endif
  return j;
}

std::string memory_line(const Engine& engine) {
  std::string s = "KV cache " + format_bytes(double(engine.kv_bytes())) + " used, " +
                  format_bytes(double(engine.kv_bytes_reserved())) + " reserved";
#ifdef KVCOMP_HAVE_CUDA
  if (runs_on_gpu(engine)) s += "; peak device memory " + format_bytes(double(device_bytes_peak()));
#endif
  return s;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

float parse_number(const std::string& s, const std::string& option) {
  size_t used = 0;
  float x = 0;
  try {
    x = std::stof(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used > 0 && used == s.size() && std::isfinite(x), option, ": '", s, "' is not a number");
  return x;
}

void check_utf8(const std::string& text, const std::string& what) {
  const int64_t at = first_invalid_utf8(text);
  if (at < 0) return;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02x", unsigned(static_cast<unsigned char>(text[size_t(at)])));
  fail(what, ": invalid UTF-8 at byte offset ", at, " (byte ", byte,
       "); the text must be UTF-8");
}

std::string read_text_file(const std::filesystem::path& path, const std::string& option) {
  std::ostringstream ss;
  if (path == "-") {  // standard input, as Unix tools read it
    ss << std::cin.rdbuf();
    check(!std::cin.bad(), option, ": cannot read standard input");
  } else {
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    check(std::filesystem::exists(st), option, ": file not found: ", path.string());
    check(!std::filesystem::is_directory(st), option, ": ", path.string(),
          " is a directory, expected a file");
    std::ifstream in(path, std::ios::binary);  // regular files, pipes, /dev/stdin
    check(bool(in), option, ": cannot read ", path.string());
    ss << in.rdbuf();
    check(!in.bad(), option, ": read error in ", path.string());
  }
  std::string text = ss.str();
  check_utf8(text, option + " " + path.string());
  return text;
}

std::vector<std::string> read_lines(const std::filesystem::path& path, const std::string& option) {
  std::istringstream in(read_text_file(path, option));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  check(!lines.empty(), option, ": ", path.string(), " holds no prompt (expected one per line)");
  return lines;
}

std::filesystem::path CommonOptions::model_dir() const {
  check(!model_given || !model.empty(),
        "--model: an empty path (leave the option out for the demo model)");
  return model.empty() ? default_model_dir() : std::filesystem::path(model);
}

CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& s) {
        return s.empty() || s[0] == '-'
                   ? std::string("expected a non-negative integer, got '") + s + "'"
                   : std::string();
      },
      "UINT");
}

void add_model_options(CLI::App* cmd, CommonOptions& o) {
  cmd->add_option("--model,-m", o.model,
                  "Hugging Face Llama model directory (default: the embedded demo model)")
      ->each([&o](const std::string&) { o.model_given = true; });
  cmd->add_option("--device", o.device, "auto (GPU when there is one), cpu or cuda")
      ->capture_default_str();
}

void add_kv_options(CLI::App* cmd, CommonOptions& o) {
  std::string modes;
  for (const auto& m : kv_mode_names()) modes += (modes.empty() ? "" : ", ") + m;
  cmd->add_option("--kv", o.kv, "KV cache mode: " + modes)->capture_default_str();
  add_kv_params(cmd, o.kv_opts);
}

void add_kv_params(CLI::App* cmd, KvOptions& k, bool error_bounds) {
  if (error_bounds) {
    cmd->add_option("--eb-k", k.eb_k, "KVComp: relative error bound of K")->capture_default_str();
    cmd->add_option("--eb-v", k.eb_v, "KVComp: relative error bound of V")->capture_default_str();
  }
  cmd->add_option("--block-k", k.block_k, "KVComp and fixed-bit modes: tokens per K block")
      ->capture_default_str();
  cmd->add_option("--block-v", k.block_v, "KVComp and fixed-bit modes: tokens per V block")
      ->capture_default_str();
  cmd->add_option("--window-k", k.window_k,
                  "KVComp and fixed-bit modes: recent K tokens kept uncompressed")
      ->capture_default_str();
  cmd->add_option("--window-v", k.window_v,
                  "KVComp and fixed-bit modes: recent V tokens kept uncompressed")
      ->capture_default_str();
  cmd->add_option("--max-code-len", k.max_code_len, "KVComp: longest Huffman code in bits")
      ->capture_default_str();
  cmd->add_flag("--k-channelwise", k.k_channelwise,
                "KVComp: quantize K per channel within a block (for comparison)");
  cmd->add_flag("--codebook-per-head", k.codebook_per_head,
                "KVComp: one Huffman codebook per KV head instead of per layer");
  add_v_params32_flag(cmd, k);
  cmd->add_option("--quant-group", k.quant_group,
                  "kivi2/kivi4: V channels per scale/zero group (0: the whole head)")
      ->capture_default_str();
}

void add_v_params32_flag(CLI::App* cmd, KvOptions& k) {
  cmd->add_flag_callback(
      "--v-params32", [&k] { k.v_params16 = false; },
      "KVComp: every V block keeps 32-bit {fp16 d, int16 m0} token params (default: 16-bit "
      "{8-bit log step, int8 offset} where a block allows them), for comparison");
}

void finish_kv_options(CommonOptions& o) {
  o.kv_opts.mode = parse_kv_mode(o.kv);
  validate(o.kv_opts);
}

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)), tty_(isatty(2)) {}

void ProgressBar::update(int done, int total, const std::string& extra) {
  last_done_ = done;
  last_total_ = total;
  last_extra_ = extra;
  if (!tty_) return;
  constexpr int kWidth = 30;
  const int fill = total > 0 ? int(int64_t(done) * kWidth / total) : 0;
  std::fprintf(stderr, "\r%s [%s%s] %d/%d %s", label_.c_str(), std::string(fill, '#').c_str(),
               std::string(kWidth - fill, ' ').c_str(), done, total, extra.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (tty_) {
    std::fprintf(stderr, "\n");
  } else if (last_done_ >= 0) {
    std::fprintf(stderr, "%s: %d/%d %s\n", label_.c_str(), last_done_, last_total_,
                 last_extra_.c_str());
  }
}

void add_window_options(CLI::App* cmd, std::string& text, PerplexityOptions& ppl, int& prefill) {
  cmd->add_option("--text", text, "Text file to evaluate")->required();
  cmd->add_option("--ctx", ppl.ctx, "Tokens per window")->required();
  cmd->add_option("--max-windows", ppl.max_windows, "Evaluate at most this many windows (0: all)")
      ->capture_default_str();
  cmd->add_option("--prefill", prefill,
                  "Tokens of each window run as one prefill; the rest are teacher-forced decode "
                  "steps, one token per step, so the cache is read (and a compressed cache "
                  "grows) as in generation. Default: ctx/4 (at least 1), for every --kv mode; "
                  "--prefill <ctx>: one prefill per window");
  cmd->add_option("--batch", ppl.batch, "Windows evaluated together")->capture_default_str();
}

int window_prefill(int prefill, int ctx) {
  if (prefill == kPrefillUnset) return perplexity_default_prefill(ctx);
  check(prefill >= 1 && prefill <= ctx, "--prefill: expected 1..", ctx,
        " tokens (the window's prefill; --prefill ", ctx, " runs each window as one prefill), got ",
        prefill);
  return prefill;
}

std::vector<int> parse_int_list(const std::string& s, const std::string& option) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    int mult = 1;
    if (!item.empty() && (item.back() == 'k' || item.back() == 'K')) {
      mult = 1024;
      item.pop_back();
    }
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (...) {
      used = 0;
    }
    check(used == item.size() && !item.empty() && v > 0, option,
          ": expected a comma-separated list of positive integers (4096 or 4k), got '", s, "'");
    out.push_back(v * mult);
  }
  check(!out.empty(), option, ": empty list");
  return out;
}

void check_writable(const std::string& path, const std::string& option) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  check(!fs::is_directory(p, ec), option, ": ", path, " is a directory, expected a file name");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  check(fs::is_directory(dir, ec), option, ": cannot write ", path, ": directory ", dir.string(),
        " does not exist");
  check(::access(dir.c_str(), W_OK) == 0, option, ": cannot write ", path, ": directory ",
        dir.string(), " is not writable");
}

}  // namespace kvcomp::cli
