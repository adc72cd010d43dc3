#!/usr/bin/env python3
"""The two ceilings every GPU figure is compared with, measured on this machine: device-to-device
copy bandwidth (bytes read + written) and the bf16 GEMM rate on random data (8192^3)."""
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


if __name__ == "__main__":
    main()
