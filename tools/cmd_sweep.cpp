// kvcomp sweep: the accuracy/memory table of every --kv mode and error bound on one model and
// text. Each run is `kvcomp perplexity` under the decode-time protocol (a prefill of ctx/4
// tokens, then one teacher-forced decode step per token); each row reports the bits per value
// of K and V held in blocks (metadata included, recent window excluded), the compression ratio
// to fp16, the perplexity and its change against fp16. Writes OUT/sweep.csv, OUT/sweep.json and
// OUT/sweep.png (perplexity against bits per value, through gnuplot: OUT/sweep.gp), prints the
// table and a summary: for each method the smallest cache within --within % of fp16's
// perplexity, and kvcomp's memory reduction against the best fixed-bit baseline there.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "compress/fixedbit.h"
#include "models/config.h"
#include "models/kl_divergence.h"
#include "models/perplexity.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace kvcomp::cli {

namespace {

// One --eb item: "E" gives eb_K = E/2, eb_V = E (the paper's default pair is E = 0.1); "K:V"
// gives the pair itself.
std::pair<float, float> parse_eb_item(const std::string& s) {
  const size_t colon = s.find(':');
  std::pair<float, float> eb;
  if (colon == std::string::npos) {
    const float e = parse_number(s, "--eb");
    eb = {e / 2, e};
  } else {
    eb = {parse_number(s.substr(0, colon), "--eb"), parse_number(s.substr(colon + 1), "--eb")};
  }
  auto ok = [](float e) { return e >= 1.0f / 250.0f && e <= 1.0f; };
  check(ok(eb.first) && ok(eb.second), "--eb: '", s, "' gives eb_K ", eb.first, " and eb_V ",
        eb.second, "; each must be in [0.004, 1]");
  return eb;
}

struct Row {
  std::string mode;     // --kv name
  std::string setting;  // error bounds or the fixed-bit format
  float eb_k = NAN, eb_v = NAN;
  double k_bits = NAN, v_bits = NAN, bits = NAN;  // per value held in blocks
  double ratio = NAN, ratio_with_window = NAN;
  double ppl = NAN, delta_pct = NAN;
  double kld = NAN, kld_stderr = NAN, same_top1_pct = NAN;  // against the fp16 run
  int64_t tokens = 0;
  int windows = 0;
  double seconds = 0;
  bool compressed = false;
};

// A method's --kv mode: its name, or for KIVI at a group size ("kivi2-g32") the name before "-g".
std::string method_mode(const std::string& m) {
  const size_t g = m.rfind("-g");
  return m.rfind("kivi", 0) == 0 && g != std::string::npos ? m.substr(0, g) : m;
}

bool is_fixedbit_name(const std::string& m) {
  return kv_mode_fixedbit(parse_kv_mode(method_mode(m)));
}

std::string fmt(double x, const char* f) {
  if (!std::isfinite(x)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

nlohmann::json num_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
}

std::string shell_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

// The smallest-bits row of one method whose perplexity is within the limit; -1 if none.
int best_within(const std::vector<Row>& rows, const std::string& mode, double limit) {
  int best = -1;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    if (r.mode != mode || !(r.ppl <= limit) || !std::isfinite(r.bits)) continue;
    if (best < 0 || r.bits < rows[size_t(best)].bits) best = int(i);
  }
  return best;
}

// Where a method's KLD curve reaches `level`: its rows sorted by bits, the first row at or below
// the level; between it and the cheaper row before it the bits are interpolated linearly in
// log KLD. resolved: the rows used are farther from the level than twice their standard error.
struct LevelPoint {
  bool reached = false, interpolated = false, at_most = false, resolved = false;
  double bits = NAN;
};
LevelPoint at_level(const std::vector<Row>& rows, const std::string& mode, double level) {
  std::vector<const Row*> pts;
  for (const Row& r : rows)
    if (r.mode == mode && std::isfinite(r.bits) && std::isfinite(r.kld)) pts.push_back(&r);
  std::sort(pts.begin(), pts.end(), [](const Row* a, const Row* b) { return a->bits < b->bits; });
  auto clear = [&](const Row* r) { return std::fabs(r->kld - level) > 2 * r->kld_stderr; };
  LevelPoint lp;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (!(pts[i]->kld <= level)) continue;
    lp.reached = true;
    if (i == 0) {  // even the cheapest row tried reaches it
      lp.bits = pts[0]->bits;
      lp.at_most = pts.size() > 1;
      lp.resolved = clear(pts[0]);
      return lp;
    }
    const Row *a = pts[i - 1], *b = pts[i];
    const double la = std::log(std::max(a->kld, 1e-30)), lb = std::log(std::max(b->kld, 1e-30));
    const double t = la > lb ? (la - std::log(level)) / (la - lb) : 1.0;
    lp.bits = a->bits + t * (b->bits - a->bits);
    lp.interpolated = true;
    lp.resolved = clear(a) && clear(b);
    return lp;
  }
  return lp;
}

