// kvcomp sweep on the demo model with a tiny setting (ctx 128, one window, two modes): the
// table, CSV and JSON, the summary, the plot or a clear message when gnuplot is missing; and
// tools/plot_attention.py on the benchmark fixtures when python3 and gnuplot are there.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/catch.h"
#include "tests/shell.h"

namespace {

// The first 20000 characters of the demo model's held-out text.
std::filesystem::path small_text(const std::filesystem::path& dir) {
  std::ifstream in(std::filesystem::path(KVCOMP_DEMO_MODEL_DIR) / "heldout.txt", std::ios::binary);
  std::string text(20000, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(size_t(in.gcount()));
  const auto p = dir / "text.txt";
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

const std::string kBinary = KVCOMP_BINARY;
const std::filesystem::path kFixtures = KVCOMP_TEST_FIXTURES;

}  // namespace

TEST_CASE("sweep writes the table, CSV, JSON and the summary") {
  const auto d = temp_dir("sweep_demo");
  const auto text = small_text(d);
  // Small windows and V blocks so that ctx 128 compresses something.
  const std::string args = " sweep --device cpu --text " + text.string() +
                           " --ctx 128 --max-windows 1 --modes kvcomp,int8 --eb 0.1 "
                           "--window-k 16 --window-v 16 --block-v 64 --out " +
                           (d / "out").string();
  const Run r = shell(kBinary + args);
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("| kvcomp") != std::string::npos);
  REQUIRE(r.out.find("| int8") != std::string::npos);
  REQUIRE(r.out.find("smallest cache per method") != std::string::npos);
  REQUIRE(std::filesystem::exists(d / "out" / "sweep.csv"));
  REQUIRE(std::filesystem::exists(d / "out" / "sweep.gp"));
  std::ifstream csv(d / "out" / "sweep.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  REQUIRE(lines == 4);  // header + fp16 (always run first) + kvcomp + int8

  std::ifstream js(d / "out" / "sweep.json");
  const nlohmann::json j = nlohmann::json::parse(js);
  REQUIRE(j["ctx"] == 128);
  REQUIRE(j["prefill"] == 32);
  REQUIRE(j["windows"] == 1);
  const auto& rows = j["rows"];
  REQUIRE(rows.size() == 3);
  REQUIRE(rows[0]["mode"] == "fp16");
  REQUIRE(rows[0]["bits"] == 16.0);
  REQUIRE(rows[0]["delta_pct"] == 0.0);
  REQUIRE(rows[1]["mode"] == "kvcomp");
  REQUIRE(rows[1]["eb_k"].get<double>() == Approx(0.05));
  REQUIRE(rows[1]["eb_v"].get<double>() == Approx(0.1));
  REQUIRE(rows[1]["ratio"].get<double>() > 2.0);
  REQUIRE(rows[2]["mode"] == "int8");
  REQUIRE(rows[2]["k_bits"] == 8.25);
  REQUIRE(rows[2]["v_bits"] == 8.25);
  REQUIRE(rows[2]["eb_k"].is_null());
  for (const auto& row : rows) {
    REQUIRE(std::isfinite(row["ppl"].get<double>()));
    REQUIRE(row["tokens"] == 127);
  }
  REQUIRE(j["summary"]["methods"].size() == 2);
  // KL divergence from fp16: 0 for fp16 itself, positive and small for lossy modes (int8 far
  // below kvcomp at eb 0.05/0.1, as its 8 bits per value make it), and the summary by level.
  REQUIRE(rows[0]["kld_mean"].get<double>() == 0.0);
  REQUIRE(rows[0]["same_top1_pct"].get<double>() == 100.0);
  for (int i : {1, 2}) {
    REQUIRE(rows[i]["kld_mean"].get<double>() > 0.0);
    REQUIRE(rows[i]["kld_mean"].get<double>() < 0.05);
    REQUIRE(rows[i]["kld_stderr"].get<double>() > 0.0);
  }
  REQUIRE(rows[2]["kld_mean"].get<double>() < rows[1]["kld_mean"].get<double>());
  REQUIRE(j["kld_summary"].size() == 3);
  REQUIRE(r.out.find("By KL divergence from fp16") != std::string::npos);
  // The plot: drawn when gnuplot is installed, else a message; never an error.
  if (shell("command -v gnuplot").code == 0) {
    REQUIRE(std::filesystem::exists(d / "out" / "sweep.png"));
  } else {
    REQUIRE(r.out.find("PNG skipped") != std::string::npos);
  }
}

TEST_CASE("sweep without gnuplot still writes CSV and JSON and says why the PNG is missing") {
  const auto d = temp_dir("sweep_nognuplot");
  const auto text = small_text(d);
  const Run r =
      shell("KVCOMP_GNUPLOT=/nonexistent/gnuplot " + kBinary + " sweep --device cpu " + "--text " +
            text.string() + " --ctx 64 --max-windows 1 --modes fp8 " +
            "--window-k 0 --window-v 0 --block-k 16 --block-v 16 --out " + (d / "out").string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("PNG skipped: '/nonexistent/gnuplot' was not found") != std::string::npos);
  REQUIRE(r.out.find("gnuplot-nox") != std::string::npos);
  REQUIRE(std::filesystem::exists(d / "out" / "sweep.csv"));
  REQUIRE(std::filesystem::exists(d / "out" / "sweep.json"));
  REQUIRE(!std::filesystem::exists(d / "out" / "sweep.png"));
}

TEST_CASE("sweep runs the KIVI modes at each group size") {
  const auto d = temp_dir("sweep_kivi");
  const auto text = small_text(d);
  const Run r = shell(kBinary + " sweep --device cpu --text " + text.string() +
                      " --ctx 256 --max-windows 1 --modes kivi4 --kivi-groups 32,128 "
                      "--window-k 16 --window-v 16 --out " + (d / "out").string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  std::ifstream in(d / "out" / "sweep.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  double bits32 = NAN, bits128 = NAN;
  for (const auto& row : j["rows"]) {
    if (row["mode"] == "kivi4-g32") bits32 = row["bits"].get<double>();
    if (row["mode"] == "kivi4-g128") bits128 = row["bits"].get<double>();
  }
  // K: 4 bits + a scale and zero (fp16) per channel per G tokens; V: the same per token per G
  // channels (head_dim 128): 4 + 32 / G bits per value
  CHECK(bits32 == Approx(5.0).epsilon(1e-6));
  CHECK(bits128 == Approx(4.25).epsilon(1e-6));
  const Run bad = shell(kBinary + " sweep --device cpu --text " + text.string() +
                        " --ctx 64 --modes kivi2 --kivi-groups 48 --out " + (d / "o2").string());
  REQUIRE(bad.code != 0);
  REQUIRE(bad.out.find("--kivi-groups: expected group sizes of 16, 32, 64, 128 or 256, got 48") !=
          std::string::npos);
}

TEST_CASE("sweep rejects bad modes and error bounds") {
  const auto d = temp_dir("sweep_bad");
  const auto text = small_text(d);
  const std::string base = kBinary + " sweep --device cpu --text " + text.string() +
                           " --ctx 64 --out " + (d / "out").string();
  Run r = shell(base + " --modes fp16,kivi3");
  REQUIRE(r.code != 0);
  REQUIRE(r.out.find("unknown mode 'kivi3'") != std::string::npos);
  r = shell(base + " --eb 0.1,abc");
  REQUIRE(r.code != 0);
  REQUIRE(r.out.find("--eb: 'abc' is not a number") != std::string::npos);
  r = shell(base + " --eb 0.001");
  REQUIRE(r.code != 0);
  REQUIRE(r.out.find("--eb: '0.001' gives eb_K 0.0005") != std::string::npos);
}

TEST_CASE("plot_attention.py draws the benchmark fixtures") {
  if (shell("command -v python3 && command -v gnuplot").code != 0) {
    std::printf("plot_attention.py: skipped (python3 or gnuplot not installed)\n");
    return;
  }
  const auto d = temp_dir("sweep_attention");
  const auto script = kFixtures.parent_path().parent_path() / "tools" / "plot_attention.py";
  const Run r =
      shell("python3 " + script.string() + " --bench " +
            (kFixtures / "bench" / "attention.json").string() + " --torch " +
            (kFixtures / "bench" / "attention_torch.json").string() + " --out " + d.string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("4 panels") != std::string::npos);
  REQUIRE(std::filesystem::file_size(d / "attention.png") > 1000);
  const Run bad = shell("python3 " + script.string() + " --bench " + (d / "none.json").string());
  REQUIRE(bad.code != 0);
  REQUIRE(bad.out.find("none.json") != std::string::npos);
}
