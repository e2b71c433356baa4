#!/usr/bin/env bash
# Builds whisper.cpp's own CLI (whisper-cli) for bench/engine-speed.ts from the build tree of kikitori's
# addon (scripts/build-whisper): the same whisper.cpp sources, flags and ggml objects, without kikitori
# around them.
#   bench/peers/build-whisper-cli.sh [DEST]   (default ~/.cache/kikitori/whisper-cli; binary DEST/whisper-cli)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/node_modules/.kikitori-whisper/build"
dest="${1:-$HOME/.cache/kikitori/whisper-cli}"
"$root/scripts/build-whisper"
mkdir -p "$dest"
cmake --build "$build" --target whisper-cli whisper-quantize -j"$(nproc)" >"$dest/build.log" 2>&1 ||
  { tail -20 "$dest/build.log" >&2; exit 1; }
for bin in whisper-cli whisper-quantize; do
  cp "$(find "$build" -name "$bin" -type f -perm -u+x | head -n 1)" "$dest/$bin.tmp"
  mv "$dest/$bin.tmp" "$dest/$bin"
done
echo "$dest/whisper-cli"
