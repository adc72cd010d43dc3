#!/usr/bin/env bash
# On a GPU machine: build, run the gpu-labelled tests (and compute-sanitizer memcheck on the op
# tests), then the benchmarks. Writes logs and JSON under ${OUT:-build-gpu/out}.
#   tools/gpu_suite.sh [build|test|bench|all]...   (default: all)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$root/build-gpu/out}"
mkdir -p "$out"
build="$root/build-gpu"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(all)
want() { for s in "${steps[@]}"; do [ "$s" = "$1" ] || [ "$s" = all ] && return 0; done; return 1; }
status=0

if want build; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
  cmake --build "$build" -j "$(nproc)" 2>&1 | grep -E "error|warning: " | head -40
  [ -x "$build/tools/kvcomp" ] || { echo "build failed"; exit 1; }
fi

if want test; then
  ctest --test-dir "$build" -L gpu --output-on-failure 2>&1 | tee "$out/gpu_tests.log" | \
    grep -vE "^\s*$" | tail -40 || status=1
  grep -q "100% tests passed" "$out/gpu_tests.log" || status=1
  if command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 \
      "$build/tests/test_ops_gpu" >"$out/memcheck.log" 2>&1
    echo "memcheck test_ops_gpu: exit $? ($(grep -c "ERROR SUMMARY: 0 errors" "$out/memcheck.log") clean summaries)"
  fi
fi

if want bench; then
  python3 "$root/tools/bench_ceilings.py" 2>&1 | tee "$out/ceilings.txt"
  "$build/tools/kvcomp" bench --config "$root/models/configs/llama-2-7b.json" --random-weights \
    --ctx 2048 --batch 1 --n-decode 64 --json >"$out/bench_7b.json" 2>"$out/bench_7b.err"
  "$build/tools/kvcomp" bench --config "$root/models/configs/llama-2-7b.json" --random-weights \
    --ctx 2048 --batch 1 --n-decode 64 2>&1 | tail -5
  "$build/tools/kvcomp" bench --ctx 1024 --batch 1,8 --n-decode 64 2>&1 | tail -6
fi
exit $status
