#!/usr/bin/env bash
# Install the console's browser libraries (maplibre-gl, pinned exactly by console/web's
# package-lock.json) and copy the files the page loads into console/static/vendor/ (git-ignored,
# served by the console itself: the page never loads anything from another origin).
# Idempotent: does nothing when the copied files are those of the locked version.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WEB="$ROOT/console/web"
VENDOR="$ROOT/console/static/vendor/maplibre-gl"
locked="$(node -e 'const l=require(process.argv[1]);console.log(l.packages["node_modules/maplibre-gl"].version)' "$WEB/package-lock.json")"
if [ -f "$VENDOR/VERSION" ] && [ "$(cat "$VENDOR/VERSION")" = "$locked" ]; then
  exit 0
fi
cd "$WEB"
npm ci --no-audit --no-fund --loglevel=error
dist="$WEB/node_modules/maplibre-gl/dist"
installed="$(node -e 'console.log(require(process.argv[1]).version)' "$WEB/node_modules/maplibre-gl/package.json")"
if [ "$installed" != "$locked" ]; then
  echo "console-assets: maplibre-gl $installed installed, $locked locked" >&2
  exit 1
fi
rm -rf "$VENDOR.tmp"
mkdir -p "$VENDOR.tmp"
cp "$dist/maplibre-gl.mjs" "$dist/maplibre-gl-worker.mjs" "$dist/maplibre-gl.css" "$VENDOR.tmp/"
cp "$WEB/node_modules/maplibre-gl/LICENSE.txt" "$VENDOR.tmp/" 2>/dev/null || true
echo "$locked" >"$VENDOR.tmp/VERSION"
rm -rf "$VENDOR"
mv "$VENDOR.tmp" "$VENDOR"
echo "console-assets: maplibre-gl $locked -> ${VENDOR#"$ROOT"/}"
