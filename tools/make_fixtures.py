#!/usr/bin/env python3
"""Writes the reference fixtures of kvcomp's C++ tests (tests/fixtures/), computed with
transformers in float32. Run on the GPU machine after tools/train_demo.py:

  python3 tools/make_fixtures.py                # tiny models + demo model reference
  python3 tools/make_fixtures.py --skip-demo    # tiny models only (no trained model needed)

Needs torch (2.11), transformers (5.x), safetensors, sentencepiece. No network.

1. Two tiny random-weight Llama checkpoints (seeded), each a real HF model directory,
   with reference.json next to the weights:
   tests/fixtures/tiny-gqa/   vocab 256, hidden 64, 2 layers, 4 heads / 2 KV heads, head_dim
       derived (16), intermediate 160, untied lm_head, fp32, one model.safetensors,
       rms_norm_eps 1e-6, bos 1 / eos 2. Its config.json is rewritten in the style of
       transformers 4.x checkpoints (top-level rope_theta, "rope_scaling": null, no
       head_dim, "torch_dtype"), and transformers 5 is checked to load it identically.
   tests/fixtures/tiny-tied/  vocab 256, hidden 64, 2 layers, 4 heads / 1 KV head, explicit
       head_dim 32 (q_dim 128 != hidden), intermediate 96, tied embeddings, bf16 weights in
       2 shards + model.safetensors.index.json, llama3 RoPE scaling (factor 8, low/high freq
       factor 1/4, original context 32, theta 500000) written by transformers 5 itself
       (rope_parameters), eos_token_id [2, 3].
   Weights: normal(0, 0.2) for matrices and embeddings; RMSNorm weights 1 + normal(0, 0.1)
   (so a runtime that ignores or offsets norm weights fails).
   reference.json: the config.json as written, RoPE inverse frequencies, and for three
   seeded token sequences (lengths 1, 7, 40; the 40-token one passes tiny-tied's 32-token
   original context) the fp32 logits at every position (7 significant digits); plus the
   perplexity of a seeded 150-token sequence under kvcomp's protocol at ctx 64: ids = [BOS]
   + sequence; consecutive non-overlapping windows of ctx tokens (here 2; the remaining 23
   tokens are ignored), each evaluated on its own; ppl = exp(mean NLL over the ctx-1
   predicted tokens of every window).

2. tests/fixtures/demo_reference.json, for the trained demo model (models/demo), weights
   upcast from bf16 to fp32: for 3 short English prompts, the ids ([BOS] + sentencepiece
   encode: what an HF tokenizer with add_bos_token gives), the full-vocabulary logits at the
   last position and the log-probability of each next prompt token; the held-out perplexity
   (models/demo/heldout.txt, protocol above) at ctx 1024 with 4 windows and with all
   windows, and at ctx 256 with 8 windows; a digest of the held-out token ids.

fp32 everywhere: TF32 disabled (checked numerically on the GPU), eager attention.
"""

import argparse
import hashlib
import json
import math
import os
import random
import struct
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEQ_LENGTHS = (1, 7, 40)
SEQ_SEED = 20240607
PPL_SEED = 20240608
PPL_LEN = 150
PPL_CTX = 64
SIG_DIGITS = 7
INIT_STD = 0.2
NORM_STD = 0.1

TINY = {
    "tiny-gqa": dict(
        seed=1001,
        config=dict(vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, hidden_act="silu",
                    max_position_embeddings=256, initializer_range=INIT_STD, rms_norm_eps=1e-6,
                    bos_token_id=1, eos_token_id=2, pad_token_id=None, tie_word_embeddings=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                    attention_bias=False, mlp_bias=False),
        dtype="float32", shards=1, legacy_config=True),
    "tiny-tied": dict(
        seed=2002,
        config=dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=1, head_dim=32, hidden_act="silu",
                    max_position_embeddings=256, initializer_range=INIT_STD, rms_norm_eps=1e-5,
                    bos_token_id=1, eos_token_id=[2, 3], pad_token_id=None, tie_word_embeddings=True,
                    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 32},
                    attention_bias=False, mlp_bias=False),
        dtype="bfloat16", shards=2, legacy_config=False),
}

DEMO_PROMPTS = [
    "The ship sailed at dawn, and the crew",
    "Mr. Speaker, the state of our Union is",
    "She had never seen so fine a house in all her life.",
]
DEMO_PPL_RUNS = [(1024, 4), (1024, 0), (256, 8)]     # (ctx, max windows; 0 = all)