// The gnuplot script of the plot, data inline so that it can be re-run alone.
std::string gnuplot_script(const std::vector<Row>& rows, const std::vector<std::string>& methods,
                           double fp16_ppl, double within_pct, const std::string& title) {
  std::ostringstream g;
  g << "# kvcomp sweep: perplexity against bits per value. Re-run: gnuplot sweep.gp (in this "
       "directory)\n";
  g << "set terminal pngcairo size 1000,650 enhanced font 'sans,11'\n";
  g << "set output 'sweep.png'\n";
  g << "set title \"" << title << "\" noenhanced\n";
  g << "set xlabel 'bits per value (K and V blocks, scales/zeros/codebooks included; recent "
       "window excluded)'\n";
  g << "set ylabel 'perplexity'\n";
  g << "set grid\nset key top right box opaque\n";
  double lo = fp16_ppl, hi = fp16_ppl * (1 + within_pct / 100);
  double xmax = 16;
  for (const Row& r : rows)
    if (std::isfinite(r.ppl)) lo = std::min(lo, r.ppl), hi = std::max(hi, r.ppl);
  for (const Row& r : rows)
    if (std::isfinite(r.bits)) xmax = std::max(xmax, r.bits);
  const double pad = 0.05 * (hi - lo) + 1e-3 * fp16_ppl;
  g << "set yrange [" << lo - pad << ":" << hi + pad << "]\n";
  g << "set xrange [0:" << xmax + 1 << "]\n";
  // Colour and point type per method.
  auto style = [](const std::string& method) -> std::string {
    const std::string m = method_mode(method);
    // the larger KIVI groups dashed
    const std::string lw = method.size() > 5 && method.compare(method.size() - 5, 5, "-g128") == 0
                               ? "lw 2 dt 2 "
                               : "lw 2 ";
    if (m == "kvcomp") return "lw 3 pt 7 ps 1.3 lc rgb '#d62728'";
    if (m == "kvcomp-unfused" || m == "kvcomp-fixed") return "lw 2 pt 6 ps 1.3 lc rgb '#ff7f0e'";
    if (m == "kivi4") return lw + "pt 5 ps 1.2 lc rgb '#1f77b4'";
    if (m == "kivi2") return lw + "pt 4 ps 1.2 lc rgb '#17becf'";
    if (m == "int8") return "lw 2 pt 9 ps 1.3 lc rgb '#2ca02c'";
    if (m == "fp8") return "lw 2 pt 11 ps 1.3 lc rgb '#9467bd'";
    return "lw 2 pt 13 ps 1.2 lc rgb '#7f7f7f'";
  };
  std::vector<std::string> series;
  for (const auto& m : methods) {
    if (m == "fp16" || m == "fp32") continue;
    std::vector<const Row*> pts;
    for (const Row& r : rows)
      if (r.mode == m && std::isfinite(r.bits) && std::isfinite(r.ppl)) pts.push_back(&r);
    if (pts.empty()) continue;
    std::sort(pts.begin(), pts.end(), [](const Row* a, const Row* b) { return a->bits < b->bits; });
    std::string name = m;
    for (char& c : name)
      if (c == '-') c = '_';
    g << "$" << name << " << EOD\n";
    for (const Row* r : pts) g << r->bits << " " << r->ppl << "\n";
    g << "EOD\n";
    series.push_back("$" + name + " using 1:2 with linespoints " + style(m) + " title '" + m + "'");
  }
  series.push_back(std::to_string(fp16_ppl) + " with lines lw 2 dt 1 lc rgb 'black' title 'fp16 (" +
                   fmt(fp16_ppl, "%.3f") + ")'");
  series.push_back(std::to_string(fp16_ppl * (1 + within_pct / 100)) +
                   " with lines lw 1 dt 2 lc rgb 'gray40' title 'fp16 + " + fmt(within_pct, "%g") +
                   "%'");
  g << "plot ";
  for (size_t i = 0; i < series.size(); ++i) g << (i ? ", \\\n     " : "") << series[i];
  g << "\n";
  return g.str();
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  struct Opts {
    CommonOptions common;
    std::string text;
    PerplexityOptions ppl;
    int prefill = kPrefillUnset;
    std::string modes = "fp16,kvcomp,kvcomp-fixed,kivi4,kivi2,int8,fp8";
    std::string ebs = "0.01,0.02,0.03,0.05,0.1,0.2,0.3,0.5";
    std::string kivi_groups = "32,128";
    std::string out = "sweep";
    double within = 1.0;
    bool no_kld = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "sweep",
      "Perplexity and bits per value of every --kv mode and error bound (decode-time protocol): "
      "table, CSV, JSON and a plot");
  add_model_options(cmd, o->common);
  add_kv_params(cmd, o->common.kv_opts, /*error_bounds=*/false);  // --eb instead
  add_window_options(cmd, o->text, o->ppl, o->prefill);
  cmd->add_option("--modes", o->modes,
                  "Comma-separated --kv modes; fp16 is always run (the reference)")
      ->capture_default_str();
  cmd->add_option("--eb", o->ebs,
                  "Error bounds of the kvcomp modes, comma-separated: E runs eb_K = E/2, "
                  "eb_V = E (0.1 is the paper's 0.05/0.1); K:V runs that pair")
      ->capture_default_str();
  cmd->add_option("--kivi-groups", o->kivi_groups,
                  "Group sizes of the KIVI modes, comma-separated: G runs K in groups of G tokens "
                  "per channel (--block-k G) and V in groups of G channels per token "
                  "(--quant-group G, at most head_dim), as method kiviN-gG; empty: the --block-k "
                  "and --quant-group given")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Directory for sweep.csv, sweep.json, sweep.gp, sweep.png")
      ->capture_default_str();
  cmd->add_flag("--no-kld", o->no_kld,
                "Skip the KL divergence against fp16 (it keeps fp16's log-probabilities of every "
                "scored token in memory: windows x ctx x vocab x 4 bytes)");
  cmd->add_option("--within", o->within,
                  "Accuracy target of the summary: perplexity within this % of fp16")
      ->capture_default_str();

  cmd->callback([o] {
    validate(o->common.kv_opts);
    check(o->within >= 0, "--within: expected a percentage >= 0, got ", o->within);
    // The runs: fp16 first, then every mode (kvcomp modes once per error bound).
    std::vector<std::string> modes = split_list(o->modes);
    check(!modes.empty(), "--modes: no mode given");
    for (const auto& m : modes) parse_kv_mode(m, "--modes");
    modes.erase(std::remove(modes.begin(), modes.end(), "fp16"), modes.end());
    modes.insert(modes.begin(), "fp16");
    std::vector<std::pair<float, float>> ebs;
    for (const auto& e : split_list(o->ebs)) ebs.push_back(parse_eb_item(e));
    struct Run {
      std::string mode;
      KvOptions kv;
    };
    std::vector<int> groups;
    if (!o->kivi_groups.empty()) groups = parse_int_list(o->kivi_groups, "--kivi-groups");
    for (int g : groups)
      check(g == 16 || g == 32 || g == 64 || g == 128 || g == 256,
            "--kivi-groups: expected group sizes of 16, 32, 64, 128 or 256, got ", g);
    std::vector<Run> runs;
    std::vector<std::string> methods;
    const auto dir = o->common.model_dir();
    const int head_dim = load_llama_config(dir).head_dim;
    for (const auto& m : modes) {
      if (std::find(methods.begin(), methods.end(), m) != methods.end()) continue;
      KvOptions kv = o->common.kv_opts;
      kv.mode = parse_kv_mode(m);
      if ((kv.mode == KvMode::kKivi2 || kv.mode == KvMode::kKivi4) && !groups.empty()) {
        for (int g : groups) {
          const std::string name = m + "-g" + std::to_string(g);
          if (std::find(methods.begin(), methods.end(), name) != methods.end()) continue;
          methods.push_back(name);
          KvOptions kg = kv;
          kg.block_k = g;
          kg.quant_group = std::min(g, head_dim);
          check(head_dim % kg.quant_group == 0, "--kivi-groups: ", g,
                " channels do not divide head_dim ", head_dim);
          validate(kg);
          runs.push_back({name, kg});
        }
        continue;
      }
      methods.push_back(m);
      if (kv_mode_compressed(kv.mode)) {
        check(!ebs.empty(), "--eb: no error bound given for ", m);
        for (const auto& [ek, ev] : ebs) {
          kv.eb_k = ek;
          kv.eb_v = ev;
          validate(kv);
          runs.push_back({m, kv});
        }
      } else {
        runs.push_back({m, kv});
      }
    }

    const std::string text = read_text_file(o->text, "--text");
    auto engine = make_engine(dir, parse_device(o->common.device));
    const LlamaConfig& cfg = engine->config();
    const Tokenizer tok = load_tokenizer(dir, cfg.bos_token_id);
    const std::vector<int> ids = perplexity_ids(tok, cfg.bos_token_id, text);
    PerplexityOptions po = o->ppl;
    po.prefill = window_prefill(o->prefill, po.ctx);
    const int windows = perplexity_windows(ids, po);
    const std::filesystem::path out_dir(o->out);
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    check(!ec && std::filesystem::is_directory(out_dir), "--out: cannot create directory ",
          out_dir.string(), ec ? ": " + ec.message() : "");

    // fp16's next-token log-probabilities, the base of every run's KL divergence.
    LogProbsHeader bh;
    bh.vocab = cfg.vocab_size;
    bh.tokens = o->no_kld ? 0 : int64_t(windows) * (po.ctx - 1);
    TokenLogProbs base(bh);

    // One progress bar across runs, advanced per batch of windows.
    ProgressBar bar("sweep");
    const int total = int(runs.size()) * windows;
    std::vector<Row> rows;
    for (size_t i = 0; i < runs.size(); ++i) {
      const Run& run = runs[i];
      Row row;
      row.mode = run.mode;
      if (kv_mode_compressed(run.kv.mode)) {
        row.eb_k = run.kv.eb_k;
        row.eb_v = run.kv.eb_v;
        row.setting = "eb_K " + fmt(run.kv.eb_k, "%g") + ", eb_V " + fmt(run.kv.eb_v, "%g");
      } else if (kv_mode_fixedbit(run.kv.mode)) {
        const FixedBitFormats f = fixedbit_formats(run.kv, cfg.head_dim);
        row.setting = "K " + f.k.describe(run.kv.block_k, cfg.head_dim) + ", V " +
                      f.v.describe(run.kv.block_v, cfg.head_dim);
      } else {
        row.setting = "uncompressed";
      }
      po.kv = run.kv;
      std::unique_ptr<KldAccumulator> acc;
      po.on_token = nullptr;
      if (!o->no_kld && i == 0) {  // fp16
        po.on_token = [&](int64_t t, int, const float* logits, int, double lse) {
          base.set(t, logits, lse);
        };
      } else if (!o->no_kld) {
        acc = std::make_unique<KldAccumulator>(base);
        po.on_token = [&](int64_t t, int target, const float* logits, int vocab, double lse) {
          acc->add(t, target, logits, vocab, lse);
        };
      }
      const std::string label =
          run.mode +
          (std::isfinite(row.eb_v) ? " " + fmt(row.eb_k, "%g") + "/" + fmt(row.eb_v, "%g") : "");
      const PerplexityResult r = perplexity(*engine, ids, po, [&](int done, int) {
        bar.update(
            int(i) * windows + done, total,
            "runs " + std::to_string(i + 1) + "/" + std::to_string(runs.size()) + " " + label);
      });
      row.ppl = r.ppl;
      if (!o->no_kld && i == 0) {
        row.kld = row.kld_stderr = 0.0;
        row.same_top1_pct = 100.0;
      } else if (acc) {
        const KldSummary k = acc->summary();
        row.kld = k.mean;
        row.kld_stderr = k.stderr_;
        row.same_top1_pct = k.same_top1_pct;
      }
      row.tokens = r.tokens;
      row.windows = r.windows;
      row.seconds = r.seconds;
      row.compressed = r.kv.compressed;
      if (r.kv.compressed) {
        if (r.kv.k.n_values > 0) row.k_bits = r.kv.k_bits();
        if (r.kv.v.n_values > 0) row.v_bits = r.kv.v_bits();
        if (r.kv.compressed_bytes() > 0) {
          row.ratio = r.kv.ratio();
          row.bits = 16.0 / row.ratio;
        }
        row.ratio_with_window = r.kv.ratio_with_window();
      } else {
        const double b = run.kv.mode == KvMode::kFp32 ? 32.0 : 16.0;
        row.k_bits = row.v_bits = row.bits = b;
        row.ratio = row.ratio_with_window = 16.0 / b;
      }
      rows.push_back(row);
    }
    bar.finish();
    const double fp16_ppl = rows[0].ppl;
    for (Row& r : rows) r.delta_pct = 100.0 * (r.ppl / fp16_ppl - 1.0);

    // Summary: per method, the smallest cache within the target; kvcomp against the best
    // fixed-bit baseline.
    const double limit = fp16_ppl * (1.0 + o->within / 100.0);
    nlohmann::json summary_methods = nlohmann::json::array();
    std::string summary = "within " + fmt(o->within, "%g") + "% of fp16 perplexity (" +
                          fmt(limit, "%.4f") + "), smallest cache per method:";
    int best_base = -1;
    for (const auto& m : methods) {
      if (m == "fp16" || m == "fp32") continue;
      const int b = best_within(rows, m, limit);
      nlohmann::json jm = {{"mode", m}};
      if (b < 0) {
        summary += " " + m + " none;";
        jm["row"] = nullptr;
      } else {
        const Row& r = rows[size_t(b)];
        bool most = true;  // the most compressed setting tried: the sweep may not reach the limit
        for (const Row& o : rows)
          if (o.mode == m && std::isfinite(o.bits) && o.bits < r.bits) most = false;
        const bool several =
            std::count_if(rows.begin(), rows.end(), [&](const Row& o) { return o.mode == m; }) > 1;
        summary += " " + m + " " + fmt(r.bits, "%.2f") + " bits (" + fmt(r.ratio, "%.2f") + "x" +
                   (std::isfinite(r.eb_v) ? ", " + r.setting : "") +
                   (most && several ? ", the most compressed tried" : "") + ");";
        jm["most_compressed_tried"] = most;
        jm["row"] = b;
        jm["bits"] = r.bits;
        jm["ratio"] = r.ratio;
        jm["ppl"] = r.ppl;
        if (is_fixedbit_name(m) && (best_base < 0 || r.bits < rows[size_t(best_base)].bits))
          best_base = b;
      }
      summary_methods.push_back(jm);
    }
    if (!summary.empty() && summary.back() == ';') summary.pop_back();
    const int best_kvcomp = best_within(rows, "kvcomp", limit);
    nlohmann::json comparison = nullptr;
    std::string verdict;
    if (best_kvcomp >= 0 && best_base >= 0) {
      const Row& k = rows[size_t(best_kvcomp)];
      const Row& b = rows[size_t(best_base)];
      const double higher = 100.0 * (k.ratio / b.ratio - 1.0);
      const double fewer = 100.0 * (1.0 - k.bits / b.bits);
      verdict = "kvcomp " + fmt(k.ratio, "%.2f") + "x (" + fmt(k.bits, "%.2f") +
                " bits/value) against the best fixed-bit baseline, " + b.mode + " " +
                fmt(b.ratio, "%.2f") + "x (" + fmt(b.bits, "%.2f") +
                " bits/value): " + fmt(higher, "%+.0f") + "% compression ratio, " +
                (fewer >= 0 ? fmt(fewer, "%.0f") + "% fewer" : fmt(-fewer, "%.0f") + "% more") +
                " KV bytes at that accuracy";
      comparison = {{"kvcomp_row", best_kvcomp}, {"baseline_row", best_base},
                    {"baseline", b.mode},        {"kvcomp_ratio", k.ratio},
                    {"baseline_ratio", b.ratio}, {"ratio_higher_pct", higher},
                    {"fewer_bytes_pct", fewer}};
    } else if (best_kvcomp < 0 &&
               std::find(methods.begin(), methods.end(), "kvcomp") != methods.end()) {
      verdict = "kvcomp: no error bound stays within the target";
    } else if (best_base < 0) {
      verdict = "no fixed-bit baseline stays within the target";
    }

    // Summary by KL divergence: per level, each method's smallest cache (interpolated along its
    // own curve) and kvcomp's against the best fixed-bit method's, stated where the error bars
    // separate the rows from the level.
    nlohmann::json kld_summary = nlohmann::json::array();
    std::string kld_text;
    if (!o->no_kld) {
      for (double level : {0.001, 0.005, 0.02}) {
        nlohmann::json jl = {{"level", level}};
        std::string line = "mean KLD <= " + fmt(level, "%g") + ":";
        double best_bits = NAN;
        std::string best_mode;
        bool best_resolved = false;
        nlohmann::json jm = nlohmann::json::object();
        for (const auto& m : methods) {
          if (m == "fp16" || m == "fp32") continue;
          const LevelPoint lp = at_level(rows, m, level);
          if (!lp.reached) {
            line += " " + m + " not reached;";
            jm[m] = nullptr;
            continue;
          }
          line += " " + m + " " + (lp.at_most ? "<= " : "") + fmt(lp.bits, "%.2f") + " bits" +
                  (lp.interpolated ? " (interpolated)" : "") + ";";
          jm[m] = {{"bits", lp.bits},
                   {"interpolated", lp.interpolated},
                   {"at_most", lp.at_most},
                   {"resolved", lp.resolved}};
          if (is_fixedbit_name(m) && (!std::isfinite(best_bits) || lp.bits < best_bits)) {
            best_bits = lp.bits;
            best_mode = m;
            best_resolved = lp.resolved;
          }
        }
        if (!line.empty() && line.back() == ';') line.pop_back();
        jl["methods"] = jm;
        const LevelPoint k = at_level(rows, "kvcomp", level);
        if (k.reached && std::isfinite(best_bits)) {
          const double fewer = 100.0 * (1.0 - k.bits / best_bits);
          const bool sep = k.resolved && best_resolved && !k.at_most;
          const char* why = k.at_most ? " (kvcomp's cheapest row tried is already below the "
                                        "level: at least this saving)"
                            : sep ? ""
                                  : " (not separated: a row within two standard errors of the "
                                    "level)";
          line += "\n  kvcomp " + fmt(k.bits, "%.2f") + " bits against " + best_mode + " " +
                  fmt(best_bits, "%.2f") + ": " +
                  (fewer >= 0 ? fmt(fewer, "%.0f") + "% fewer" : fmt(-fewer, "%.0f") + "% more") +
                  " KV bytes" + why;
          jl["kvcomp_vs_best_fixed"] = {{"baseline", best_mode},
                                        {"fewer_bytes_pct", fewer},
                                        {"separated", sep}};
        }
        kld_text += line + "\n";
        kld_summary.push_back(jl);
      }
    }

    // Files.
    {
      std::ofstream csv(out_dir / "sweep.csv");
      check(bool(csv), "--out: cannot write ", (out_dir / "sweep.csv").string());
      csv << "mode,setting,eb_k,eb_v,k_bits,v_bits,bits,ratio,ratio_with_window,ppl,delta_pct,"
             "kld_mean,kld_stderr,same_top1_pct,tokens,windows,seconds\n";
      for (const Row& r : rows) {
        csv << csv_field(r.mode) << "," << csv_field(r.setting) << "," << fmt(r.eb_k, "%g") << ","
            << fmt(r.eb_v, "%g") << "," << fmt(r.k_bits, "%.4f") << "," << fmt(r.v_bits, "%.4f")
            << "," << fmt(r.bits, "%.4f") << "," << fmt(r.ratio, "%.4f") << ","
            << fmt(r.ratio_with_window, "%.4f") << "," << fmt(r.ppl, "%.6f") << ","
            << fmt(r.delta_pct, "%.4f") << "," << fmt(r.kld, "%.6e") << ","
            << fmt(r.kld_stderr, "%.3e") << "," << fmt(r.same_top1_pct, "%.3f") << ","
            << r.tokens << "," << r.windows << ","
            << fmt(r.seconds, "%.2f") << "\n";
      }
    }
    nlohmann::json jrows = nlohmann::json::array();
    for (const Row& r : rows)
      jrows.push_back({{"mode", r.mode},
                       {"setting", r.setting},
                       {"eb_k", num_or_null(r.eb_k)},
                       {"eb_v", num_or_null(r.eb_v)},
                       {"k_bits", num_or_null(r.k_bits)},
                       {"v_bits", num_or_null(r.v_bits)},
                       {"bits", num_or_null(r.bits)},
                       {"ratio", num_or_null(r.ratio)},
                       {"ratio_with_window", num_or_null(r.ratio_with_window)},
                       {"ppl", num_or_null(r.ppl)},
                       {"delta_pct", num_or_null(r.delta_pct)},
                       {"kld_mean", num_or_null(r.kld)},
                       {"kld_stderr", num_or_null(r.kld_stderr)},
                       {"same_top1_pct", num_or_null(r.same_top1_pct)},
                       {"tokens", r.tokens},
                       {"windows", r.windows},
                       {"seconds", r.seconds}});
    const KvOptions& ko = o->common.kv_opts;
    nlohmann::json j = {{"model", dir.string()},
                        {"device", engine->device_name()},
                        {"text", o->text},
                        {"ctx", po.ctx},
                        {"prefill", po.prefill},
                        {"windows", windows},
                        {"block_k", ko.block_k},
                        {"block_v", ko.block_v},
                        {"window_k", ko.window_k},
                        {"window_v", ko.window_v},
                        {"quant_group", ko.quant_group},
                        {"fp16_ppl", fp16_ppl},
                        {"within_pct", o->within},
                        {"rows", jrows},
                        {"summary", {{"methods", summary_methods}, {"comparison", comparison}}},
                        {"kld_summary", kld_summary}};
    {
      std::ofstream js(out_dir / "sweep.json");
      check(bool(js), "--out: cannot write ", (out_dir / "sweep.json").string());
      js << j.dump(2) << "\n";
    }

    // Table and summary.
    std::printf(
        "sweep: %s on %s, %d window(s) of %d tokens (prefill %d + decode steps), "
        "windows K %d / V %d tokens raw\n",
        dir.string().c_str(), engine->device_name().c_str(), windows, po.ctx, po.prefill,
        ko.window_k, ko.window_v);
    std::printf(
        "| %-14s | %-58s | %6s | %6s | %7s | %7s | %7s | %7s | %10s | %8s | %21s | %7s |\n",
        "mode", "setting", "eb K", "eb V", "K bits", "V bits", "bits", "ratio", "perplexity",
        "delta", "mean KLD +- stderr", "top-1");
    std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(16, '-').c_str(),
                std::string(60, '-').c_str(), std::string(8, '-').c_str(),
                std::string(8, '-').c_str(), std::string(9, '-').c_str(),
                std::string(9, '-').c_str(), std::string(9, '-').c_str(),
                std::string(9, '-').c_str(), std::string(12, '-').c_str(),
                std::string(10, '-').c_str(), std::string(23, '-').c_str(),
                std::string(9, '-').c_str());
    for (const Row& r : rows) {
      const std::string delta = fmt(r.delta_pct, "%+.2f") + (std::isfinite(r.delta_pct) ? "%" : "");
      const std::string kld =
          std::isfinite(r.kld) ? fmt(r.kld, "%.3e") + " +- " + fmt(r.kld_stderr, "%.1e") : "";
      const std::string top1 =
          fmt(r.same_top1_pct, "%.2f") + (std::isfinite(r.same_top1_pct) ? "%" : "");
      std::printf(
          "| %-14s | %-58s | %6s | %6s | %7s | %7s | %7s | %7s | %10s | %8s | %21s | %7s |\n",
          r.mode.c_str(), r.setting.c_str(), fmt(r.eb_k, "%g").c_str(), fmt(r.eb_v, "%g").c_str(),
          fmt(r.k_bits, "%.3f").c_str(), fmt(r.v_bits, "%.3f").c_str(),
          fmt(r.bits, "%.3f").c_str(),
          (fmt(r.ratio, "%.2f") + (std::isfinite(r.ratio) ? "x" : "")).c_str(),
          fmt(r.ppl, "%.4f").c_str(), delta.c_str(), kld.c_str(), top1.c_str());
    }
    std::printf(
        "bits: per value held in blocks (K and V together; scales, zeros, Huffman "
        "metadata and codebooks included; the raw recent window excluded); ratio = fp16 "
        "bytes / bytes of the same values; KLD: KL(fp16 || mode) of the next-token "
        "distributions, top-1: tokens whose most likely next token is fp16's\n");
    std::printf("%s\n", summary.c_str());
    if (!verdict.empty()) std::printf("%s\n", verdict.c_str());
    if (!kld_text.empty())
      std::printf("By KL divergence from fp16 (mean over every scored token):\n%s",
                  kld_text.c_str());

    // The plot, through gnuplot (Debian: gnuplot-nox); its absence is not an error.
    std::ostringstream title;
    title << "kvcomp sweep: " << dir.filename().string() << ", ctx " << po.ctx << ", " << windows
          << " window(s), prefill " << po.prefill;
    {
      std::ofstream gp(out_dir / "sweep.gp");
      check(bool(gp), "--out: cannot write ", (out_dir / "sweep.gp").string());
      gp << gnuplot_script(rows, methods, fp16_ppl, o->within, title.str());
    }
    const char* env = std::getenv("KVCOMP_GNUPLOT");
    const std::string gnuplot = env && *env ? env : "gnuplot";
    const std::string command =
        "cd " + shell_quote(out_dir.string()) + " && " + shell_quote(gnuplot) + " sweep.gp 2>&1";
    std::string plot_out;
    int status = -1;
    if (FILE* p = popen(command.c_str(), "r")) {
      char buf[512];
      while (size_t n = fread(buf, 1, sizeof buf, p)) plot_out.append(buf, n);
      status = pclose(p);
    }
    const std::filesystem::path png = out_dir / "sweep.png";
    if (status == 0 && std::filesystem::exists(png)) {
      std::printf("wrote %s, %s, %s (%s)\n", (out_dir / "sweep.csv").string().c_str(),
                  (out_dir / "sweep.json").string().c_str(), png.string().c_str(),
                  (out_dir / "sweep.gp").string().c_str());
    } else {
      const bool missing = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 127;
      std::printf("wrote %s, %s\n", (out_dir / "sweep.csv").string().c_str(),
                  (out_dir / "sweep.json").string().c_str());
      std::fprintf(stderr,
                   "sweep: PNG skipped: %s (the plot script is %s; install the Debian package "
                   "gnuplot-nox, then run it with: cd %s && gnuplot sweep.gp)\n",
                   missing ? ("'" + gnuplot + "' was not found").c_str()
                           : ("'" + gnuplot + "' failed: " + plot_out).c_str(),
                   (out_dir / "sweep.gp").string().c_str(), shell_quote(out_dir.string()).c_str());
    }
  });
}

}  // namespace kvcomp::cli
