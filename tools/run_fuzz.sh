#!/usr/bin/env bash
# Fuzzes the model-file parsers (safetensors header, config.json) and tokenizer.json (the file
# and the texts it encodes) with libFuzzer + ASan/UBSan. Builds tests/fuzz_model_files and
# tests/fuzz_tokenizer with clang in build-fuzz/, writes seed corpora of valid files plus
# dictionaries of their keywords, and runs each for a bounded time.
#
#   tools/run_fuzz.sh [SECONDS]    (default 60)
#
# Exit status: 0 when the time ran out without a finding; non-zero when the fuzzer found a
# crash, sanitizer report, leak or timeout (the reproducer is kept under build-fuzz/fuzz/artifacts/)
# or the build failed. The corpus in build-fuzz/fuzz/corpus/ grows across runs.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
work="$build/fuzz"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKVCOMP_CUDA=OFF -DKVCOMP_FUZZ=ON -DKVCOMP_TESTS=ON >/dev/null
cmake --build "$build" -j "${KVCOMP_BUILD_JOBS:-2}" --target fuzz_model_files fuzz_tokenizer

mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
seeds="$work/seeds"

# --- Seeds: safetensors headers (the JSON after the 8-byte length) ---------------------------
cat >"$seeds/header_single.json" <<'EOF'
{"__metadata__":{"format":"pt"},"model.embed_tokens.weight":{"dtype":"BF16","shape":[16,8],"data_offsets":[0,256]},"model.norm.weight":{"dtype":"F32","shape":[8],"data_offsets":[256,288]}}
EOF
cat >"$seeds/header_mixed.json" <<'EOF'
{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[6,22]},"e":{"dtype":"F32","shape":[0,4],"data_offsets":[22,22]},"s":{"dtype":"BF16","shape":[],"data_offsets":[22,24]}}
EOF
cat >"$seeds/header_i8.json" <<'EOF'
{"q":{"dtype":"I8","shape":[4],"data_offsets":[0,4]},"__metadata__":null}
EOF
cat >"$seeds/index.json" <<'EOF'
{"metadata":{"total_size":288},"weight_map":{"model.embed_tokens.weight":"model-00001-of-00002.safetensors","model.norm.weight":"model-00002-of-00002.safetensors"}}
EOF

# --- Seeds: config.json variants --------------------------------------------------------------
cat >"$seeds/config_llama31.json" <<'EOF'
{"architectures":["LlamaForCausalLM"],"attention_bias":false,"bos_token_id":128000,
 "eos_token_id":[128001,128008,128009],"hidden_act":"silu","hidden_size":4096,
 "intermediate_size":14336,"max_position_embeddings":131072,"mlp_bias":false,"model_type":"llama",
 "num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,"rms_norm_eps":1e-05,
 "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
 "original_max_position_embeddings":8192,"rope_type":"llama3"},"rope_theta":500000.0,
 "tie_word_embeddings":false,"torch_dtype":"bfloat16","vocab_size":128256}
EOF
cat >"$seeds/config_mistral.json" <<'EOF'
{"architectures":["MistralForCausalLM"],"bos_token_id":1,"eos_token_id":2,"hidden_act":"silu",
 "hidden_size":4096,"intermediate_size":14336,"max_position_embeddings":32768,
 "model_type":"mistral","num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,
 "rms_norm_eps":1e-05,"rope_theta":10000.0,"sliding_window":4096,"tie_word_embeddings":false,
 "torch_dtype":"bfloat16","vocab_size":32000}
EOF
cat >"$seeds/config_tf5.json" <<'EOF'
{"architectures":["LlamaForCausalLM"],"dtype":"bfloat16","head_dim":64,"hidden_size":2048,
 "intermediate_size":8192,"max_position_embeddings":131072,"model_type":"llama",
 "num_attention_heads":32,"num_hidden_layers":16,"num_key_value_heads":8,"rms_norm_eps":1e-05,
 "rope_parameters":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
 "original_max_position_embeddings":8192,"rope_theta":500000.0,"rope_type":"llama3"},
 "tie_word_embeddings":true,"vocab_size":128256,"bos_token_id":null,"eos_token_id":null}
