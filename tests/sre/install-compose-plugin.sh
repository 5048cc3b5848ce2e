#!/usr/bin/env bash
# Install the `docker compose` CLI plugin (used by tests/sre to validate deploy/compose.yaml
# with the real Compose loader; `docker compose config` needs no Docker engine).
# Builds docker/compose from the Go module proxy with the local Go toolchain (no other
# download source), into ~/.docker/cli-plugins/docker-compose. Idempotent. ~5 min on 2 cores.
set -euo pipefail
VERSION="${COMPOSE_VERSION:-v2.40.3}"
plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
if docker compose version 2>/dev/null | grep -q "${VERSION#v}"; then
  exit 0
fi
command -v go >/dev/null || { echo "install-compose-plugin: needs the Go toolchain" >&2; exit 1; }
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
src="$(go mod download -json "github.com/docker/compose/v2@$VERSION" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
# Build as the main module: its go.mod has replace/exclude directives `go install` refuses.
cp -r "$src" "$work/compose" && chmod -R u+w "$work/compose"
(cd "$work/compose" && go build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$VERSION" \
  -o "$work/docker-compose" ./cmd)
mkdir -p "$plugin_dir"
install -m 0755 "$work/docker-compose" "$plugin_dir/docker-compose"
docker compose version
