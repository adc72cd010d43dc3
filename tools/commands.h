// The kvcomp subcommands; each adds itself to the application.
#pragma once

#include <CLI/CLI.hpp>

namespace kvcomp::cli {

void add_generate_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_kvstats_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);

}  // namespace kvcomp::cli
