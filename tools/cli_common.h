// Pieces shared by the kvcomp subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/engine.h"
#include "models/perplexity.h"  // PerplexityOptions
#include "runtime/kv_options.h"

namespace kvcomp::cli {

// A comma-separated list of positive integers, each optionally with a k suffix (x 1024): "4k,32768".
// Throws Error naming `option` for anything else or an empty list.
std::vector<int> parse_int_list(const std::string& s, const std::string& option);

// Throws Error naming `option` when `path` cannot be written at the end of a run: its directory
// does not exist or is not writable, or the path is a directory. Checked before the run starts.
void check_writable(const std::string& path, const std::string& option);

// The whole file at path ("-": standard input), which must be UTF-8 text (check_utf8); a missing
// path, a directory or an unreadable file is an Error naming the option.
std::string read_text_file(const std::filesystem::path& path, const std::string& option);
// Throws Error naming `what`, the byte offset and the byte when text is not valid UTF-8.
void check_utf8(const std::string& text, const std::string& what);
// Non-empty lines of a file (one prompt per line).
std::vector<std::string> read_lines(const std::filesystem::path& path, const std::string& option);

// The non-empty items of a comma-separated list.
std::vector<std::string> split_list(const std::string& s);
// s as a finite number; an Error naming `option` otherwise.
float parse_number(const std::string& s, const std::string& option);

// Options every model-running subcommand takes.
struct CommonOptions {
  std::string model;            // empty: the demo model
  bool model_given = false;     // --model was on the command line (an empty one is an error)
  std::string device = "auto";  // auto | cpu | cuda
  std::string kv = "fp16";
  KvOptions kv_opts;
  std::filesystem::path model_dir() const;
};
void add_model_options(CLI::App* cmd, CommonOptions& o);
// A validator for options that take a non-negative integer into an unsigned type (CLI11 would
// wrap "-1" around).
CLI::Validator non_negative_integer();
// Adds --kv with its KVComp parameters.
void add_kv_options(CLI::App* cmd, CommonOptions& o);
// Adds the parameters alone (blocks, windows, ...; --eb-k/--eb-v when error_bounds), without
// --kv.
void add_kv_params(CLI::App* cmd, KvOptions& k, bool error_bounds = true);
// Adds --v-params32 (KvOptions::v_params16 = false).
void add_v_params32_flag(CLI::App* cmd, KvOptions& k);
// Resolves --kv into o.kv_opts.mode (throws Error on an unknown mode).
void finish_kv_options(CommonOptions& o);

// The evaluation windows of perplexity and sweep: --text, --ctx, --max-windows, --batch into
// text and ppl, --prefill into prefill (kPrefillUnset when not given: use window_prefill).
void add_window_options(CLI::App* cmd, std::string& text, PerplexityOptions& ppl, int& prefill);
// --prefill as given, else perplexity_default_prefill(ctx).
constexpr int kPrefillUnset = -2147483647 - 1;  // --prefill not given
int window_prefill(int prefill, int ctx);

// Whether the engine runs on the GPU.
bool runs_on_gpu(const Engine& engine);
// Memory of a run, the same keys in every command that prints them: kv_bytes_used (what the
// cache's contents take), kv_bytes_reserved (what the cache holds, at capacity: device memory on
// the GPU, host memory on the CPU) and, for GPU runs, peak_device_bytes (every device
// allocation of the process at its peak since the last reset).
nlohmann::json memory_json(const Engine& engine);
// The same as one line for people ("KV cache 1.2 GiB used, 1.5 GiB reserved; peak device memory
// 14.3 GiB").
std::string memory_line(const Engine& engine);

// A one-line progress bar on stderr (redrawn in place on a terminal, a final line otherwise).
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  void update(int done, int total, const std::string& extra = "");
  void finish();

 private:
  std::string label_;
  bool tty_;
  int last_done_ = -1, last_total_ = 0;
  std::string last_extra_;
};

}  // namespace kvcomp::cli
