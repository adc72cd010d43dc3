#!/usr/bin/env python3
"""Trains kvcomp's embedded demo model: a 4-layer Llama (about 11.5M parameters) on the
corpus made by tools/fetch_corpus.sh, with the tokenizer made by tools/train_tokenizer.sh.

  python3 tools/train_demo.py              # full run (default budget: 240 s of training)
  python3 tools/train_demo.py --dry-run    # smoke test: 3 steps, tiny eval, output in data/

Needs one CUDA GPU, torch (2.11), transformers (5.x), safetensors, sentencepiece, numpy.
No network access is used.

Training: transformers' LlamaForCausalLM, fp32 master weights, bf16 autocast, AdamW
(decoupled weight decay on matrices only), linear warmup then cosine decay to a floor,
gradient clipping, dropout (on the embedding output and on each attention / MLP output
before the residual add, through forward hooks removed before saving). Batches are random
windows of --ctx tokens sampled (seeded) from the token stream of the training documents,
each document written as [BOS] tokens [EOS]. The loss is the model's own causal-LM loss
(labels = input_ids; the model shifts them).

Held-out evaluation follows kvcomp's perplexity protocol (also implemented by the C++
`kvcomp perplexity` tool): ids = [BOS] + encode(whole held-out file); consecutive
non-overlapping windows of ctx tokens from the start; each window evaluated on its own
(positions from 0); ppl = exp(mean NLL over the ctx-1 predicted tokens of every window).
During training a fixed, evenly spaced subset of windows is evaluated under bf16 autocast;
the checkpoint with the best held-out loss is kept. The reported number evaluates every
window in fp32 (TF32 off) with the saved bf16 weights upcast to fp32.

Stops at the end of the planned schedule (--epochs), on the wall-clock budget (--budget,
seconds of training loop), or when the held-out loss has not improved for --patience
evaluations. When the budget cannot hold the planned schedule (measured after a few
steps), the schedule is shortened to fit, so that the learning rate still decays.

Output (--out, default models/demo): config.json, generation_config.json,
model-0000K-of-0000N.safetensors (bf16, 2+ shards), model.safetensors.index.json,
tokenizer.model, tokenizer_config.json, training_log.json. Also data/train_demo_steps.jsonl
(per-step log). The saved directory is reloaded with from_pretrained and its logits are
checked against the in-memory model before the summary is printed.
"""

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time

# No network on the training machine: make every hub lookup fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Architecture of the demo model (fixed: the C++ side embeds it).
MODEL_CONFIG = dict(
    vocab_size=4096,
    hidden_size=512,
    intermediate_size=1024,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=128,
    max_position_embeddings=2048,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    rms_norm_eps=1e-5,
    hidden_act="silu",
    attention_bias=False,
    mlp_bias=False,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=None,
    initializer_range=0.02,
    use_cache=True,
)
EXPECTED_PARAMS = 11_538_944          # with tied embeddings
MAX_SHARD_BYTES = 15_000_000
MAX_TOTAL_BYTES = 24_000_000

GEN_PROMPTS = ["It was a dark and stormy night, and", "The Congress of the United States"]


