#!/usr/bin/env bash
# Local ClickHouse server for tests and development (Debian's clickhouse-server 18.16).
#
#   scripts/clickhouse.sh install                      # apt-get install when missing
#   scripts/clickhouse.sh start DIR [TCP] [HTTP]       # background server, 127.0.0.1 only
#   scripts/clickhouse.sh status DIR                   # exit 0 when it answers
#   scripts/clickhouse.sh stop DIR                     # SIGTERM, then SIGKILL after 20 s
#
# DIR holds everything of this instance: config.xml, users.xml, data/, tmp/, log/,
# clickhouse.pid and ports.env. Ports default to free ones picked at start time; a restart
# of the same DIR reuses the ports recorded in DIR/ports.env. `start` prints the store URL
# (clickhouse://default:@127.0.0.1:TCP/vigie) on its last line.
# 18.16 runs fine as root (no ownership check), so no user switch is needed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF_DIR="$HERE/../deploy/clickhouse"
SERVER_BIN="${CLICKHOUSE_SERVER_BIN:-clickhouse-server}"
START_TIMEOUT="${CLICKHOUSE_START_TIMEOUT:-60}"

die() { echo "clickhouse.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cmd_install() {
    if command -v "$SERVER_BIN" >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
        echo "clickhouse-server already installed: $(command -v "$SERVER_BIN")"
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    local lock=(-o DPkg::Lock::Timeout=900)
    if ! apt-cache policy clickhouse-server 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get "${lock[@]}" update -q
    fi
    apt-get "${lock[@]}" install -y -q --no-install-recommends clickhouse-server clickhouse-client
}

pid_of() { [[ -f "$1/clickhouse.pid" ]] && cat "$1/clickhouse.pid" || true; }

alive() {
    local pid
    pid="$(pid_of "$1")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

answers() {
    # shellcheck disable=SC1091
    source "$1/ports.env"
    clickhouse-client --host 127.0.0.1 --port "$TCP_PORT" --query 'SELECT 1' >/dev/null 2>&1
}

cmd_start() {
    local dir="${1:?usage: start DIR [TCP_PORT] [HTTP_PORT]}"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if alive "$dir"; then die "already running in $dir (pid $(pid_of "$dir"))"; fi
    local tcp="${2:-}" http="${3:-}"
    if [[ -z "$tcp" && -f "$dir/ports.env" ]]; then
        # shellcheck disable=SC1091
        source "$dir/ports.env"; tcp="$TCP_PORT"; http="$HTTP_PORT"
    fi
    tcp="${tcp:-$(free_port)}"
    http="${http:-$(free_port)}"
    command -v "$SERVER_BIN" >/dev/null 2>&1 || die "clickhouse-server missing: run '$0 install'"
    mkdir -p "$dir"/{data,tmp,log,user_files,format_schemas}
    printf 'TCP_PORT=%s\nHTTP_PORT=%s\n' "$tcp" "$http" >"$dir/ports.env"
    sed -e "s#@DIR@#$dir#g" -e "s#@TCP_PORT@#$tcp#g" -e "s#@HTTP_PORT@#$http#g" \
        "$CONF_DIR/config.xml" >"$dir/config.xml"
    cp "$CONF_DIR/users.xml" "$dir/users.xml"
    # Detached from this shell (own session), stdio to a file: never a foreground process.
    setsid "$SERVER_BIN" --config-file="$dir/config.xml" \
        </dev/null >>"$dir/log/stdout.log" 2>&1 &
    echo $! >"$dir/clickhouse.pid"
    local waited=0
    until answers "$dir"; do
        if ! alive "$dir"; then
            tail -n 20 "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" >&2 || true
            die "server exited during start-up (see $dir/log)"
        fi
        if ((waited >= START_TIMEOUT * 5)); then
            cmd_stop "$dir" >/dev/null 2>&1 || true
            die "server did not answer within ${START_TIMEOUT}s"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    echo "clickhouse://default:@127.0.0.1:$tcp/vigie"
}

cmd_stop() {
    local dir="${1:?usage: stop DIR}"
    local pid
    pid="$(pid_of "$dir")"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$dir/clickhouse.pid"
        echo "not running"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/clickhouse.pid"; echo "stopped"; return 0; }
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/clickhouse.pid"
    echo "killed"
}

cmd_status() {
    local dir="${1:?usage: status DIR}"
    if alive "$dir" && answers "$dir"; then
        # shellcheck disable=SC1091
        source "$dir/ports.env"
        echo "running (pid $(pid_of "$dir")): clickhouse://default:@127.0.0.1:$TCP_PORT/vigie"
    else
        echo "not running"
        return 1
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    *) die "usage: $0 install | start DIR [TCP] [HTTP] | stop DIR | status DIR" ;;
esac
