#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft, combined broker + controller) on 127.0.0.1.
#
#   scripts/kafka.sh fetch  [--version V]                 # jars from Maven Central (cached)
#   scripts/kafka.sh start  [--dir D] [--port P] [--controller-port C] [--timeout S]
#   scripts/kafka.sh wait   [--dir D] [--timeout S]       # until the broker is ready
#   scripts/kafka.sh status [--dir D]                     # exit 0 when running and ready
#   scripts/kafka.sh stop   [--dir D] [--timeout S]       # SIGTERM, SIGKILL after S seconds
#
# Defaults (flags win over env): dir var/kafka (KAFKA_DIR), broker port 19092 (KAFKA_PORT),
# controller port 19093 (KAFKA_CONTROLLER_PORT), version KAFKA_VERSION (see below),
# heap KAFKA_HEAP_OPTS. Jars live in .cache/kafka/<version>/libs (KAFKA_CACHE overrides
# .cache/kafka). A restart of the same dir without ports reuses those in DIR/ports.env.
# DIR holds server.properties, log4j2.properties, data/, logs/server.log, logs/stdout.log,
# kafka.pid and ports.env. `start` prints the bootstrap address (127.0.0.1:PORT) last.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CONF_DIR="$ROOT/deploy/kafka"
VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE="${KAFKA_CACHE:-$ROOT/.cache/kafka}"
DIR="${KAFKA_DIR:-$ROOT/var/kafka}"
PORT="${KAFKA_PORT:-}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-}"
TIMEOUT=""
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx768m -Xms256m}"
JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

libs_dir() { echo "$CACHE/$VERSION/libs"; }

cmd_fetch() {
    local libs
    libs="$(libs_dir)"
    if compgen -G "$libs/kafka_2.13-$VERSION.jar" >/dev/null \
        && compgen -G "$libs/log4j-core-*.jar" >/dev/null; then
        echo "kafka $VERSION jars present in $libs"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn missing (apt-get install maven)"
    mkdir -p "$libs.partial"
    # Into a side folder first, so that an interrupted fetch is never taken as complete.
    if ! mvn -q -B -f "$CONF_DIR/pom.xml" dependency:copy-dependencies \
        -Dkafka.version="$VERSION" -Dlibs.dir="$libs.partial" >&2; then
        die "mvn could not fetch kafka_2.13:$VERSION"
    fi
    rm -rf "$libs"
    mv "$libs.partial" "$libs"
    echo "kafka $VERSION jars fetched into $libs"
}

pid_of() { [[ -f "$DIR/kafka.pid" ]] && cat "$DIR/kafka.pid" || true; }

