// The compressed-cache figures of the command line: kvcomp kvstats on the demo model on the CPU,
// and the compression fields of kvcomp perplexity --kv kvcomp --json.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/catch.h"

namespace {

struct Run {
  int code;
  std::string out;  // stdout
  std::string all;  // stdout and stderr
};

Run run(const std::string& args, bool with_stderr) {
  const std::string cmd =
      std::string(KVCOMP_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, out};
}

const std::string kHeldout = std::string(KVCOMP_DEMO_MODEL_DIR) + "/heldout.txt";

}  // namespace

TEST_CASE("kvstats --json on the demo model (CPU, ctx 256)") {
  const Run r = run("kvstats --device cpu --text " + kHeldout + " --ctx 256 --json", false);
  INFO(r.out);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key : {"k_bits", "v_bits", "ratio", "max_err_over_bound", "k_entropy",
                          "v_entropy", "layers", "bytes", "raw_block_share"})
    REQUIRE(j.contains(key));
  const double k_bits = j["k_bits"].get<double>(), v_bits = j["v_bits"].get<double>();
  std::printf(
      "kvstats demo ctx 256: K %.3f bits (entropy %.3f), V %.3f bits (entropy %.3f), "
      "ratio %.2fx, max err/bound %.5f\n",
      k_bits, j["k_entropy"].get<double>(), v_bits, j["v_entropy"].get<double>(),
      j["ratio"].get<double>(), j["max_err_over_bound"].get<double>());
  REQUIRE(j["max_err_over_bound"].get<double>() <= 1.001);
  REQUIRE(j["max_err_over_bound"].get<double>() > 0.0);
  REQUIRE(k_bits > 0.5);
  REQUIRE(k_bits < 8.0);
  REQUIRE(v_bits > 0.5);
  REQUIRE(v_bits < 8.0);
  // Metadata and Huffman's integer code lengths cost bits: never below the entropy.
  REQUIRE(k_bits >= j["k_entropy"].get<double>());
  REQUIRE(v_bits >= j["v_entropy"].get<double>());
  REQUIRE(j["ratio"].get<double>() == Approx(32.0 / (k_bits + v_bits)).epsilon(1e-9));
  REQUIRE(j["layers"].size() == 4);  // the demo model's layers
  for (const auto& l : j["layers"]) {
    REQUIRE(l["k_bits"].get<double>() > 0.5);
    REQUIRE(l["max_err_over_bound"].get<double>() <= 1.001);
  }
  REQUIRE(j["bytes"]["k"]["payload"].get<uint64_t>() > 0);
  REQUIRE(j["bytes"]["v"]["codebooks"].get<uint64_t>() > 0);
  // The bits per value of the parts add up to the total, K and V.
  for (const char* part : {"k", "v"}) {
    const auto& b = j["bits"][part];
    double sum = 0;
    for (const char* key :
         {"payload", "unit_lengths", "params", "headers", "padding", "codebooks", "raw"})
      sum += b[key].get<double>();
    REQUIRE(sum == Approx(b["total"].get<double>()).epsilon(1e-9));
    REQUIRE(b["total"].get<double>() == Approx(j[std::string(part) + "_bits"].get<double>()));
  }
  // V blocks take the compact (16-bit) token params by default.
  REQUIRE(j["v_params16"].get<bool>());
  REQUIRE(j["v_compact_blocks"].get<uint64_t>() > 0);
  REQUIRE(j["bytes"]["v"]["compact_blocks"].get<uint64_t>() ==
          j["v_compact_blocks"].get<uint64_t>());
}

TEST_CASE("kvstats --v-params32: 32-bit V token params cost more V bits, K unchanged") {
  const std::string args = "kvstats --device cpu --text " + kHeldout + " --ctx 256 --json";
  const Run a = run(args, false);
  const Run b = run(args + " --v-params32", false);
  INFO(a.out << "\n" << b.out);
  REQUIRE(a.code == 0);
  REQUIRE(b.code == 0);
  const nlohmann::json ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  REQUIRE(!jb["v_params16"].get<bool>());
  REQUIRE(jb["v_compact_blocks"].get<uint64_t>() == 0);
  REQUIRE(ja["k_bits"].get<double>() == jb["k_bits"].get<double>());
  REQUIRE(ja["bits"]["v"]["params"].get<double>() < jb["bits"]["v"]["params"].get<double>());
  REQUIRE(ja["v_bits"].get<double>() < jb["v_bits"].get<double>());
  REQUIRE(ja["max_err_over_bound"].get<double>() <= 1.001);
  std::printf("kvstats demo ctx 256: V %.3f bits (16-bit token params), %.3f (32-bit)\n",
              ja["v_bits"].get<double>(), jb["v_bits"].get<double>());
}

