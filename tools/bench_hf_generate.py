#!/usr/bin/env python3
"""transformers' generate on the same models and GPU as `kvcomp bench`, for the end-to-end
comparison: greedy decoding of --new tokens after a --prompt-token prompt at batch 1, bf16, its
default (SDPA) attention and dynamic cache. Reports prefill tokens/s and decode tokens/s (median
of --reps runs; decode time = generate time - prefill time)."""
import argparse
import json
import time

import torch
import transformers


def timed(fn, reps):
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    out.sort()
    return out[len(out) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/demo", help="model directory")
    ap.add_argument("--config", default="", help="a config.json: random weights of its shape")
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.config:
        cfg = transformers.AutoConfig.from_pretrained(args.config)
        with torch.device("cuda"):
            model = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16)
        name = args.config + " (random weights)"
    else:
        model = transformers.LlamaForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).cuda()
        name = args.model
    model.eval()
    V = model.config.vocab_size
    ids = torch.randint(3, V, (1, args.prompt_tokens), device="cuda")
    with torch.no_grad():
        model(ids)  # warm-up
        prefill = timed(lambda: model(ids), args.reps)
        gen = lambda: model.generate(ids, max_new_tokens=args.new, min_new_tokens=args.new,
                                     do_sample=False, pad_token_id=0)
        gen()
        total = timed(gen, args.reps)
    decode = total - prefill
    res = {"model": name, "transformers": transformers.__version__, "prompt_tokens": args.prompt_tokens,
           "new_tokens": args.new, "prefill_tokens_per_s": args.prompt_tokens / prefill,
           "decode_tokens_per_s": args.new / decode, "decode_step_ms": 1e3 * decode / args.new}
    print("transformers %s generate, %s: prompt %d tokens: prefill %.0f tok/s; %d new tokens: "
          "decode %.1f tok/s (%.3f ms/token)" % (transformers.__version__, name, args.prompt_tokens,
                                                 res["prefill_tokens_per_s"], args.new,
                                                 res["decode_tokens_per_s"], res["decode_step_ms"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
