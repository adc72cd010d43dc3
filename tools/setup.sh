#!/usr/bin/env bash
# Installs what kvcomp needs on Debian 12 / Ubuntu 24.04 and builds it into build/.
# The CUDA backend is built when the CUDA toolkit is found (/usr/local/cuda or nvcc on PATH);
# set KVCOMP_CUDA=OFF to skip it. Needs root (or sudo) for the package install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# libpcre2-dev and libutf8proc-dev: tokenizer.json (its regexes, Unicode normal forms).
# gnuplot-nox draws the plots of `kvcomp sweep` and tools/plot_attention.py.
packages=(build-essential cmake ninja-build pkg-config libsentencepiece-dev nlohmann-json3-dev
          libcli11-dev catch2 clang gnuplot-nox libpcre2-dev libutf8proc-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cuda="${KVCOMP_CUDA:-}"
if [ -z "$cuda" ]; then
  if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; then cuda=ON; else cuda=OFF; fi
fi
jobs="${KVCOMP_BUILD_JOBS:-$(nproc)}"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVCOMP_CUDA="$cuda" >/dev/null
cmake --build "$root/build" -j "$jobs"
echo "setup: built $root/build/tools/kvcomp (CUDA backend: $cuda)" >&2
