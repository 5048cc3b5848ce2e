#!/usr/bin/env bash
# Install the Debian packages the test suite and benchmarks need, when missing:
# clickhouse-server/-client (server-mode tests), prometheus (promtool), chromium (browser tests),
# poppler-utils (pdftotext: the diagnostic's PDF).
# The packages' services are not started (policy-rc.d refuses it during the install): tests
# start their own instances on loopback, and this script never stops a process it did not
# start (a user's own Prometheus or ClickHouse keeps running).
set -euo pipefail
need=()
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server clickhouse-client)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)  # the diagnostic's PDF test
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: need root (or sudo) to apt-get install: ${need[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${need[*]}"
# Wait for another apt/dpkg run to finish (bounded).
for _ in $(seq 1 120); do
  fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 || break
  sleep 2
done
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
