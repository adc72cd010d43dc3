// kvcomp: Llama inference with a compressed KV cache. One binary, one subcommand per job.
#include <cstdio>
#include <exception>
#include <string>

#include "runtime/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"kvcomp: Llama inference with a KVComp-compressed KV cache", "kvcomp"};
  app.require_subcommand(1);
  kvcomp::cli::add_generate_command(app);
  kvcomp::cli::add_perplexity_command(app);
  kvcomp::cli::add_inspect_command(app);
  kvcomp::cli::add_bench_command(app);
  kvcomp::cli::add_kvstats_command(app);
  kvcomp::cli::add_sweep_command(app);
  kvcomp::cli::add_tokenize_command(app);
  // A first word that is no command (CLI11 would say only that a subcommand is required).
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const CLI::App* c : app.get_subcommands([](const CLI::App*) { return true; })) {
      known = known || c->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + c->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "kvcomp: error: unknown command '%s' (expected one of: %s)\n", argv[1],
                   names.c_str());
      return 1;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const kvcomp::Error& e) {
    std::fprintf(stderr, "kvcomp: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvcomp: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
