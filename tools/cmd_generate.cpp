// kvcomp generate: text generation, streamed to stdout; statistics to stderr.
#include <cstdio>
#include <memory>

#include "models/chat.h"
#include "models/generate.h"
#include "runtime/error.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace kvcomp::cli {

void add_generate_command(CLI::App& app) {
  struct Opts {
    CommonOptions common;
    std::string prompt, prompt_file;
    GenerateOptions gen;
    bool ignore_eos = false;
    bool chat = false;
    std::string chat_format, system;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd =
      app.add_subcommand("generate", "Generate text from a prompt (or a file of prompts)");
  add_model_options(cmd, o->common);
  add_kv_options(cmd, o->common);
  auto* p = cmd->add_option("--prompt,-p", o->prompt, "Prompt text");
  auto* pf = cmd->add_option("--prompt-file,-f", o->prompt_file,
                             "File with one prompt per line, generated together as one batch");
  p->excludes(pf);
  pf->excludes(p);
  cmd->add_option("-n,--n-predict", o->gen.n_predict, "Tokens to generate per prompt")
      ->capture_default_str();
  cmd->add_option("--ctx", o->gen.ctx, "Context limit in tokens (default: the model's)")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--temperature,-t", o->gen.sampling.temperature,
                  "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--top-k", o->gen.sampling.top_k, "Sample from the k most likely tokens; 0 = all")
      ->capture_default_str();
  cmd->add_option("--top-p", o->gen.sampling.top_p, "Nucleus sampling probability mass")
      ->capture_default_str();
  cmd->add_option("--seed", o->gen.sampling.seed, "Random seed")->capture_default_str()
      ->check(non_negative_integer());
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating after an end-of-sequence token");
  cmd->add_flag("--chat", o->chat,
                "Wrap each prompt in the model's chat format (instruct models; the family of its "
                "chat template: llama3, chatml or mistral)");
  cmd->add_option("--chat-format", o->chat_format,
                  "The chat format to use (llama3, chatml, mistral); implies --chat");
  cmd->add_option("--system", o->system, "System message for --chat (default: the template's)");

  cmd->callback([cmd, o] {
    const bool given = cmd->count("--prompt") > 0;
    check(!(given && o->prompt.empty() && o->prompt_file.empty()),
          "--prompt: the prompt is empty; give some text");
    check(!o->prompt.empty() || !o->prompt_file.empty(),
          "generate: give --prompt TEXT or --prompt-file FILE");
    std::vector<std::string> prompts = o->prompt_file.empty()
                                           ? std::vector<std::string>{o->prompt}
                                           : read_lines(o->prompt_file, "--prompt-file");
    if (o->prompt_file.empty()) check_utf8(o->prompt, "--prompt");  // files: read_text_file
    validate(o->gen.sampling);
    finish_kv_options(o->common);
    o->gen.kv = o->common.kv_opts;
    o->gen.stop_at_eos = !o->ignore_eos;
    const auto dir = o->common.model_dir();
    auto engine = make_engine(dir, parse_device(o->common.device));
    const Tokenizer tok = load_tokenizer(dir, engine->config().bos_token_id);
    const bool chat = o->chat || !o->chat_format.empty();
    check(chat || o->system.empty(), "--system: only with --chat");
    if (chat) {
      const ChatFormat f = load_chat_format(dir, o->chat_format);
      for (std::string& p : prompts) p = render_chat(f, o->system, p);
      o->gen.prompts_formatted = true;
      if (!f.eos.empty()) {  // instruct models end a turn with the config's eos_token
        const auto id = tok.piece_id(f.eos);
        check(id.has_value(), f.source, ": eos_token \"", f.eos, "\" is not a token of ",
              tok.file().string());
        o->gen.stop_ids = {*id};
      }
      if (!o->system.empty()) check_utf8(o->system, "--system");
    }

    // One prompt streams; a batch prints each completion when it is done. Nothing is printed
    // before generate() has validated the prompts against the context (it throws before its
    // first piece): the prompt goes out with the first piece.
    const bool stream = prompts.size() == 1;
    std::vector<std::string> texts(prompts.size());
    bool prompt_out = false;
    auto put_prompt = [&] {
      if (stream && !prompt_out) std::fputs(prompts[0].c_str(), stdout);
      prompt_out = true;
    };
    const GenerateStats st =
        generate(*engine, tok, prompts, o->gen, [&](int seq, const std::string& piece) {
          if (stream) {
            put_prompt();
            std::fputs(piece.c_str(), stdout);
            std::fflush(stdout);
          } else {
            texts[seq] += piece;
          }
        });
    if (stream) {
      put_prompt();
      std::fputs("\n", stdout);
    } else {
      for (size_t s = 0; s < prompts.size(); ++s)
        std::printf("%s%s\n\n", prompts[s].c_str(), texts[s].c_str());
    }
    std::fflush(stdout);
    std::fprintf(
        stderr,
        "\n%s | kv %s | %d sequence%s | prompt %d tokens, %.1f tok/s | generated %d "
        "tokens, %.1f tok/s\n",
        engine->device_name().c_str(), o->common.kv.c_str(), st.n_seqs, st.n_seqs == 1 ? "" : "s",
        st.prompt_tokens, st.prefill_seconds > 0 ? st.prompt_tokens / st.prefill_seconds : 0.0,
        st.generated_tokens, st.decode_seconds > 0 ? st.generated_tokens / st.decode_seconds : 0.0);
    // Sequences that ran into the context limit are named: their text is cut short.
    for (int s = 0; s < st.n_seqs; ++s)
      if (st.stop[s] == StopReason::kContext)
        std::fprintf(stderr, "%s stopped at the context limit of %d tokens (--ctx)\n",
                     st.n_seqs == 1 ? "generation" : ("sequence " + std::to_string(s + 1)).c_str(),
                     st.ctx);
    std::fprintf(stderr, "%s\n", memory_line(*engine).c_str());
  });
}

}  // namespace kvcomp::cli