def die(msg):
    print("train_demo: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def log(msg):
    print("train_demo: " + msg, flush=True)


def parse_args():
    ap = argparse.ArgumentParser(description="Train kvcomp's demo Llama model.")
    ap.add_argument("--train", default=os.path.join(REPO, "data", "train.txt"))
    ap.add_argument("--heldout", default=None,
                    help="held-out text (default data/heldout.txt, else its committed copy "
                         "models/demo/heldout.txt)")
    ap.add_argument("--tokenizer", default=os.path.join(REPO, "models", "demo", "tokenizer.model"))
    ap.add_argument("--out", default=None, help="output directory (default models/demo; "
                    "data/dry_run_demo with --dry-run)")
    ap.add_argument("--steps-log", default=os.path.join(REPO, "data", "train_demo_steps.jsonl"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ctx", type=int, default=1024, help="training and evaluation context")
    ap.add_argument("--batch", type=int, default=32, help="sequences per step")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    ap.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr / peak lr")
    ap.add_argument("--warmup", type=int, default=100, help="warmup steps")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    ap.add_argument("--dropout", type=float, default=0.1,
                    help="dropout on embedding / attention / MLP outputs (training only)")
    ap.add_argument("--attention-dropout", type=float, default=0.0,
                    help="config.attention_dropout (attention probabilities, training only)")
    ap.add_argument("--epochs", type=float, default=10.0,
                    help="planned schedule length in passes over the training tokens")
    ap.add_argument("--max-steps", type=int, default=0, help="planned steps (overrides --epochs)")
    ap.add_argument("--budget", type=float, default=240.0, help="seconds of training loop")
    ap.add_argument("--eval-every", type=int, default=50, help="steps between held-out evals")
    ap.add_argument("--eval-windows", type=int, default=64,
                    help="held-out windows evaluated during training (fixed subset)")
    ap.add_argument("--eval-batch", type=int, default=16)
    ap.add_argument("--patience", type=int, default=8,
                    help="stop after this many evals without improvement")
    ap.add_argument("--min-delta", type=float, default=1e-3, help="improvement threshold (nats)")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--dry-run", action="store_true",
                    help="3 steps, 2 eval windows, 4 final windows, output in data/dry_run_demo")
    args = ap.parse_args()
    if args.heldout is None:
        args.heldout = os.path.join(REPO, "data", "heldout.txt")
        if not os.path.isfile(args.heldout):
            args.heldout = os.path.join(REPO, "models", "demo", "heldout.txt")
    if args.out is None:
        args.out = os.path.join(REPO, "data", "dry_run_demo") if args.dry_run \
            else os.path.join(REPO, "models", "demo")
    if args.dry_run:
        args.max_steps = 3
        args.warmup = 2
        args.eval_every = 2
        args.eval_windows = 2
        args.log_every = 1
        args.steps_log = os.path.join(REPO, "data", "dry_run_steps.jsonl")
    return args


# ----------------------------------------------------------------------------
# Environment checks (before anything slow)
# ----------------------------------------------------------------------------

def check_environment(args):
    for path, what in ((args.train, "training text (run tools/fetch_corpus.sh)"),
                       (args.heldout, "held-out text (run tools/fetch_corpus.sh)"),
                       (args.tokenizer, "tokenizer (run tools/train_tokenizer.sh)")):
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            die("missing %s: %s" % (what, path))
    try:
        import numpy  # noqa: F401
        import safetensors  # noqa: F401
        import sentencepiece  # noqa: F401
        import torch
        import transformers
    except ImportError as e:
        die("missing Python package: %s" % e)
    tv = tuple(int(x) for x in transformers.__version__.split(".")[:2] if x.isdigit())
    if tv < (5, 0):
        die("transformers %s found; this script is written for transformers 5.x "
            "(config.json with rope_parameters)" % transformers.__version__)
    if not torch.cuda.is_available():
        die("no CUDA device visible to torch %s" % torch.__version__)
    log("torch %s (CUDA %s), transformers %s, sentencepiece %s, device %s" % (
        torch.__version__, torch.version.cuda, transformers.__version__,
        sentencepiece.__version__, torch.cuda.get_device_name(0)))
    try:
        os.makedirs(args.out, exist_ok=True)
        probe = os.path.join(args.out, ".write_probe")
        with open(probe, "w") as f:
            f.write("x")
        os.remove(probe)
        os.makedirs(os.path.dirname(args.steps_log), exist_ok=True)
    except OSError as e:
        die("output directory not writable: %s" % e)


def set_fp32_exact():
    """fp32 matmuls and convolutions in full fp32 (no TF32), through the long-standing
    flags only, then checked numerically on the GPU."""
    import torch
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    except (AttributeError, RuntimeError) as e:     # only the newer per-backend settings left
        log("TF32 flags refused (%s); using fp32_precision = 'ieee'" % e)
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(256, 256, generator=g, dtype=torch.float64)
    b = torch.randn(256, 256, generator=g, dtype=torch.float64)
    ref = a @ b
    got = (a.float().cuda() @ b.float().cuda()).double().cpu()
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    if err > 1e-5:          # TF32 gives ~1e-3
        die("fp32 matmul is not exact fp32 (relative error %.2e): TF32 still on?" % err)


def seed_everything(seed):
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------

def load_tokenizer(path):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=path)
    got = (sp.get_piece_size(), sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id())
    want = (MODEL_CONFIG["vocab_size"], 0, MODEL_CONFIG["bos_token_id"], MODEL_CONFIG["eos_token_id"], -1)
    if got != want:
        die("tokenizer %s: (size, unk, bos, eos, pad) = %s, expected %s" % (path, got, want))
    return sp


def read_text(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def training_stream(sp, path):
    """[BOS] doc [EOS] for every document of the training file (documents are
    separated by two blank lines), as one int64 numpy array."""
    import numpy as np
    text = read_text(path)
    docs = [d.strip("\n") for d in text.split("\n\n\n")]
    docs = [d for d in docs if d]
    if len(docs) < 100:
        die("%s: only %d documents (expected about a thousand)" % (path, len(docs)))
    encoded = sp.encode(docs)
    bos, eos = sp.bos_id(), sp.eos_id()
    parts = []
    for ids in encoded:
        parts.append(np.asarray([bos] + ids + [eos], dtype=np.int64))
    stream = np.concatenate(parts)
    return stream, len(docs), len(text)


def heldout_ids(sp, path):
    """kvcomp's protocol: [BOS] + encode(whole file)."""
    text = read_text(path)
    return [sp.bos_id()] + sp.encode(text), len(text)


def window_subset(n_windows, k):
    """k evenly spaced window indices out of n_windows (all if k >= n_windows)."""
    if k >= n_windows:
        return list(range(n_windows))
    if k == 1:
        return [0]
    return sorted(set(round(i * (n_windows - 1) / (k - 1)) for i in range(k)))


# ----------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------

def eval_windows(model, ids_t, ctx, indices, batch, autocast_bf16):
    """Mean NLL (nats) over the ctx-1 predicted tokens of each listed window; windows are
    consecutive non-overlapping slices ids[i*ctx:(i+1)*ctx], each evaluated on its own."""
    import torch
    import torch.nn.functional as F
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(indices), batch):
            rows = [ids_t[j * ctx:(j + 1) * ctx] for j in indices[i:i + batch]]
            x = torch.stack(rows).to(device)
            if autocast_bf16:
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                    logits = model(input_ids=x, use_cache=False).logits
            else:
                logits = model(input_ids=x, use_cache=False).logits
            logits = logits[:, :-1, :].float()
            targets = x[:, 1:]
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                  reduction="none")
            total += nll.double().sum().item()
            count += nll.numel()
    if was_training:
        model.train()
    if count != len(indices) * (ctx - 1):
        die("internal: evaluated %d tokens, expected %d" % (count, len(indices) * (ctx - 1)))
    return total / count


