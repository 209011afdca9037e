#!/usr/bin/env bash
# Download vosk's small English model, check its published SHA-256, unpack it and print the
# line to export:
#
#   scripts/get-vosk-model.sh [folder]        # default: models/vosk in the repository
#   eval "$(scripts/get-vosk-model.sh)"       # sets VOSK_MODEL_PATH in this shell
#
# Progress and errors go to stderr; stdout is only the `export VOSK_MODEL_PATH=...` line.
# VOSK_MODEL_URL replaces the download address (a mirror; the checksum must still match).
set -euo pipefail

MODEL=vosk-model-small-en-us-0.15
SHA256=30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498
URL="${VOSK_MODEL_URL:-https://alphacephei.com/vosk/models/$MODEL.zip}"

fail() { echo "get-vosk-model: $*" >&2; exit 1; }

repository="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "${1:-$repository/models/vosk}"
folder="$(cd "${1:-$repository/models/vosk}" && pwd)"
model="$folder/$MODEL"

if [ -f "$model/am/final.mdl" ]; then
  echo "get-vosk-model: $model is already there" >&2
  printf 'export VOSK_MODEL_PATH=%q\n' "$model"
  exit 0
fi

download="$folder/$MODEL.zip.part"
trap 'rm -f "$download"; rm -rf "$folder/.unpacking"' EXIT
echo "get-vosk-model: downloading $URL (about 40 MB)" >&2
if command -v curl > /dev/null; then
  curl --fail --location --silent --show-error --connect-timeout 20 --retry 2 --output "$download" "$URL" \
    || fail "could not download $URL: no internet connection, or the address is wrong"
elif command -v wget > /dev/null; then
  wget --quiet --timeout=20 --tries=3 --output-document="$download" "$URL" \
    || fail "could not download $URL: no internet connection, or the address is wrong"
else
  fail "needs curl or wget to download the model (sudo apt-get install curl)"
fi

if command -v sha256sum > /dev/null; then
  actual="$(sha256sum "$download" | cut -d' ' -f1)"
else
  actual="$(shasum -a 256 "$download" | cut -d' ' -f1)"
fi
if [ "$actual" != "$SHA256" ]; then
  fail "checksum mismatch for $URL: expected sha256 $SHA256, got $actual. The download is damaged or not the published model; it was deleted. Try again."
fi

mkdir -p "$folder/.unpacking"
if command -v unzip > /dev/null; then
  unzip -q "$download" -d "$folder/.unpacking"
else
  python3 -m zipfile -e "$download" "$folder/.unpacking"
fi
[ -f "$folder/.unpacking/$MODEL/am/final.mdl" ] || fail "the archive has no $MODEL/am/final.mdl"
rm -rf "$model"
mv "$folder/.unpacking/$MODEL" "$model"

echo "get-vosk-model: the English model is in $model" >&2
printf 'export VOSK_MODEL_PATH=%q\n' "$model"