def die(msg):
    print("make_fixtures: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def log(msg):
    print("make_fixtures: " + msg, flush=True)


def r7(x):
    return float("%.*g" % (SIG_DIGITS, x))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dump_json(obj, path):
    """JSON with nested objects indented and lists of numbers or strings on one line."""
    def fmt(o, ind):
        pad, pad1 = " " * ind, " " * (ind + 1)
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = [pad1 + json.dumps(str(k), ensure_ascii=False) + ": " + fmt(v, ind + 1) for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, list) and o and any(isinstance(v, (dict, list)) for v in o):
            return "[\n" + ",\n".join(pad1 + fmt(v, ind + 1) for v in o) + "\n" + pad + "]"
        return json.dumps(o, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    with open(path, "w", encoding="utf-8") as f:
        f.write(fmt(obj, 0) + "\n")


def set_fp32_exact(torch, device):
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    except (AttributeError, RuntimeError) as e:
        log("TF32 flags refused (%s); using fp32_precision = 'ieee'" % e)
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    if device.type == "cuda":
        g = torch.Generator(device="cpu").manual_seed(0)
        a = torch.randn(256, 256, generator=g, dtype=torch.float64)
        b = torch.randn(256, 256, generator=g, dtype=torch.float64)
        ref = a @ b
        got = (a.float().to(device) @ b.float().to(device)).double().cpu()
        err = ((got - ref).abs().max() / ref.abs().max()).item()
        if err > 1e-5:
            die("fp32 matmul is not exact fp32 (relative error %.2e): TF32 still on?" % err)


def random_ids(seed, n, vocab):
    rng = random.Random(seed)
    return [rng.randrange(3, vocab) for _ in range(n)]      # no <unk>/<s>/</s>


# ----------------------------------------------------------------------------
# Model helpers
# ----------------------------------------------------------------------------

def randomize(torch, model, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):   # tied appear once
            if name.endswith("norm.weight"):
                p.copy_(1.0 + NORM_STD * torch.randn(p.shape, generator=g, dtype=torch.float32))
            else:
                p.copy_(INIT_STD * torch.randn(p.shape, generator=g, dtype=torch.float32))


def rotary_inv_freq(model):
    rot = getattr(model.model, "rotary_emb", None)
    if rot is None or not hasattr(rot, "inv_freq"):
        die("cannot find model.model.rotary_emb.inv_freq in this transformers version")
    return rot.inv_freq.detach().float().cpu()


def forward_logits(torch, model, ids, device):
    with torch.no_grad():
        x = torch.tensor([ids], dtype=torch.int64, device=device)
        return model(input_ids=x, use_cache=False).logits[0].float().cpu()


def protocol_nll(torch, model, ids, ctx, max_windows, device, batch=8):
    """kvcomp's protocol over `ids` (which already start with BOS): returns
    (sum of NLL per window, tokens predicted per window, windows)."""
    import torch.nn.functional as F
    n = len(ids) // ctx
    if max_windows:
        n = min(n, max_windows)
    if n < 1:
        die("sequence of %d tokens has no window of %d" % (len(ids), ctx))
    t = torch.tensor(ids[:n * ctx], dtype=torch.int64).view(n, ctx)
    sums = []
    with torch.no_grad():
        for i in range(0, n, batch):
            x = t[i:i + batch].to(device)
            logits = model(input_ids=x, use_cache=False).logits[:, :-1, :].float()
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                  reduction="none").view(x.shape[0], ctx - 1)
            sums.extend(nll.double().sum(dim=1).tolist())
    return sums, ctx - 1, n


def ppl_record(sums, per_window, n, ctx):
    total = sum(sums)
    mean = total / (n * per_window)
    return {"ctx": ctx, "windows": n, "predicted_tokens": n * per_window,
            "window_nll_sum": [round(s, 6) for s in sums], "mean_nll": round(mean, 8),
            "ppl": round(math.exp(mean), 6)}


# ----------------------------------------------------------------------------
# Independent float64 reference (from the safetensors files, not through transformers)
# ----------------------------------------------------------------------------

def load_weights(d):
    from safetensors.torch import load_file
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.isfile(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    sd = {}
    for f in files:
        sd.update(load_file(os.path.join(d, f)))
    return sd


def reference_inv_freq(torch, cfg, head_dim):
    rp = cfg["rope_parameters"]
    theta = float(rp["rope_theta"])
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    if rp["rope_type"] == "llama3":
        factor, lo, hi = float(rp["factor"]), float(rp["low_freq_factor"]), float(rp["high_freq_factor"])
        old = float(rp["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / hi) & (wavelen <= old / lo)
        inv = torch.where(medium, smoothed, scaled)
    elif rp["rope_type"] != "default":
        die("reference: rope_type %s not implemented" % rp["rope_type"])
    return inv


def reference_logits(torch, sd, cfg, ids):
    """Llama forward pass in float64: RMSNorm, RoPE (rotate-half), GQA causal attention,
    SwiGLU MLP, final norm, lm_head (tied: the embedding matrix)."""
    w = {k: v.double() for k, v in sd.items()}
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
    eps = cfg["rms_norm_eps"]
    T = len(ids)

    def norm(x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g

    def rot(x):
        return torch.cat((-x[..., hd // 2:], x[..., :hd // 2]), dim=-1)

    inv = reference_inv_freq(torch, cfg, hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat((ang, ang), -1).cos()[:, None, :], torch.cat((ang, ang), -1).sin()[:, None, :]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        h = norm(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, nh, hd)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, nkv, hd)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, nkv, hd)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        heads = []
        for i in range(nh):
            j = i // (nh // nkv)
            a = torch.softmax(q[:, i] @ k[:, j].T / math.sqrt(hd) + mask, dim=-1)
            heads.append(a @ v[:, j])
        x = x + torch.cat(heads, -1) @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        g, u = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
    x = norm(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T



# ----------------------------------------------------------------------------
# Tiny models
# ----------------------------------------------------------------------------

def make_tiny(torch, transformers, name, spec, out_root):
    from transformers import LlamaConfig, LlamaForCausalLM
    d = os.path.join(out_root, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):                     # remove what an earlier run wrote
        if f.endswith(".safetensors") or f in ("config.json", "generation_config.json",
                                               "model.safetensors.index.json", "reference.json"):
            os.remove(os.path.join(d, f))

    cfg = dict(spec["config"])
    cfg["rope_parameters"] = dict(cfg["rope_parameters"])
    config = LlamaConfig(**cfg)
    model = LlamaForCausalLM(config)
    model.float()
    model.eval()
    randomize(torch, model, spec["seed"])
    tied = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    if tied != cfg["tie_word_embeddings"]:
        die("%s: lm_head tied = %s, expected %s" % (name, tied, cfg["tie_word_embeddings"]))
    if spec["dtype"] == "bfloat16":
        with torch.no_grad():
            for p in model.parameters():
                p.data = p.data.to(torch.bfloat16)
    total_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if spec["shards"] == 1:
        model.save_pretrained(d)
    else:
        model.save_pretrained(d, max_shard_size=int(total_bytes * 0.6))

    files = sorted(os.listdir(d))
    weights = [f for f in files if f.endswith(".safetensors")]
    if spec["shards"] == 1 and weights != ["model.safetensors"]:
        die("%s: expected one model.safetensors, got %s" % (name, weights))
    if spec["shards"] == 2:
        if len(weights) != 2 or "model.safetensors.index.json" not in files:
            die("%s: expected 2 shards and an index, got %s" % (name, files))
        with open(os.path.join(d, "model.safetensors.index.json")) as f:
            wm = json.load(f)["weight_map"]
        if set(wm.values()) != set(weights) or "lm_head.weight" in wm:
            die("%s: index %s does not match %s (or lists the tied lm_head)" % (name, sorted(set(wm.values())), weights))
    cpath = os.path.join(d, "config.json")
    with open(cpath) as f:
        written = json.load(f)
    log("%s: transformers %s wrote config.json: %s" % (name, transformers.__version__,
                                                       json.dumps(written, sort_keys=True)))

    if spec["legacy_config"]:
        # transformers 4.x style: rope_theta at top level, rope_scaling null, head_dim
        # left to be derived, torch_dtype.
        legacy = {k: v for k, v in written.items() if k not in ("rope_parameters", "head_dim", "dtype")}
        legacy["rope_theta"] = float(cfg["rope_parameters"]["rope_theta"])
        legacy["rope_scaling"] = None
        legacy["torch_dtype"] = spec["dtype"]
        with open(cpath, "w") as f:
            json.dump(legacy, f, indent=2, sort_keys=True)
            f.write("\n")
        written = legacy
    else:
        rp = written.get("rope_parameters")
        want = cfg["rope_parameters"]
        if not isinstance(rp, dict) or any(rp.get(k) != v and float(rp.get(k, -1)) != float(v)
                                           for k, v in want.items() if k != "rope_type") \
                or rp.get("rope_type") != want["rope_type"]:
            die("%s: config.json rope_parameters %r, expected %r" % (name, rp, want))
        if written.get("eos_token_id") != [2, 3] or written.get("head_dim") != 32 \
                or written.get("tie_word_embeddings") is not True:
            die("%s: config.json eos/head_dim/tie = %r/%r/%r" % (
                name, written.get("eos_token_id"), written.get("head_dim"), written.get("tie_word_embeddings")))
    if written.get("dtype", written.get("torch_dtype")) != spec["dtype"]:
        die("%s: config.json dtype %r, expected %s" % (name, written.get("dtype", written.get("torch_dtype")), spec["dtype"]))

    # Reload from disk in fp32 (bf16 weights upcast) and check it against the in-memory model.
    loaded = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    loaded.eval()
    lc = loaded.config
    head_dim = getattr(lc, "head_dim", None) or lc.hidden_size // lc.num_attention_heads
    want_head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    if head_dim != want_head_dim:
        die("%s: reloaded head_dim %s, expected %s" % (name, head_dim, want_head_dim))
    theta = (getattr(lc, "rope_parameters", None) or {}).get("rope_theta")
    if theta is None or float(theta) != float(cfg["rope_parameters"]["rope_theta"]):
        die("%s: reloaded rope_theta %r" % (name, theta))
    ref_sd, got_sd = model.state_dict(), loaded.state_dict()
    if set(ref_sd) != set(got_sd):
        die("%s: reloaded tensors differ in names" % name)
    for k, v in ref_sd.items():
        if got_sd[k].dtype != torch.float32 or not torch.equal(v.float(), got_sd[k]):
            die("%s: reloaded tensor %s differs" % (name, k))
    if (loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()) != cfg["tie_word_embeddings"]:
        die("%s: reloaded model's tying differs" % name)
    inv_freq = rotary_inv_freq(loaded)
    if cfg["rope_parameters"]["rope_type"] == "llama3":
        base = 1.0 / (float(cfg["rope_parameters"]["rope_theta"]) **
                      (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        if torch.allclose(inv_freq, base):
            die("%s: llama3 scaling did not change the RoPE frequencies" % name)

    device = torch.device("cpu")

    sequences = []
    for i, n in enumerate(SEQ_LENGTHS):
        ids = random_ids(SEQ_SEED + 100 * i + (0 if name == "tiny-gqa" else 1), n, cfg["vocab_size"])
        logits = forward_logits(torch, loaded, ids, device)
        if not torch.isfinite(logits).all():
            die("%s: non-finite logits" % name)
        sequences.append({"ids": ids, "logits": [[r7(v) for v in row] for row in logits.tolist()]})
    # Independent float64 forward pass from the files (informational: reported, stored).
    try:
        sd = load_weights(d)
        ref64 = reference_logits(torch, sd, cfg, sequences[2]["ids"])
        got = forward_logits(torch, loaded, sequences[2]["ids"], device).double()
        independent = (ref64 - got).abs().max().item()
        scale = max(1.0, ref64.abs().max().item())
        inv_diff = (reference_inv_freq(torch, cfg, head_dim) - inv_freq.double()).abs().max().item()
        verdict = "agrees" if independent <= 1e-4 * scale and inv_diff <= 1e-6 else "DISAGREES"
    except Exception as e:          # noqa: BLE001 - informational only
        independent, scale, inv_diff = float("nan"), float("nan"), float("nan")
        verdict = "not run (%s: %s)" % (type(e).__name__, e)
    log("%s: independent float64 forward %s with transformers: max |logit diff| %.2e (max |logit| %.1f), "
        "max |inv_freq diff| %.2e" % (name, verdict, independent, scale, inv_diff))
    # Prefix consistency: the logits of a prefix equal those of the longer sequence.
    full = forward_logits(torch, loaded, sequences[2]["ids"], device)
    pre = forward_logits(torch, loaded, sequences[2]["ids"][:7], device)
    if (full[:7] - pre).abs().max().item() > 1e-4:
        die("%s: causal prefix check failed" % name)

    seq = random_ids(PPL_SEED + (0 if name == "tiny-gqa" else 1), PPL_LEN, cfg["vocab_size"])
    ids = [cfg["bos_token_id"]] + seq
    sums, per, n = protocol_nll(torch, loaded, ids, PPL_CTX, 0, device)
    if n != 2:
        die("%s: expected 2 windows, got %d" % (name, n))
    ppl = ppl_record(sums, per, n, PPL_CTX)
    ppl.update({"sequence": seq, "bos_prepended": cfg["bos_token_id"], "ids_count": len(ids),
                "ignored_tail_tokens": len(ids) - n * PPL_CTX})

    ref = {
        "model": name,
        "generator": "tools/make_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "weights": {"seed": spec["seed"], "dtype_on_disk": spec["dtype"],
                    "init": "matrices and embeddings normal(0, %g); RMSNorm weights 1 + normal(0, %g)" % (INIT_STD, NORM_STD),
                    "files": {f: sha256_file(os.path.join(d, f)) for f in sorted(os.listdir(d))
                              if f.endswith(".safetensors")}},
        "config_json": written,
        "rope_inv_freq": [r7(v) for v in inv_freq.tolist()],
        "logits_note": "fp32 logits of transformers' LlamaForCausalLM (eager attention, weights upcast "
                       "to fp32 from the files), %d significant digits; logits[t][v] is position t, "
                       "token v" % SIG_DIGITS,
        "sequences": sequences,
        "perplexity": ppl,
        "independent_check": {"what": "float64 Llama forward from the safetensors files vs these logits "
                                      "(40-token sequence)", "max_abs_logit_diff": None if math.isnan(independent) else r7(independent),
                              "max_abs_inv_freq_diff": None if math.isnan(inv_diff) else r7(inv_diff),
                              "verdict": verdict},
    }
    dump_json(ref, os.path.join(d, "reference.json"))
    log("%s: %s; ppl(ctx %d, 2 windows) = %.4f" % (name, ", ".join(
        "%s %d B" % (f, os.path.getsize(os.path.join(d, f))) for f in sorted(os.listdir(d))),
        PPL_CTX, ppl["ppl"]))
    return ref


# ----------------------------------------------------------------------------
# Demo model
# ----------------------------------------------------------------------------

def ids_digest(ids):
    return hashlib.sha256(struct.pack("<%di" % len(ids), *ids)).hexdigest()


def make_demo(torch, transformers, demo_dir, out_path, device):
    import sentencepiece as spm
    from transformers import LlamaForCausalLM
    tok_path = os.path.join(demo_dir, "tokenizer.model")
    held_path = os.path.join(demo_dir, "heldout.txt")
    for p in (os.path.join(demo_dir, "config.json"), tok_path, held_path):
        if not os.path.isfile(p):
            die("missing %s (train the demo model first, or pass --skip-demo)" % p)
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    with open(os.path.join(demo_dir, "config.json")) as f:
        cj = json.load(f)
    bos = cj["bos_token_id"]
    if sp.bos_id() != bos or sp.get_piece_size() != cj["vocab_size"]:
        die("tokenizer (bos %d, size %d) does not match config.json (bos %d, vocab %d)" % (
            sp.bos_id(), sp.get_piece_size(), bos, cj["vocab_size"]))

    model = LlamaForCausalLM.from_pretrained(demo_dir, dtype=torch.float32, attn_implementation="eager")
    model.to(device).eval()
    if any(p.dtype != torch.float32 for p in model.parameters()):
        die("demo model did not load as fp32")

    prompts = []
    for text in DEMO_PROMPTS:
        ids = [bos] + sp.encode(text)
        logits = forward_logits(torch, model, ids, device)
        logp = torch.log_softmax(logits.double(), dim=-1)
        next_lp = [r7(logp[t, ids[t + 1]].item()) for t in range(len(ids) - 1)]
        last = logits[-1]
        top = torch.topk(last, 5)
        prompts.append({"text": text, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids],
                        "next_token_logprobs": next_lp,
                        "last_argmax": int(last.argmax()),
                        "last_top5": [[int(i), sp.id_to_piece(int(i)), r7(v)] for v, i in zip(top.values.tolist(), top.indices.tolist())],
                        "last_logits": [r7(v) for v in last.tolist()]})

    with open(held_path, encoding="utf-8", newline="") as f:
        text = f.read()
    held = [bos] + sp.encode(text)
    runs = []
    for ctx, maxw in DEMO_PPL_RUNS:
        t0 = time.time()
        sums, per, n = protocol_nll(torch, model, held, ctx, maxw, device)
        rec = ppl_record(sums, per, n, ctx)
        rec["max_windows"] = maxw
        runs.append(rec)
        log("demo: held-out ctx %d, %d windows: ppl %.4f (%.1f s)" % (ctx, n, rec["ppl"], time.time() - t0))

    files = sorted(f for f in os.listdir(demo_dir)
                   if f.endswith(".safetensors") or f in ("config.json", "tokenizer.model", "heldout.txt",
                                                          "model.safetensors.index.json"))
    ref = {
        "model": "models/demo",
        "generator": "tools/make_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "sentencepiece": spm.__version__, "device": str(device)},
        "files_sha256": {f: sha256_file(os.path.join(demo_dir, f)) for f in files},
        "precision": "weights upcast from bf16 to fp32, fp32 compute, TF32 off, eager attention",
        "tokenization": "ids = [BOS] + sentencepiece encode(text) (HF add_bos_token=true, no EOS)",
        "prompts": prompts,
        "heldout": {
            "file": "models/demo/heldout.txt",
            "protocol": "ids = [BOS] + encode(whole file); consecutive non-overlapping windows of ctx "
                        "tokens from the start (at most max_windows, 0 = all); each window evaluated "
                        "on its own; ppl = exp(mean NLL over the ctx-1 predicted tokens of every window)",
            "characters": len(text),
            "ids_count": len(held),
            "ids_sha256_int32le": ids_digest(held),
            "ids_head": held[:32],
            "ids_tail": held[-8:],
            "runs": runs,
        },
    }
    dump_json(ref, out_path)
    return ref


# ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="Write kvcomp's reference test fixtures.")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures"))
    ap.add_argument("--demo", default=os.path.join(REPO, "models", "demo"))
    ap.add_argument("--skip-demo", action="store_true", help="only the tiny models")
    ap.add_argument("--device", default="auto", help="device for the demo model (auto, cuda, cpu)")
    args = ap.parse_args()

    try:
        import safetensors  # noqa: F401
        import torch
        import transformers
    except ImportError as e:
        die("missing Python package: %s" % e)
    tv = tuple(int(x) for x in transformers.__version__.split(".")[:2] if x.isdigit())
    if tv < (5, 0):
        die("transformers %s found; written for transformers 5.x" % transformers.__version__)
    if not args.skip_demo:
        try:
            import sentencepiece  # noqa: F401
        except ImportError as e:
            die("missing Python package: %s" % e)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    set_fp32_exact(torch, device)
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    tiny = {name: make_tiny(torch, transformers, name, spec, args.out) for name, spec in TINY.items()}
    demo = None
    if not args.skip_demo:
        demo = make_demo(torch, transformers, args.demo, os.path.join(args.out, "demo_reference.json"), device)

    total = 0
    for root, _, files in os.walk(args.out):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print()
    print("make_fixtures summary (torch %s, transformers %s, %.1f s):" % (
        torch.__version__, transformers.__version__, time.time() - t0))
    for name, ref in tiny.items():
        c = ref["config_json"]
        rope = c.get("rope_parameters") or {"rope_theta": c.get("rope_theta")}
        print("  %-10s rope %s, eos %s, tied %s, dtype %s; logits for %s tokens; ppl(ctx %d) %.4f; "
              "independent float64 check: %s" % (
                  name, json.dumps(rope, sort_keys=True), c.get("eos_token_id"), c.get("tie_word_embeddings"),
                  c.get("dtype", c.get("torch_dtype")), [len(s["ids"]) for s in ref["sequences"]],
                  PPL_CTX, ref["perplexity"]["ppl"], ref["independent_check"]["verdict"]))
    if demo:
        for p in demo["prompts"]:
            print("  demo prompt %-55r %2d ids, argmax next %r" % (p["text"], len(p["ids"]),
                                                                  p["last_top5"][0][1]))
        for r in demo["heldout"]["runs"]:
            print("  demo held-out ctx %4d, %3d windows: ppl %.4f" % (r["ctx"], r["windows"], r["ppl"]))
    print("  fixtures size: %d bytes under %s%s" % (total, args.out,
                                                    "  (over 1.5 MB!)" if total > 1_500_000 else ""))


if __name__ == "__main__":
    main()
