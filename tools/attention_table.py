#!/usr/bin/env python3
"""One table of decode attention from the three benchmarks of one device call:
kvcomp_bench_attention --json (kvcomp, fp16 flash, fp16 cuBLAS), tools/bench_attention_torch.py
--json (torch eager and SDPA) and ../shared/anchors/ggml-fa/run.sh's printed table (llama.cpp's
flash attention over f16, q8_0, q4_0 caches). Writes docs/bench/attention.json's schema
({"device", "commit", "rows": [{"kv_heads", "ctx", "batch", "us": {...}}]}) and prints the
markdown table with kvcomp's speedup over SDPA and over the fastest other path of each row."""
import argparse
import json
import re
import subprocess

KEYS = ["kvcomp", "kvcomp_fixed", "fp16", "fp16_cublas", "torch_eager", "torch_sdpa", "ggml_f16", "ggml_q8_0",
        "ggml_q4_0"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="kvcomp_bench_attention --json output")
    ap.add_argument("--torch", help="bench_attention_torch.py --json output")
    ap.add_argument("--ggml", help="ggml-fa/run.sh output (its markdown table)")
    ap.add_argument("--commit", default="")
    ap.add_argument("--note", default="", help="where the rows come from, kept in the JSON")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    bench = json.load(open(args.bench))
    rows = {}
    for r in bench["rows"]:
        key = (r["kv_heads"], r["ctx"], r["batch"])
        rows[key] = {k: r["us"][k] for k in ("kvcomp", "kvcomp_fixed", "fp16", "fp16_cublas")
                     if k in r["us"]}
    if args.torch:
        for r in json.load(open(args.torch))["rows"]:
            key = (r["kv_heads"], r["ctx"], r["batch"])
            if key in rows:
                rows[key]["torch_eager"] = r["eager_ms"] * 1e3
                rows[key]["torch_sdpa"] = r["sdpa_ms"] * 1e3
    if args.ggml:
        for line in open(args.ggml):
            m = re.match(r"\|\s*(\w+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|", line)
            if m:
                t, kv, ctx, b, us = m.groups()
                key = (int(kv), int(ctx), int(b))
                if key in rows:
                    rows[key]["ggml_" + t] = float(us)
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip()
    out = {"device": bench.get("device", ""), "commit": commit,
           "copy_gbs": bench.get("copy_gbs"), "rows": []}
    if args.note:
        out["note"] = args.note
    print("| KV heads | ctx | batch | " + " | ".join(KEYS) +
          " | kvcomp vs SDPA | vs best other | kvcomp_fixed vs SDPA | vs best other |")
    print("|" + "---|" * (len(KEYS) + 7))
    for key in sorted(rows, key=lambda k: (-k[0], k[2], k[1])):
        us = rows[key]
        out["rows"].append({"kv_heads": key[0], "ctx": key[1], "batch": key[2], "us": us})
        sdpa = us.get("torch_sdpa")
        cells = ["%.1f" % us[k] if k in us and us[k] == us[k] else "-" for k in KEYS]
        ratios = []
        for ours in ("kvcomp", "kvcomp_fixed"):
            # the other paths: every baseline, not the other kvcomp coding
            others = [v for k, v in us.items() if not k.startswith("kvcomp") and v == v]
            t = us.get(ours)
            ratios.append("%.2fx" % (sdpa / t) if sdpa and t else "-")
            ratios.append("%.2fx" % (min(others) / t) if others and t else "-")
        print("| %d | %d | %d | %s | %s |" % (key[0], key[1], key[2], " | ".join(cells),
                                            " | ".join(ratios)))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