EOF
cat >"$seeds/config_linear.json" <<'EOF'
{"model_type":"llama","vocab_size":256,"hidden_size":64,"intermediate_size":128,
 "num_hidden_layers":2,"num_attention_heads":4,"head_dim":null,"max_position_embeddings":512,
 "rope_scaling":{"type":"linear","factor":4.0}}
EOF

# --- Dictionary: the keys and values both formats use ------------------------------------------
dict="$work/model_files.dict"
: >"$dict"
for w in __metadata__ dtype shape data_offsets F32 F16 BF16 I8 architectures model_type \
  LlamaForCausalLM MistralForCausalLM llama mistral vocab_size hidden_size intermediate_size \
  num_hidden_layers num_attention_heads num_key_value_heads head_dim max_position_embeddings \
  sliding_window rms_norm_eps rope_theta rope_scaling rope_parameters rope_type type default \
  linear llama3 yarn factor low_freq_factor high_freq_factor original_max_position_embeddings \
  partial_rotary_factor tie_word_embeddings bos_token_id eos_token_id attention_bias mlp_bias \
  hidden_act silu torch_dtype quantization_config; do
  printf 'kw_%s="\\"%s\\""\n' "$w" "$w" >>"$dict"
done
printf 'null="null"\ntrue="true"\nfalse="false"\nbig="18446744073709551615"\nneg="-1"\nflt="1e308"\n' >>"$dict"

echo "fuzzing for ${seconds}s (corpus: $work/corpus)"
status=0
"$build/tests/fuzz_model_files" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -dict="$dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/corpus" "$seeds" || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz_model_files FAILED (exit $status); reproducers in $work/artifacts/" >&2
  exit "$status"
fi
echo "fuzz_model_files: no crash in ${seconds}s"

# --- tokenizer.json: first byte 0 = the file, anything else = a text to encode -----------------
tseeds="$work/tokenizer_seeds"
mkdir -p "$tseeds" "$work/tokenizer_corpus"
{ printf '\0'; cat <<'EOF'; } >"$tseeds/bytelevel.json"
{"added_tokens":[{"id":6,"content":"<|x|>","special":true,"lstrip":true,"rstrip":false,"single_word":false,"normalized":false}],
 "normalizer":{"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Replace","pattern":{"String":"\t"},"content":" "}]},
 "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\p{L}+|\\p{N}{1,3}|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false},{"type":"Digits","individual_digits":true}]},
 "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|x|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<|x|>":{"id":"<|x|>","ids":[6]}}},
 "decoder":{"type":"ByteLevel"},
 "model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"Ġab":4,"c":5},"merges":[["a","b"],"Ġ ab"],"ignore_merges":true}}
EOF
{ printf '\0'; cat <<'EOF'; } >"$tseeds/spm.json"
{"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},
 "pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true},
 "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0},{"type":"Metaspace","replacement":"▁"}]},
 "model":{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"byte_fallback":true,"vocab":{"<unk>":0,"<0x41>":1,"▁":2,"h":3,"i":4,"hi":5,"▁hi":6},"merges":["h i","▁ hi"]}}
EOF
printf '\1Hello world 12345 dont\n\n\t 日本語 🚀 <|eot_id|> e\xcc\x81' >"$tseeds/text.txt"
printf '\1bad \xc3\x28 utf8 \xed\xa0\x80' >"$tseeds/text_bad.txt"
tdict="$work/tokenizer.dict"
: >"$tdict"
for w in model type BPE vocab merges added_tokens normalizer pre_tokenizer post_processor decoder \
  Sequence NFC NFKC Lowercase Prepend Replace Strip Split ByteLevel Metaspace Digits Punctuation \
  Whitespace WhitespaceSplit ByteFallback Fuse TemplateProcessing SpecialToken pattern Regex String \
  behavior Isolated Removed MergedWithPrevious MergedWithNext Contiguous invert prepend_scheme \
  first always never split replacement content special lstrip rstrip single_word normalized \
  unk_token fuse_unk byte_fallback ignore_merges continuing_subword_prefix end_of_word_suffix; do
  printf 'kw_%s="\\"%s\\""\n' "$w" "$w" >>"$tdict"
done
status=0
"$build/tests/fuzz_tokenizer" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -dict="$tdict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/tokenizer_corpus" "$tseeds" || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz_tokenizer FAILED (exit $status); reproducers in $work/artifacts/" >&2
  exit "$status"
fi
echo "fuzz_tokenizer: no crash in ${seconds}s"
