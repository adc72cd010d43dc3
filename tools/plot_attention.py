#!/usr/bin/env python3
"""Decode attention latency against context, one panel per (KV heads, batch), from the
benchmarks' outputs:

  kvcomp_bench_attention --json A.json     rows: kv_heads, ctx, batch, us {kvcomp, fp16,
                                           fp16_cublas} (older files: cublas_ms, fused_ms)
  docs/bench/attention.json                the same with torch and ggml in "us"
  tools/bench_attention_torch.py --json T.json   rows: kv_heads, ctx, batch, eager_ms, sdpa_ms

Either file may also be the markdown table the benchmark prints (docs/bench/*.txt). Writes
OUT/attention.png (a grid: rows = KV heads, columns = batch), OUT/attention.gp and
OUT/attention.dat (the gnuplot script and its data, to re-run or edit). Needs only the Python
standard library and gnuplot (Debian: gnuplot-nox); without gnuplot the script and data are
still written and the command to run them is printed.

  tools/plot_attention.py --bench A.json [--torch T.json] [--out DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

# Series: (key in a row, legend title, gnuplot style).
SERIES = [
    ("cublas_ms", "fp16 cache, cuBLAS", "lc rgb '#1f77b4' pt 7"),
    ("flash_ms", "fp16 cache, flash decoding", "lc rgb '#17becf' pt 6"),
    ("fused_ms", "kvcomp fused", "lc rgb '#d62728' pt 5"),
    ("fixed_ms", "kvcomp-fixed fused (fixed-length codes)", "lc rgb '#bcbd22' pt 15"),
    ("unfused_ms", "kvcomp unfused (decode to fp16 + cuBLAS)", "lc rgb '#ff7f0e' pt 9"),
    ("eager_ms", "torch matmul-softmax-matmul", "lc rgb '#2ca02c' pt 11 dt 2"),
    ("sdpa_ms", "torch SDPA", "lc rgb '#9467bd' pt 13 dt 2"),
    ("ggml_f16_ms", "llama.cpp flash attention, f16", "lc rgb '#8c564b' pt 4 dt 3"),
    ("ggml_q8_0_ms", "llama.cpp flash attention, q8_0", "lc rgb '#e377c2' pt 8 dt 3"),
]

# The "us" objects of kvcomp_bench_attention's rows and of docs/bench/attention.json
# (microseconds) -> row keys (milliseconds).
US_KEYS = {"kvcomp": "fused_ms", "kvcomp_fixed": "fixed_ms", "fp16": "flash_ms", "fp16_cublas": "cublas_ms",
           "torch_eager": "eager_ms", "torch_sdpa": "sdpa_ms", "ggml_f16": "ggml_f16_ms",
           "ggml_q8_0": "ggml_q8_0_ms"}

# Markdown table columns (microseconds) -> row keys (milliseconds).
TABLE_COLUMNS = {
    "cublas us": "cublas_ms",
    "kvcomp us": "fused_ms",
    "fp16 flash us": "flash_ms",
    "fp16 cublas us": "cublas_ms",
    "fused us": "fused_ms",
    "unfused us": "unfused_ms",
    "matmul-softmax-matmul us": "eager_ms",
    "sdpa us": "sdpa_ms",
}


def fail(msg):
    sys.stderr.write("plot_attention: error: %s\n" % msg)
    sys.exit(1)


def read_table(path, text):
    """Rows of a benchmark's markdown table: '| kv heads | ctx | batch | ... |'."""
    rows, header = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            if [c.lower() for c in cells[:3]] == ["kv heads", "ctx", "batch"]:
                header = [c.lower() for c in cells]
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        row = {}
        try:
            row["kv_heads"], row["ctx"], row["batch"] = (int(cells[0]), int(cells[1]), int(cells[2]))
        except (ValueError, IndexError):
            fail("%s: cannot read the row '%s'" % (path, line))
        for name, cell in zip(header, cells):
            key = TABLE_COLUMNS.get(name)
            if key:
                try:
                    row[key] = float(cell.split()[0]) / 1000.0
                except (ValueError, IndexError):
                    fail("%s: column '%s': '%s' is not a number" % (path, name, cell))
        rows.append(row)
    if header is None:
        fail("%s: no table with columns 'kv heads | ctx | batch' found" % path)
    return rows


