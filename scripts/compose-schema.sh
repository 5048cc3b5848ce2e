#!/usr/bin/env bash
# Fetch the Compose Specification JSON Schema that tests/sre/test_deploy.py validates
# deploy/compose.yaml against, into .cache/compose-spec/compose-spec.json (git-ignored).
#
# Source: the schema of the compose-spec project (Apache-2.0), as shipped by the npm package
# `dclint` (MIT) at schemas/compose.schema.json. Pinned by version and by the registry's
# sha512 integrity of the tarball; only that one file is kept. Idempotent, ~1 s.
set -euo pipefail
VERSION=3.1.0
INTEGRITY="sha512-afTGdzRFUXK4yCpIiEW/LOR+9TOMEDhNldDp56VCWzn7JDmD451PcUi640GGlMHgbHKJ10rDBm4PtpcBbjqlXw=="
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.cache/compose-spec"
if [ -f "$dest/compose-spec.json" ] && [ "$(cat "$dest/source" 2>/dev/null)" = "dclint@$VERSION" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "compose-schema: needs npm (Node.js)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent --loglevel=error "dclint@$VERSION" >/dev/null)
tarball="$work/dclint-$VERSION.tgz"
actual="$(python3 -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "compose-schema: dclint@$VERSION does not match its pinned integrity" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/schemas/compose.schema.json
mkdir -p "$dest"
install -m 0644 "$work/package/schemas/compose.schema.json" "$dest/compose-spec.json"
echo "dclint@$VERSION" > "$dest/source"
echo "$dest/compose-spec.json"
