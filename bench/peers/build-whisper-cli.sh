#!/usr/bin/env bash
# Builds whisper.cpp's own CLI (`main`) from the whisper.cpp sources that smart-whisper (kikitori's CPU
# engine) ships, for bench/engine-speed.ts: same whisper.cpp, without kikitori around it.
# The package leaves out scripts/get-flags.mk (extra warning flags only), so an empty one stands in.
#   bench/peers/build-whisper-cli.sh [DEST]   (default ~/.cache/kikitori/whisper-cli; binary DEST/whisper-cli)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/node_modules/smart-whisper/whisper.cpp"
dest="${1:-$HOME/.cache/kikitori/whisper-cli}"
[ -f "$src/Makefile" ] || { echo "no whisper.cpp sources at $src (npm install smart-whisper)" >&2; exit 1; }
rm -rf "$dest/src" && mkdir -p "$dest" && cp -r "$src" "$dest/src"
mkdir -p "$dest/src/scripts"
printf 'GF_CFLAGS :=\nGF_CXXFLAGS :=\n' > "$dest/src/scripts/get-flags.mk"
make -C "$dest/src" -j"$(nproc)" main > "$dest/build.log" 2>&1 || { tail -20 "$dest/build.log" >&2; exit 1; }
cp "$dest/src/main" "$dest/whisper-cli"
echo "$dest/whisper-cli"
