// Tokenizer speed: load time and the median time to encode a text (single thread), with the
// ids written out so that a reference run can be compared with them.
//   kvcomp_bench_tokenizer --model DIR --file TEXT [--reps 5] [--ids OUT.json]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "tools/cli_common.h"

int main(int argc, char** argv) {
  CLI::App app{"kvcomp_bench_tokenizer: tokenizer load and encode times", "kvcomp_bench_tokenizer"};
  std::string model, file, ids_out;
  int reps = 5;
  app.add_option("--model,-m", model, "Directory with tokenizer.json or tokenizer.model")->required();
  app.add_option("--file,-f", file, "Text to encode")->required();
  app.add_option("--reps", reps, "Timed encodes (the median is reported)")->check(CLI::Range(1, 1000));
  app.add_option("--ids", ids_out, "Write the ids (without special tokens) to this JSON file");
  CLI11_PARSE(app, argc, argv);
  using clock = std::chrono::steady_clock;
  try {
    const std::string text = kvcomp::cli::read_text_file(file, "--file");
    const auto t0 = clock::now();
    const kvcomp::Tokenizer tok = kvcomp::load_tokenizer(model, -1);
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
    std::vector<double> times;
    std::vector<int> ids;
    for (int r = 0; r < reps; ++r) {
      const auto a = clock::now();
      ids = tok.encode_raw(text);
      times.push_back(std::chrono::duration<double>(clock::now() - a).count());
    }
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2];
    std::printf("%s\n  load %.3f s; encode %.1f ms median of %d (%.2f MB/s), %zu bytes -> %zu ids\n",
                tok.describe().c_str(), load_s, med * 1e3, reps, double(text.size()) / med / 1e6,
                text.size(), ids.size());
    if (!ids_out.empty()) {
      std::ofstream out(ids_out);
      out << nlohmann::json(ids).dump() << "\n";
      kvcomp::check(bool(out), ids_out, ": cannot write");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvcomp_bench_tokenizer: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