def read_rows(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        fail("%s: %s" % (path, e.strerror))
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as e:
            fail("%s: not valid JSON: %s" % (path, e))
        rows = doc.get("rows")
        if not isinstance(rows, list):
            fail("%s: expected an object with a 'rows' list" % path)
        for r in rows:
            for k in ("kv_heads", "ctx", "batch"):
                if k not in r:
                    fail("%s: a row has no '%s'" % (path, k))
            for k, v in (r.get("us") or {}).items():
                if k in US_KEYS and isinstance(v, (int, float)):
                    r[US_KEYS[k]] = v / 1000.0
        return rows
    return read_table(path, text)


def merge(sources):
    """{(kv_heads, batch): {ctx: {series key: ms}}}"""
    panels = {}
    for rows in sources:
        for r in rows:
            cell = panels.setdefault((int(r["kv_heads"]), int(r["batch"])), {}).setdefault(int(r["ctx"]), {})
            for key, _, _ in SERIES:
                v = r.get(key)
                if isinstance(v, (int, float)) and v > 0:
                    cell[key] = float(v)
    return panels


def ctx_label(c):
    return "%dk" % (c // 1024) if c % 1024 == 0 else str(c)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", action="append", default=[], help="kvcomp_bench_attention JSON (or its table)")
    ap.add_argument("--torch", action="append", default=[], help="bench_attention_torch.py JSON (or its table)")
    ap.add_argument("--out", default="attention-plot", help="output directory (default: %(default)s)")
    ap.add_argument("--title", default="decode attention, head_dim 128, 32 query heads")
    args = ap.parse_args()
    if not args.bench and not args.torch:
        fail("give at least one --bench or --torch file")
    panels = merge([read_rows(p) for p in args.bench + args.torch])
    if not panels:
        fail("no rows in the input files")
    os.makedirs(args.out, exist_ok=True)

    kv_list = sorted({k for k, _ in panels}, reverse=True)
    batch_list = sorted({b for _, b in panels})
    present = [s for s in SERIES if any(s[0] in cell for p in panels.values() for cell in p.values())]
    # Data: one gnuplot index block per panel: ctx, then one column per present series (NaN: none).
    order = [(kv, b) for kv in kv_list for b in batch_list if (kv, b) in panels]
    with open(os.path.join(args.out, "attention.dat"), "w") as f:
        f.write("# ctx " + " ".join(s[0] for s in present) + " (milliseconds)\n")
        for kv, b in order:
            f.write("# kv_heads %d batch %d\n" % (kv, b))
            for c in sorted(panels[(kv, b)]):
                cell = panels[(kv, b)][c]
                f.write("%d %s\n" % (c, " ".join("%.6g" % cell[s[0]] if s[0] in cell else "NaN" for s in present)))
            f.write("\n\n")
    all_ctx = sorted({c for p in panels.values() for c in p})
    tics = ", ".join('"%s" %d' % (ctx_label(c), c) for c in all_ctx)
    g = []
    g.append("# Decode attention latency against context. Re-run: gnuplot attention.gp (in this directory)")
    g.append("set terminal pngcairo size %d,%d enhanced font 'sans,10'" % (520 * len(batch_list), 380 * len(kv_list) + 40))
    g.append("set output 'attention.png'")
    g.append("set datafile missing 'NaN'")
    g.append("set logscale x 2")
    g.append("set logscale y 10")
    g.append("set xtics (%s)" % tics)
    g.append("set xrange [%g:%g]" % (all_ctx[0] / 1.25, all_ctx[-1] * 1.25))
    g.append("set format y '%g'")
    g.append("set grid")
    g.append("set key top left box opaque font ',8'")
    g.append("set xlabel 'context (tokens)'")
    g.append("set ylabel 'latency (µs)'")
    g.append('set multiplot layout %d,%d title "%s" noenhanced' % (len(kv_list), len(batch_list), args.title))
    for kv in kv_list:
        for b in batch_list:
            if (kv, b) not in panels:
                g.append("set multiplot next")
                continue
            idx = order.index((kv, b))
            g.append('set title "%d KV heads, batch %d" noenhanced' % (kv, b))
            plots = []
            for col, (key, title, style) in enumerate(present, start=2):
                if not any(key in cell for cell in panels[(kv, b)].values()):
                    continue
                plots.append("'attention.dat' index %d using 1:($%d*1000) with linespoints lw 2 %s title '%s'"
                             % (idx, col, style, title))
            g.append("plot " + ", \\\n     ".join(plots))
    g.append("unset multiplot")
    with open(os.path.join(args.out, "attention.gp"), "w") as f:
        f.write("\n".join(g) + "\n")

    gnuplot = os.environ.get("KVCOMP_GNUPLOT", "gnuplot")
    if shutil.which(gnuplot) is None:
        print("plot_attention: PNG skipped: '%s' was not found (install the Debian package gnuplot-nox, "
              "then run: cd %s && gnuplot attention.gp)" % (gnuplot, args.out), file=sys.stderr)
        return 0
    r = subprocess.run([gnuplot, "attention.gp"], cwd=args.out, capture_output=True, text=True)
    if r.returncode != 0:
        fail("gnuplot failed on %s:\n%s" % (os.path.join(args.out, "attention.gp"), r.stderr))
    print("wrote %s (%d panels: KV heads %s x batch %s; series: %s)" % (
        os.path.join(args.out, "attention.png"), len(order), ",".join(map(str, kv_list)),
        ",".join(map(str, batch_list)), ", ".join(s[1] for s in present)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