# ----------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------

def build_model(args):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = dict(MODEL_CONFIG)
    cfg["rope_parameters"] = dict(cfg["rope_parameters"])
    cfg["attention_dropout"] = float(args.attention_dropout)
    config = LlamaConfig(**cfg)
    model = LlamaForCausalLM(config)
    model.float()                      # fp32 master weights whatever the defaults
    n_params = sum(p.numel() for p in model.parameters())
    if n_params != EXPECTED_PARAMS:
        die("model has %d parameters, expected %d (tied embeddings?)" % (n_params, EXPECTED_PARAMS))
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        die("lm_head is not tied to embed_tokens")
    for name, p in model.named_parameters():
        if p.dtype != torch.float32:
            die("parameter %s is %s, expected float32" % (name, p.dtype))
    return model


def add_dropout_hooks(model, p):
    """Dropout on the token embeddings and on each attention / MLP block output (before it
    is added to the residual stream), active in training mode only."""
    import torch.nn.functional as F
    if p <= 0:
        return []

    def hook(module, inputs, output):
        return F.dropout(output, p=p, training=module.training)

    mods = [model.model.embed_tokens]
    for layer in model.model.layers:
        mods.append(layer.self_attn.o_proj)
        mods.append(layer.mlp.down_proj)
    return [m.register_forward_hook(hook) for m in mods]