alive() {
    local pid
    pid="$(pid_of)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

load_ports() {
    if [[ -f "$DIR/ports.env" ]]; then
        # shellcheck disable=SC1091
        source "$DIR/ports.env"
        PORT="${PORT:-$BROKER_PORT}"
        CONTROLLER_PORT="${CONTROLLER_PORT:-$CTRL_PORT}"
    fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ready: the process runs, its broker port accepts connections and the server logged that
# it has started (listeners up, metadata loaded) since the last start.
ready() {
    alive || return 1
    load_ports
    [[ -n "${PORT:-}" ]] && port_open "$PORT" || return 1
    local mark=0
    [[ -f "$DIR/start.mark" ]] && mark="$(cat "$DIR/start.mark")"
    # grep reads to the end (no -q): with pipefail, `grep -q` exiting at the match left `tail`
    # to die of SIGPIPE (status 141) whenever more than a pipe buffer of log followed the
    # line, so a broker that logged a lot after starting (a restart loading many groups, a
    # slow machine) was never seen ready.
    tail -c "+$((mark + 1))" "$DIR/logs/server.log" 2>/dev/null \
        | grep -F 'Kafka Server started' >/dev/null
}

log_tail() {
    echo "--- tail of $DIR/logs/server.log ---" >&2
    tail -n 30 "$DIR/logs/server.log" >&2 2>/dev/null || true
    echo "--- tail of $DIR/logs/stdout.log ---" >&2
    tail -n 15 "$DIR/logs/stdout.log" >&2 2>/dev/null || true
}

cmd_wait() {
    local timeout="${TIMEOUT:-60}" start=$SECONDS
    until ready; do
        if ! alive; then
            log_tail
            die "broker not running (exited during start-up?), see $DIR/logs"
        fi
        if (( SECONDS - start >= timeout )); then
            log_tail
            die "broker not ready after ${timeout}s, see $DIR/logs"
        fi
        sleep 0.2
    done
}

render() {
    sed -e "s#@DIR@#$DIR#g" -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" \
        "$CONF_DIR/server.properties.template" >"$DIR/server.properties"
    cp "$CONF_DIR/log4j2.properties" "$DIR/log4j2.properties"
}

java_cmd() {
    # shellcheck disable=SC2086
    echo java $HEAP_OPTS $JVM_OPTS "-Dkafka.logs.dir=$DIR/logs" \
        "-Dlog4j2.configurationFile=$DIR/log4j2.properties" -cp "$(libs_dir)/*"
}

cmd_start() {
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    if alive; then die "already running in $DIR (pid $(pid_of))"; fi
    load_ports
    PORT="${PORT:-19092}"
    CONTROLLER_PORT="${CONTROLLER_PORT:-19093}"
    [[ "$PORT" != "$CONTROLLER_PORT" ]] || die "broker and controller ports must differ"
    local p
    for p in "$PORT" "$CONTROLLER_PORT"; do
        if port_open "$p"; then die "port $p on 127.0.0.1 is already in use"; fi
    done
    command -v java >/dev/null 2>&1 || die "java missing (Java 17+ needed)"
    cmd_fetch >/dev/null
    mkdir -p "$DIR/data" "$DIR/logs"
    printf 'BROKER_PORT=%s\nCTRL_PORT=%s\nVERSION=%s\n' "$PORT" "$CONTROLLER_PORT" "$VERSION" \
        >"$DIR/ports.env"
    render
    local java
    read -r -a java <<<"$(java_cmd)"
    if [[ ! -f "$DIR/data/meta.properties" ]]; then
        local cluster_id
        # A fresh random cluster id: 16 random bytes, base64url without padding (Kafka Uuid).
        # Never one starting with "-" (1 in 64): the tool would read it as an option and the
        # start-up failed ("argument --cluster-id/-t: expected one argument"). Kafka's own
        # Uuid.randomUuid() skips those too.
        cluster_id="-"
        while [[ "$cluster_id" == -* ]]; do
            cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
        done
        if ! "${java[@]}" kafka.tools.StorageTool format --ignore-formatted \
            -t "$cluster_id" -c "$DIR/server.properties" >>"$DIR/logs/stdout.log" 2>&1; then
            log_tail
            die "storage format failed"
        fi
    fi
    # Byte offset in server.log where this start begins (readiness looks after it).
    stat -c %s "$DIR/logs/server.log" 2>/dev/null >"$DIR/start.mark" || echo 0 >"$DIR/start.mark"
    # Own session, stdio to a file: never tied to the calling terminal.
    setsid "${java[@]}" kafka.Kafka "$DIR/server.properties" \
        </dev/null >>"$DIR/logs/stdout.log" 2>&1 &
    echo $! >"$DIR/kafka.pid"
    cmd_wait
    echo "kafka $VERSION ready in $DIR (pid $(pid_of))" >&2
    echo "127.0.0.1:$PORT"
}

cmd_status() {
    DIR="$(cd "$DIR" 2>/dev/null && pwd)" || die "no broker dir $DIR"
    if ready; then
        echo "running: pid $(pid_of), bootstrap 127.0.0.1:$PORT"
        return 0
    fi
    if alive; then echo "starting or unresponsive: pid $(pid_of)"; else echo "stopped"; fi
    return 1
}

cmd_stop() {
    [[ -d "$DIR" ]] || { echo "stopped (no $DIR)"; return 0; }
    DIR="$(cd "$DIR" && pwd)"
    local pid timeout="${TIMEOUT:-30}" start=$SECONDS
    pid="$(pid_of)"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$DIR/kafka.pid"
        echo "stopped"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS - start >= timeout )); then
            echo "kafka.sh: no exit after ${timeout}s, SIGKILL $pid" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$DIR/kafka.pid"
    echo "stopped (pid $pid)"
}

main() {
    local cmd="${1:-}"
    [[ -n "$cmd" ]] || usage 2
    shift
    while (($#)); do
        case "$1" in
            --dir) DIR="$2"; shift 2 ;;
            --port) PORT="$2"; shift 2 ;;
            --controller-port) CONTROLLER_PORT="$2"; shift 2 ;;
            --version) VERSION="$2"; shift 2 ;;
            --timeout) TIMEOUT="$2"; shift 2 ;;
            -h|--help) usage 0 ;;
            *) die "unknown argument: $1" ;;
        esac
    done
    case "$cmd" in
        fetch) cmd_fetch ;;
        start) cmd_start ;;
        wait) DIR="$(cd "$DIR" && pwd)"; cmd_wait ;;
        status) cmd_status ;;
        stop) cmd_stop ;;
        -h|--help|help) usage 0 ;;
        *) die "unknown command: $cmd" ;;
    esac
}

main "$@"
