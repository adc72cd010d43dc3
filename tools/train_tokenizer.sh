#!/usr/bin/env bash
# Trains the demo model's tokenizer: a sentencepiece BPE model with Llama-2's
# conventions (byte fallback, split digits, identity normalization, dummy prefix,
# <unk>=0 <s>=1 </s>=2, no pad) and a 4096-token vocabulary, on data/train.txt
# (made by tools/fetch_corpus.sh). Writes models/demo/tokenizer.model (and
# tokenizer.vocab, a readable listing, next to it in data/).
#
# Deterministic: every line of the training text is used (input_sentence_size=0:
# no sampling, no shuffling), one thread, fixed seed.
# Needs spm_train and spm_encode (Debian: apt-get install sentencepiece; written
# against 0.1.97).
#
# Usage: tools/train_tokenizer.sh [TRAIN_TXT [OUT_DIR]]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRAIN="${1:-$ROOT/data/train.txt}"
OUT_DIR="${2:-$ROOT/models/demo}"
HELDOUT="$ROOT/data/heldout.txt"
MAX_SENTENCE_BYTES=1048576

die() { echo "train_tokenizer: error: $*" >&2; exit 1; }
command -v spm_train >/dev/null || die "spm_train not found (apt-get install sentencepiece)"
command -v spm_encode >/dev/null || die "spm_encode not found (apt-get install sentencepiece)"
[[ -s "$TRAIN" ]] || die "no $TRAIN (run tools/fetch_corpus.sh)"

# Every line must fit max_sentence_length, or spm_train would silently skip it.
longest="$(LC_ALL=C awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$TRAIN")"
(( longest < MAX_SENTENCE_BYTES )) || die "a line of $longest bytes exceeds $MAX_SENTENCE_BYTES"

WORK="$ROOT/data/tokenizer"
mkdir -p "$WORK" "$OUT_DIR"

spm_train \
  --input="$TRAIN" \
  --model_prefix="$WORK/tokenizer" \
  --model_type=bpe \
  --vocab_size=4096 \
  --character_coverage=0.9999 \
  --byte_fallback=true \
  --split_digits=true \
  --split_by_unicode_script=true \
  --split_by_number=true \
  --split_by_whitespace=true \
  --treat_whitespace_as_suffix=false \
  --allow_whitespace_only_pieces=true \
  --max_sentencepiece_length=16 \
  --normalization_rule_name=identity \
  --remove_extra_whitespaces=false \
  --add_dummy_prefix=true \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --unk_piece='<unk>' --bos_piece='<s>' --eos_piece='</s>' \
  --input_sentence_size=0 \
  --shuffle_input_sentence=false \
  --max_sentence_length="$MAX_SENTENCE_BYTES" \
  --hard_vocab_limit=true \
  --num_threads=1 \
  --random_seed=1234 \
  --minloglevel=1

cp "$WORK/tokenizer.model" "$OUT_DIR/tokenizer.model"
echo "train_tokenizer: wrote $OUT_DIR/tokenizer.model ($(wc -c < "$OUT_DIR/tokenizer.model") bytes)"
echo "train_tokenizer: sha256 $(sha256sum "$OUT_DIR/tokenizer.model" | cut -d' ' -f1)"

# Tokens per character. spm_encode encodes line by line; empty lines encode to
# nothing, and a newline of the running text costs one byte-fallback token
# (<0x0A>), counted here. Characters include the newlines.
report() {
  local name="$1" file="$2" toks lines chars
  export LC_ALL=C.UTF-8
  [[ -s "$file" ]] || return 0
  toks="$(spm_encode --model="$OUT_DIR/tokenizer.model" --output_format=id < "$file" | wc -w)"
  lines="$(wc -l < "$file")"
  chars="$(wc -m < "$file")"
  awk -v n="$name" -v t="$toks" -v l="$lines" -v c="$chars" 'BEGIN {
    printf "train_tokenizer: %-8s %10d chars %9d tokens (+%d newlines) %.4f tokens/char, %.3f chars/token\n",
      n, c, t, l, (t + l) / c, c / (t + l) }'
}
report train "$TRAIN"
report heldout "$HELDOUT"
