#!/usr/bin/env python3
"""The two ceilings every GPU figure is compared with, measured on this machine: device-to-device
copy bandwidth (bytes read + written) and the bf16 GEMM rate on random data (8192^3), plus the
rate of the GEMMs of a 2048-token Llama-2-7B prefill (the four projections of a layer at their
shapes: the rate a prefill is compared with)."""
import torch


def timed(fn, reps=20, warmup=3):
    for _ in range(warmup):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]  # median, ms


def main():
    n = 1 << 30  # 2 GiB of bf16 per buffer
    a = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    b = torch.empty_like(a)
    ms = timed(lambda: b.copy_(a))
    copy_tbps = 2 * a.numel() * 2 / (ms * 1e-3) / 1e12
    del a, b
    m = 8192
    x = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    y = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    ms_mm = timed(lambda: x @ y)
    tflops = 2 * m ** 3 / (ms_mm * 1e-3) / 1e12
    print("device: %s" % torch.cuda.get_device_name())
    print("copy bandwidth (read+write): %.2f TB/s (median of 20, 4 GiB moved per copy)" % copy_tbps)
    print("bf16 GEMM 8192^3 random data: %.0f TFLOP/s (median of 20)" % tflops)
    del x, y
    # One Llama-2-7B layer's projections for 2048 tokens: qkv, o, gate+up, down (y = x w^T).
    t, h, inter = 2048, 4096, 11008
    shapes = [(h, 3 * h), (h, h), (h, 2 * inter), (inter, h)]
    xs = {k: torch.randn(t, k, device="cuda", dtype=torch.bfloat16) for k in (h, inter)}
    ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for k, n in shapes]
    ms_layer = timed(lambda: [xs[w.shape[1]] @ w.t() for w in ws])
    flops = sum(2 * t * k * n for k, n in shapes)
    print("bf16 GEMMs of a 7B layer, 2048 tokens: %.0f TFLOP/s (%.3f ms per layer)"
          % (flops / (ms_layer * 1e-3) / 1e12, ms_layer))


if __name__ == "__main__":
    main()