def make_optimizer(model, args):
    import torch
    decay, no_decay = [], []
    for name, p in model.named_parameters():      # shared (tied) parameters appear once
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, args.beta2), eps=1e-8, fused=True)


def lr_at(step, total, args):
    """Linear warmup over args.warmup steps, then cosine from lr to lr*min_lr_ratio at
    step `total`. Steps count from 1."""
    if step <= args.warmup:
        return args.lr * step / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, total - args.warmup))
    floor = args.lr * args.min_lr_ratio
    return floor + (args.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------
# Saving and checks
# ----------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(model, out, tokenizer_src):
    # Remove weights of an earlier save so no stale file can be picked up.
    for name in os.listdir(out):
        if (name == "model.safetensors" or name == "model.safetensors.index.json"
                or (name.startswith("model-") and name.endswith(".safetensors"))
                or name == "pytorch_model.bin"):
            os.remove(os.path.join(out, name))
    total_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    shard = int(total_bytes * 0.6)     # greedy sharding: two shards, each <= 0.6 of the total
    model.save_pretrained(out, max_shard_size=shard)

    # Files and sizes.
    shards = sorted(n for n in os.listdir(out) if n.startswith("model-") and n.endswith(".safetensors"))
    for need in ("config.json", "model.safetensors.index.json", "generation_config.json"):
        if not os.path.isfile(os.path.join(out, need)):
            die("save_pretrained did not write %s" % need)
    if len(shards) < 2:
        die("expected 2+ weight shards, got %s" % shards)
    sizes = {n: os.path.getsize(os.path.join(out, n)) for n in shards}
    if max(sizes.values()) > MAX_SHARD_BYTES or sum(sizes.values()) > MAX_TOTAL_BYTES:
        die("weight files too large: %s" % sizes)
    with open(os.path.join(out, "model.safetensors.index.json")) as f:
        index = json.load(f)
    if set(index["weight_map"].values()) != set(shards):
        die("index names %s, files are %s" % (sorted(set(index["weight_map"].values())), shards))
    if "lm_head.weight" in index["weight_map"]:
        die("lm_head.weight was saved although it is tied")

    # config.json: every field the runtime reads must be present and right.
    cpath = os.path.join(out, "config.json")
    with open(cpath) as f:
        cj = json.load(f)
    expect = {k: v for k, v in MODEL_CONFIG.items()
              if k not in ("rope_parameters", "pad_token_id", "initializer_range", "use_cache")}
    added = []
    for k, v in expect.items():
        if k not in cj:
            cj[k] = v
            added.append(k)
        elif cj[k] != v:
            die("config.json: %s = %r, expected %r" % (k, cj[k], v))
    rp = cj.get("rope_parameters") or {}
    theta = rp.get("rope_theta", cj.get("rope_theta"))
    if theta is None or float(theta) != 10000.0 or rp.get("rope_type", "default") != "default" \
            or cj.get("rope_scaling"):
        die("config.json: RoPE settings %r / rope_theta %r" % (rp, cj.get("rope_theta")))
    if cj.get("dtype", cj.get("torch_dtype")) != "bfloat16":
        die("config.json: dtype = %r, expected bfloat16" % cj.get("dtype", cj.get("torch_dtype")))
    if cj.get("model_type") != "llama" or cj.get("architectures") != ["LlamaForCausalLM"]:
        die("config.json: model_type/architectures = %r/%r" % (cj.get("model_type"), cj.get("architectures")))
    if added:
        log("config.json lacked %s (equal to defaults); written explicitly" % added)
        with open(cpath, "w") as f:
            json.dump(cj, f, indent=2, sort_keys=True)
            f.write("\n")

    # Tokenizer files.
    dst = os.path.join(out, "tokenizer.model")
    if os.path.abspath(tokenizer_src) != os.path.abspath(dst):
        shutil.copyfile(tokenizer_src, dst)
    tok_cfg = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "clean_up_tokenization_spaces": False,
        "legacy": False,
        "model_max_length": MODEL_CONFIG["max_position_embeddings"],
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "LlamaTokenizer",
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)
        f.write("\n")
    return {n: {"bytes": s, "sha256": sha256_file(os.path.join(out, n))} for n, s in sizes.items()}


