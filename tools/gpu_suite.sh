#!/usr/bin/env bash
# On a GPU machine: build, run the gpu-labelled tests (with compute-sanitizer memcheck on the
# kernel tests), then the benchmarks quoted in docs/perf-log.md. Logs and JSON go to
# ${OUT:-build-gpu/out}.
#   tools/gpu_suite.sh [build] [test] [memcheck] [attention] [codec] [e2e] [accuracy] | all
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$root/build-gpu/out}"
mkdir -p "$out"
build="$root/build-gpu"
bin="$build/tools"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(all)
want() { for s in "${steps[@]}"; do [ "$s" = "$1" ] || [ "$s" = all ] && return 0; done; return 1; }
status=0
heldout="$root/models/demo/heldout.txt"
llama7b="$root/models/configs/llama-2-7b.json"

if want build; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
  cmake --build "$build" -j "$(nproc)" 2>&1 | grep -E "error|warning: " | head -40
  [ -x "$bin/kvcomp" ] || { echo "build failed"; exit 1; }
fi

if want test; then
  ctest --test-dir "$build" -L gpu --output-on-failure >"$out/gpu_tests.log" 2>&1 || status=1
  grep -E "Test +#|tests passed|rel err|diverged|agree|perplexity|ratio|seed|FAILED|with expansion" \
    "$out/gpu_tests.log" | head -60
fi

if want memcheck; then
  # KVCOMP_TEST_QUICK: the fused-attention test's cases of at most 6000 tokens (kernels run ~50x
  # slower under the sanitizer).
  for t in test_ops_gpu test_attention_kvcomp_gpu test_codec_gpu; do
    [ -x "$build/tests/$t" ] || continue
    KVCOMP_TEST_QUICK=1 timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
      "$build/tests/$t" >"$out/memcheck_$t.log" 2>&1
    echo "memcheck $t: exit $? $(grep -m1 'ERROR SUMMARY' "$out/memcheck_$t.log")"
  done
  KVCOMP_TEST_QUICK=1 timeout 300 compute-sanitizer --tool racecheck --error-exitcode 9 \
    "$build/tests/test_attention_kvcomp_gpu" >"$out/racecheck.log" 2>&1
  echo "racecheck test_attention_kvcomp_gpu: exit $? $(grep -m1 'SUMMARY' "$out/racecheck.log")"
fi

if want attention; then
  "$bin/kvcomp_bench_attention" --reps "${REPS:-15}" --json "$out/attention_bench.json" \
    | tee "$out/attention_bench.txt"
  python3 "$root/tools/bench_attention_torch.py" --reps "${REPS:-15}" --json "$out/attention_torch.json" \
    | tee "$out/attention_torch.txt"
  "$root/../shared/anchors/ggml-fa/run.sh" | tee "$out/ggml.txt"
  python3 "$root/tools/attention_table.py" --bench "$out/attention_bench.json" \
    --torch "$out/attention_torch.json" --ggml "$out/ggml.txt" --out "$out/attention.json"
fi

if want codec; then
  # The demo model's K/V extended to 32 heads x 32k tokens (the quoted figures); synthetic data
  # alongside, as earlier entries of docs/perf-log.md were measured on it.
  "$bin/kvcomp_bench_codec" --data real --json "$out/codec.json" 2>&1 | tee "$out/codec.txt"
  "$bin/kvcomp_bench_codec" --data synthetic --json "$out/codec_synthetic.json" 2>&1 \
    | tee "$out/codec_synthetic.txt"
fi

if want e2e; then
  python3 "$root/tools/bench_ceilings.py" | tee "$out/ceilings.txt"
  "$bin/kvcomp" bench --config "$llama7b" --random-weights --ctx 128,2048 --batch 1 --n-decode 64 \
    --kv fp16,fp16-cublas,kvcomp | tee "$out/e2e_7b_2k.txt"
  "$bin/kvcomp" bench --config "$llama7b" --random-weights --ctx 32768 --batch 1,16 --n-decode 32 \
    --kv fp16,kvcomp --json >"$out/e2e_7b_32k.json"
  python3 -c "import json,sys; [print(r) for r in json.load(open('$out/e2e_7b_32k.json'))['rows']]"
  "$bin/kvcomp" bench --ctx 512,1536 --batch 1,8 --n-decode 128 --kv fp16,kvcomp | tee "$out/e2e_demo.txt"
  python3 "$root/tools/bench_hf_generate.py" --model "$root/models/demo" --prompt-tokens 512 --new 128 \
    | tee "$out/hf_demo.txt"
  python3 "$root/tools/bench_hf_generate.py" --config "$llama7b" --prompt-tokens 2048 --new 64 \
    | tee "$out/hf_7b.txt"
fi

if want accuracy; then
  for kv in fp16 kvcomp; do
    "$bin/kvcomp" perplexity --device cuda --text "$heldout" --ctx 1024 --batch 32 --kv $kv --json \
      | tee "$out/ppl_$kv.json"
  done
fi
exit $status
