#!/usr/bin/env bash
# Fetches the browser libraries the pages load from /static/vendor/ (git-ignored), at pinned versions,
# from the npm registry with npm itself; checks each tarball against its pinned integrity. Does nothing
# when the pinned version is already there.
#
#   hls.js — plays the live room's HLS stream where the browser has no native HLS (Chromium, Firefox).
set -euo pipefail
cd "$(dirname "$0")/.."

VENDOR=linli/web/static/vendor
HLS_VERSION=1.7.4
HLS_INTEGRITY="sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70GwefNEUmHQeNGyjC8U62+bruqW/Tpm+tg=="

target="$VENDOR/hls.js"
if [ "$(cat "$target/VERSION" 2>/dev/null || true)" = "$HLS_VERSION" ] && [ -s "$target/hls.min.mjs" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: it fetches the video player library hls.js@$HLS_VERSION." >&2
  echo "Install Node.js and npm (Debian: apt-get install npm) and run this again." >&2
  exit 1
fi

echo "Fetching hls.js@$HLS_VERSION into $target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm pack "hls.js@$HLS_VERSION" --pack-destination "$work" --json --silent >"$work/pack.json"
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$work/pack.json")
if [ "$got" != "$HLS_INTEGRITY" ]; then
  echo "hls.js@$HLS_VERSION: integrity $got does not match the pinned $HLS_INTEGRITY" >&2
  exit 1
fi
tar -xzf "$work/hls.js-$HLS_VERSION.tgz" -C "$work" package/dist/hls.min.mjs package/LICENSE
rm -rf "$target"
mkdir -p "$target"
cp "$work/package/dist/hls.min.mjs" "$work/package/LICENSE" "$target/"
echo "$HLS_VERSION" >"$target/VERSION"
