#!/usr/bin/env python3
"""Decode attention through PyTorch on the shapes of kvcomp_bench_attention: fp16 K/V cache,
one query token per sequence; matmul-softmax-matmul (the eager attention of transformers) and
scaled_dot_product_attention. CUDA events, L2 flushed before each run, median of --reps."""
import argparse
import json

import torch
import torch.nn.functional as F


def parse_list(s):
    out = []
    for it in s.split(","):
        mult = 1024 if it[-1] in "kK" else 1
        out.append(int(it.rstrip("kK")) * mult)
    return out


def median_ms(fn, reps, flush):
    for _ in range(3):
        fn()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for i in range(reps):
        flush.fill_(i & 0xff)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctx", default="4k,16k,32k,64k,128k")
    ap.add_argument("--batch", default="1,8,16")
    ap.add_argument("--max-ctx-batch16", type=int, default=32768,
                    help="batches above 8 run only up to this context")
    ap.add_argument("--kv-heads", default="32,8")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.manual_seed(0)
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    hd, H = args.head_dim, args.heads
    scale = hd ** -0.5
    rows = []
    print("torch %s on %s" % (torch.__version__, torch.cuda.get_device_name()))
    print("| kv heads | ctx | batch | matmul-softmax-matmul us | GB/s | SDPA us | GB/s |")
    print("|---|---|---|---|---|---|---|")
    for KV in parse_list(args.kv_heads):
        G = H // KV
        for C in parse_list(args.ctx):
            for B in parse_list(args.batch):
                if B > 8 and C > args.max_ctx_batch16:
                    continue
                k = torch.randn(B, KV, C, hd, device="cuda", dtype=torch.float16)
                v = torch.randn(B, KV, C, hd, device="cuda", dtype=torch.float16)
                q = torch.randn(B, H, 1, hd, device="cuda", dtype=torch.float16)
                qg = q.view(B, KV, G, hd)

                def eager():
                    s = torch.matmul(qg, k.transpose(-1, -2)) * scale
                    p = torch.softmax(s, dim=-1, dtype=torch.float32).to(torch.float16)
                    return torch.matmul(p, v)

                def sdpa():
                    return F.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=G > 1)

                with torch.no_grad():
                    ref = eager().view(B, H, 1, hd).float()
                    err = ((sdpa().float() - ref).norm() / ref.norm()).item()
                    t_eager = median_ms(eager, args.reps, flush)
                    t_sdpa = median_ms(sdpa, args.reps, flush)
                nbytes = 2 * B * KV * C * hd * 2
                print("| %d | %d | %d | %.1f | %.0f | %.1f | %.0f |" % (
                    KV, C, B, t_eager * 1e3, nbytes / (t_eager * 1e-3) / 1e9, t_sdpa * 1e3,
                    nbytes / (t_sdpa * 1e-3) / 1e9), flush=True)
                rows.append({"kv_heads": KV, "ctx": C, "batch": B, "eager_ms": t_eager,
                             "sdpa_ms": t_sdpa, "fp16_bytes": nbytes, "sdpa_vs_eager_rel_err": err})
                del k, v, q
                torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