def to_bf16_params(model):
    """Casts the parameters (not the buffers: RoPE's inverse frequencies stay fp32, as
    from_pretrained builds them) to bf16 in place; tied parameters stay tied."""
    import torch
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data.to(torch.bfloat16)


def check_reload(model_bf16, out, sample):
    """Reloads the saved directory and checks weights, buffers and logits against the
    in-memory model: all must be identical."""
    import torch
    from transformers import LlamaForCausalLM
    device = next(model_bf16.parameters()).device
    impl = model_bf16.config._attn_implementation
    loaded = LlamaForCausalLM.from_pretrained(out, dtype=torch.bfloat16, attn_implementation=impl)
    loaded.to(device).eval()
    ref_sd, got_sd = model_bf16.state_dict(), loaded.state_dict()
    if set(ref_sd) != set(got_sd):
        die("reloaded model has tensors %s, in-memory %s" % (
            sorted(set(got_sd) ^ set(ref_sd)), ""))
    for k, v in ref_sd.items():
        w = got_sd[k]
        if w.dtype != torch.bfloat16 or not torch.equal(v, w.to(v.device)):
            die("reloaded tensor %s differs (dtype %s)" % (k, w.dtype))
    if loaded.lm_head.weight.data_ptr() != loaded.model.embed_tokens.weight.data_ptr():
        die("reloaded lm_head is not tied")
    ref_buf, got_buf = dict(model_bf16.named_buffers()), dict(loaded.named_buffers())
    buf_diffs = []
    for k in sorted(set(ref_buf) | set(got_buf)):
        a, b = ref_buf.get(k), got_buf.get(k)
        if a is None or b is None or a.dtype != b.dtype or a.shape != b.shape \
                or not torch.equal(a, b.to(a.device)):
            buf_diffs.append("%s: %s vs %s" % (k, None if a is None else a.dtype, None if b is None else b.dtype))
    with torch.no_grad():
        a = model_bf16(input_ids=sample, use_cache=False).logits
        b = loaded(input_ids=sample, use_cache=False).logits
    diff = (a.float() - b.float()).abs().max().item()
    del loaded
    if diff != 0.0:
        die("reloaded model's logits differ from the in-memory model's by %g (weights are identical; "
            "buffers differing: %s)" % (diff, buf_diffs or "none"))
    return buf_diffs


def greedy(model, sp, prompt, n_new):
    import torch
    device = next(model.parameters()).device
    ids = [sp.bos_id()] + sp.encode(prompt)
    out = []
    with torch.no_grad():
        for _ in range(n_new):
            x = torch.tensor([ids + out], device=device)
            nxt = int(model(input_ids=x, use_cache=False).logits[0, -1].float().argmax())
            if nxt == sp.eos_id():
                break
            out.append(nxt)
    return sp.decode(out)


def check_hf_tokenizer(out, sp, texts):
    """Informational: does transformers' own tokenizer, loaded from the saved directory,
    encode like sentencepiece + BOS? Never fails the run."""
    try:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(out)
        same = all(tok(t)["input_ids"] == [sp.bos_id()] + sp.encode(t) for t in texts)
        return "same ids" if same else "DIFFERENT ids (informational)"
    except Exception as e:            # noqa: BLE001 - informational only
        return "not loadable (%s: %s)" % (type(e).__name__, str(e).splitlines()[0][:120] if str(e) else "")


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------

