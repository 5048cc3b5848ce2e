#!/usr/bin/env bash
# Install the npm tooling of the browser tests (playwright-core, pinned by the lockfile) into
# tests/browser/node_modules. Idempotent: does nothing when the installed tree matches the lock.
# playwright-core never downloads browsers: the tests drive Debian's /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/../tests/browser"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -f node_modules/.package-lock.json ] && [ -f package-lock.json ] \
   && cmp -s <(node -e 'const l=require("./package-lock.json");console.log(JSON.stringify(l.packages["node_modules/playwright-core"]?.version))') \
             <(node -e 'const l=require("./node_modules/.package-lock.json");console.log(JSON.stringify(l.packages["node_modules/playwright-core"]?.version))'); then
  exit 0
fi
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
command -v chromium >/dev/null 2>&1 || echo "browser-deps: /usr/bin/chromium missing (make system-deps)" >&2
