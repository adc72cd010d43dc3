#!/usr/bin/env bash
# Installs, builds and runs the tests: every CPU test, then the parser fuzzer for a bounded time.
# On a machine with a GPU, also runs the `gpu`-labelled tests (KVCOMP_GPU_TESTS=1 forces them,
# =0 skips them).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"

ctest --test-dir "$root/build" -LE gpu --output-on-failure -j "${KVCOMP_TEST_JOBS:-2}"

gpu="${KVCOMP_GPU_TESTS:-}"
if [ -z "$gpu" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; else gpu=0; fi
fi
if [ "$gpu" = 1 ]; then
  ctest --test-dir "$root/build" -L gpu --output-on-failure
fi

"$root/tools/run_fuzz.sh" "${KVCOMP_FUZZ_SECONDS:-60}"
echo "test: all passed" >&2