TEST_CASE("kvstats --eb-list: bits fall as the bound grows") {
  const Run r =
      run("kvstats --device cpu --text " + kHeldout + " --ctx 256 --eb-list 0.02,0.1,0.3 --json",
          false);
  INFO(r.out);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  REQUIRE(j["eb_table"].size() == 3);
  double prev_k = 1e9, prev_v = 1e9;
  for (const auto& row : j["eb_table"]) {
    REQUIRE(row["eb_k"].get<double>() == row["eb_v"].get<double>());
    REQUIRE(row["k_bits"].get<double>() < prev_k);
    REQUIRE(row["v_bits"].get<double>() < prev_v);
    REQUIRE(row["max_err_over_bound"].get<double>() <= 1.001);
    prev_k = row["k_bits"].get<double>();
    prev_v = row["v_bits"].get<double>();
  }
  // The attention output's error (model's own queries) grows with the bound, and at a small
  // bound it is small: against the fp16 cache, not against itself.
  const double a0 = j["eb_table"][0]["attn_rel_err"].get<double>();
  const double a1 = j["eb_table"][1]["attn_rel_err"].get<double>();
  const double a2 = j["eb_table"][2]["attn_rel_err"].get<double>();
  CHECK(a0 > 0);
  CHECK(a0 < 0.15);
  CHECK(a0 < a1);
  CHECK(a1 < a2);
  for (const auto& layer : j["layers"]) CHECK(layer["attn_rel_err"].get<double>() > 0);
  const Run h =
      run("kvstats --device cpu --text " + kHeldout + " --ctx 128 --eb-list 0.05,0.1", true);
  INFO(h.all);
  REQUIRE(h.code == 0);
  REQUIRE(h.all.find("over error bounds") != std::string::npos);
  REQUIRE(h.all.find("total") != std::string::npos);
}

TEST_CASE("kvstats rejects bad input with a message naming the option") {
  const Run a =
      run("kvstats --device cpu --text " + kHeldout + " --ctx 256 --eb-list 0.05,x", true);
  REQUIRE(a.code != 0);
  REQUIRE(a.all.find("--eb-list") != std::string::npos);
  const Run b = run("kvstats --device cpu --text " + kHeldout + " --ctx 256 --eb-k 0.001", true);
  REQUIRE(b.code != 0);
  REQUIRE(b.all.find("--eb-k") != std::string::npos);
  const Run c =
      run("kvstats --device cpu --text " + kHeldout + " --ctx 2048 --windows 100000", true);
  REQUIRE(c.code != 0);
  REQUIRE(c.all.find("--windows") != std::string::npos);
}

TEST_CASE("perplexity --kv kvcomp --json reports the compression") {
  const Run r = run("perplexity --device cpu --text " + kHeldout +
                        " --ctx 256 --max-windows 1 --window-v 64 --kv kvcomp --json",
                    false);
  INFO(r.out);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  REQUIRE(j["prefill"].get<int>() == 64);  // the default, ctx / 4
  for (const char* key : {"k_bits", "v_bits", "ratio", "ratio_with_window", "raw_blocks"})
    REQUIRE(j.contains(key));
  REQUIRE(j["ratio"].get<double>() > 2.0);
  REQUIRE(j["ratio_with_window"].get<double>() > 1.0);
  REQUIRE(j["ratio_with_window"].get<double>() < j["ratio"].get<double>());
  const Run d =
      run("perplexity --device cpu --text " + kHeldout + " --ctx 64 --max-windows 1 --json", false);
  REQUIRE(d.code == 0);
  REQUIRE(!nlohmann::json::parse(d.out).contains("k_bits"));
}