def main():
    args = parse_args()
    t_start = time.time()
    check_environment(args)

    import numpy as np
    import torch
    import transformers

    set_fp32_exact()
    seed_everything(args.seed)
    device = torch.device("cuda")

    # Data.
    sp = load_tokenizer(args.tokenizer)
    t0 = time.time()
    stream_np, n_docs, train_chars = training_stream(sp, args.train)
    held, held_chars = heldout_ids(sp, args.heldout)
    n_tokens = int(stream_np.shape[0])
    n_windows = len(held) // args.ctx
    log("train: %d documents, %d chars, %d tokens (with BOS/EOS); held-out: %d chars, "
        "%d tokens (with BOS), %d windows of %d; tokenized in %.1f s" % (
            n_docs, train_chars, n_tokens, held_chars, len(held), n_windows, args.ctx, time.time() - t0))
    if n_tokens < 1_000_000 and not args.dry_run:
        die("training stream has only %d tokens" % n_tokens)
    if n_windows < 2:
        die("held-out text gives only %d windows of %d tokens" % (n_windows, args.ctx))
    stream = torch.from_numpy(stream_np).to(device)
    held_t = torch.tensor(held, dtype=torch.int64)
    eval_idx = window_subset(n_windows, args.eval_windows)
    final_idx = window_subset(n_windows, 4) if args.dry_run else list(range(n_windows))

    # Model and optimizer.
    model = build_model(args).to(device)
    model.train()
    hooks = add_dropout_hooks(model, args.dropout)
    opt = make_optimizer(model, args)
    tokens_per_step = args.batch * args.ctx
    planned = args.max_steps if args.max_steps > 0 else \
        max(1, int(round(args.epochs * n_tokens / tokens_per_step)))
    total_steps = planned
    log("model: %d parameters, attention %s; %d steps planned (%.2f epochs of %d tokens/step)" % (
        EXPECTED_PARAMS, model.config._attn_implementation, planned,
        planned * tokens_per_step / n_tokens, tokens_per_step))

    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    offsets = torch.arange(args.ctx, device=device)
    max_start = n_tokens - args.ctx

    def batch():
        starts = torch.randint(0, max_start + 1, (args.batch,), generator=gen)
        return stream[starts.to(device)[:, None] + offsets[None, :]]

    history, steps_log = [], open(args.steps_log, "w")
    best = {"loss": float("inf"), "step": 0, "state": None}
    evals_since_best = 0
    stop_reason = "schedule complete"
    loss_acc, loss_n = torch.zeros((), device=device), 0
    interval_loss_sum, interval_n = 0.0, 0
    t_loop = time.time()
    timing_mark = None
    step = 0

    def evaluate(step):
        nonlocal evals_since_best
        heldout = eval_windows(model, held_t, args.ctx, eval_idx, args.eval_batch, autocast_bf16=True)
        train_avg = interval_loss_sum / interval_n if interval_n else None
        improved = heldout < best["loss"] - args.min_delta
        if heldout < best["loss"]:
            best.update(loss=heldout, step=step,
                        state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        evals_since_best = 0 if improved else evals_since_best + 1
        rec = {"step": step, "epoch": round(step * tokens_per_step / n_tokens, 3),
               "train_loss": None if train_avg is None else round(train_avg, 5),
               "heldout_loss": round(heldout, 5),
               "heldout_ppl": round(math.exp(heldout), 3), "lr": lr_at(step, total_steps, args),
               "elapsed_s": round(time.time() - t_loop, 1)}
        history.append(rec)
        log("eval step %5d  epoch %6.2f  train %s  held-out %.4f (ppl %.2f)%s" % (
            step, rec["epoch"], "-" if train_avg is None else "%.4f" % train_avg, heldout, rec["heldout_ppl"],
            "  *best*" if best["step"] == step else ""))

    while step < total_steps:
        step += 1
        lr = lr_at(step, total_steps, args)
        for g in opt.param_groups:
            g["lr"] = lr
        x = batch()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            out = model(input_ids=x, labels=x, use_cache=False)
        loss = out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        loss_acc += loss.detach()
        loss_n += 1

        if step % args.log_every == 0 or step == total_steps:
            avg = (loss_acc / loss_n).item()
            if not math.isfinite(avg) or not math.isfinite(gnorm.item()):
                die("non-finite loss or gradient at step %d (loss %s, grad norm %s)" % (step, avg, gnorm.item()))
            interval_loss_sum += avg * loss_n
            interval_n += loss_n
            steps_log.write(json.dumps({"step": step, "loss": round(avg, 5), "lr": lr,
                                        "grad_norm": round(gnorm.item(), 4),
                                        "elapsed_s": round(time.time() - t_loop, 2)}) + "\n")
            loss_acc.zero_()
            loss_n = 0
            if step % (args.log_every * 10) == 0:
                log("step %5d  loss %.4f  lr %.2e  grad norm %.3f  %.1f s" % (
                    step, avg, lr, gnorm.item(), time.time() - t_loop))

        # Fit the schedule into the budget, measured once before warmup ends.
        if not args.dry_run and args.max_steps == 0:
            if step == 10:
                torch.cuda.synchronize()
                timing_mark = time.time()
            elif step == 40 and timing_mark is not None:
                torch.cuda.synchronize()
                per_step = (time.time() - timing_mark) / 30
                per_eval = per_step * 0.5 * len(eval_idx) / args.batch + 0.05   # forward only
                per_step_all = per_step + per_eval / args.eval_every
                left = args.budget - (time.time() - t_loop)
                fits = step + int(0.95 * left / per_step_all)
                log("%.1f ms/step (%.0f tokens/s); budget holds about %d steps" % (
                    per_step * 1000, tokens_per_step / per_step, fits))
                if fits < total_steps:
                    total_steps = max(step + 1, fits)
                    log("schedule shortened to %d steps (%.2f epochs) to fit the %.0f s budget" % (
                        total_steps, total_steps * tokens_per_step / n_tokens, args.budget))

        if step % args.eval_every == 0 or step == total_steps:
            evaluate(step)
            interval_loss_sum, interval_n = 0.0, 0
            if evals_since_best >= args.patience:
                stop_reason = "no held-out improvement in %d evaluations" % args.patience
                break
        if time.time() - t_loop > args.budget:
            stop_reason = "wall-clock budget (%.0f s)" % args.budget
            if not history or history[-1]["step"] != step:
                evaluate(step)
            break
    steps_log.close()
    torch.cuda.synchronize()
    train_seconds = time.time() - t_loop
    tokens_seen = step * tokens_per_step
    log("stopped at step %d (%s) after %.1f s; best held-out %.4f at step %d" % (
        step, stop_reason, train_seconds, best["loss"], best["step"]))
    if best["state"] is None:
        die("no evaluation was run")

    # Best checkpoint -> bf16 -> save.
    best_step, best_loss = best["step"], best["loss"]
    best_rec = next(r for r in history if r["step"] == best_step)
    for h in hooks:
        h.remove()
    model.load_state_dict(best["state"])
    best["state"] = None
    del opt
    model.eval()
    to_bf16_params(model)
    shard_info = save_model(model, args.out, args.tokenizer)
    log("saved %s: %s" % (args.out, ", ".join("%s %d bytes" % (n, s["bytes"]) for n, s in shard_info.items())))

    # Reported held-out perplexity: saved weights upcast to fp32, every window, no TF32.
    from transformers import LlamaForCausalLM
    set_fp32_exact()
    m32 = LlamaForCausalLM.from_pretrained(args.out, dtype=torch.float32, attn_implementation="eager")
    m32.to(device).eval()
    if any(p.dtype != torch.float32 for p in m32.parameters()):
        die("from_pretrained(dtype=float32) did not give fp32 parameters")
    t0 = time.time()
    final_nll = eval_windows(m32, held_t, args.ctx, final_idx, 8, autocast_bf16=False)
    final_subset_nll = eval_windows(m32, held_t, args.ctx, eval_idx, 8, autocast_bf16=False)
    log("held-out fp32: %d windows of %d: mean NLL %.5f, ppl %.3f (%.1f s); training subset of %d: ppl %.3f" % (
        len(final_idx), args.ctx, final_nll, math.exp(final_nll), time.time() - t0,
        len(eval_idx), math.exp(final_subset_nll)))
    samples = {p: greedy(m32, sp, p, 48) for p in GEN_PROMPTS}
    del m32
    hf_tok = check_hf_tokenizer(args.out, sp, GEN_PROMPTS)

    with open(os.path.join(args.out, "config.json")) as f:
        saved_config = json.load(f)
    train_log = {
        "recipe": "tools/train_demo.py" + (" --dry-run" if args.dry_run else ""),
        "arguments": {k: v for k, v in vars(args).items()},
        "versions": {"torch": torch.__version__, "cuda": torch.version.cuda,
                     "transformers": transformers.__version__,
                     "sentencepiece": __import__("sentencepiece").__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0],
                     "device": torch.cuda.get_device_name(0)},
        "config": saved_config,
        "parameters": EXPECTED_PARAMS,
        "data": {"train_documents": n_docs, "train_characters": train_chars,
                 "train_tokens": n_tokens, "heldout_characters": held_chars,
                 "heldout_tokens": len(held), "heldout_windows": n_windows,
                 "train_sha256": sha256_file(args.train), "heldout_sha256": sha256_file(args.heldout),
                 "tokenizer_sha256": sha256_file(args.tokenizer)},
        "training": {"steps": step, "planned_steps": planned, "schedule_steps": total_steps,
                     "tokens_per_step": tokens_per_step, "tokens_seen": tokens_seen,
                     "epochs_seen": round(tokens_seen / n_tokens, 3), "stop_reason": stop_reason,
                     "train_seconds": round(train_seconds, 1),
                     "best_step": best_step, "best_epoch": best_rec["epoch"],
                     "best_heldout_loss_subset_bf16": round(best_loss, 6),
                     "eval_subset_windows": len(eval_idx)},
        "heldout_fp32": {"ctx": args.ctx, "windows": len(final_idx), "mean_nll": round(final_nll, 6),
                         "ppl": round(math.exp(final_nll), 4),
                         "subset_windows": len(eval_idx), "subset_ppl": round(math.exp(final_subset_nll), 4)},
        "weights": shard_info,
        "reload_check": "pending",
        "hf_tokenizer_check": hf_tok,
        "greedy_samples": samples,
        "history": history,
        "wall_seconds": None,
    }

    def write_log():
        train_log["wall_seconds"] = round(time.time() - t_start, 1)
        with open(os.path.join(args.out, "training_log.json"), "w") as f:
            json.dump(train_log, f, indent=1)
            f.write("\n")

    write_log()

    # Reload check (bf16, same device, same attention implementation) against the
    # in-memory model.
    g2 = torch.Generator(device="cpu").manual_seed(args.seed + 1)
    sample = torch.cat([held_t[:2 * 256].view(2, 256),
                        torch.randint(3, MODEL_CONFIG["vocab_size"], (2, 256), generator=g2)], 1).to(device)
    buf_diffs = check_reload(model, args.out, sample)
    train_log["reload_check"] = "weights and logits identical" + (
        "" if not buf_diffs else " (buffers differing: %s)" % buf_diffs)
    log("reload check: " + train_log["reload_check"])
    write_log()

    print()
    for p, s in samples.items():
        print("greedy> %s|%s" % (p, s.replace("\n", "\\n")))
    print()
    print("train_demo summary%s:" % (" (DRY RUN)" if args.dry_run else ""))
    print("  output             %s" % args.out)
    print("  data               %d train tokens, %d held-out tokens (%d windows of %d)" % (
        n_tokens, len(held), n_windows, args.ctx))
    print("  steps              %d of %d scheduled (%.2f epochs, %d tokens), stop: %s" % (
        step, total_steps, tokens_seen / n_tokens, tokens_seen, stop_reason))
    print("  best               step %d (epoch %.2f), held-out subset loss %.4f (bf16)" % (
        best_step, best_rec["epoch"], best_loss))
    print("  held-out (fp32)    ppl %.3f (mean NLL %.5f) over %d windows of %d" % (
        math.exp(final_nll), final_nll, len(final_idx), args.ctx))
    print("  weights            %d bytes in %d shards" % (
        sum(s["bytes"] for s in shard_info.values()), len(shard_info)))
    print("  HF tokenizer       %s" % hf_tok)
    print("  time               %.1f s training, %.1f s total" % (train_seconds, time.time() - t_start))


if __name__ == "__main__":
    main()
