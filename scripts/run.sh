#!/usr/bin/env bash
# `make run`: the worker (embedded chDB + console) and a simulator feeding it, in the
# background, on the local broker that `make kafka-up` started.
#
#   scripts/run.sh start | stop | status
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${RUN_DIR:-var/run}
VIGIE=.venv/bin/vigie
PY=.venv/bin/python
mkdir -p "$RUN_DIR" var/vigie
export VIGIE_KAFKA_BOOTSTRAP=${VIGIE_KAFKA_BOOTSTRAP:-127.0.0.1:19092}
export VIGIE_CLICKHOUSE=${VIGIE_CLICKHOUSE:-chdb://$PWD/var/vigie/chdb}
export VIGIE_WEB_PORT=${VIGIE_WEB_PORT:-6066}
export VIGIE_CONSOLE_PORT=${VIGIE_CONSOLE_PORT:-8080}
export VIGIE_WORKER_DATA_DIR=${VIGIE_WORKER_DATA_DIR:-$PWD/var/worker}
HISTORY_DAYS=${HISTORY_DAYS:-14}
# Live at wall-clock speed by default (the console's windows and the detector follow the
# wall clock). A faster stream (SPEEDUP=30) runs ahead of it: the detector then follows the
# data's clock, but the console's "last hour" counters only catch up with the wall clock.
SPEEDUP=${SPEEDUP:-1}
if [ "$SPEEDUP" != 1 ]; then export VIGIE_DETECTOR_CLOCK=${VIGIE_DETECTOR_CLOCK:-data}; fi
# Kafka's time retention follows record timestamps, and the simulated history is stamped up to
# HISTORY_DAYS in the past: the input topics keep that history plus the default 7 days.
export VIGIE_INPUT_RETENTION_HOURS=${VIGIE_INPUT_RETENTION_HOURS:-$(( (HISTORY_DAYS + 7) * 24 ))}
SECRET_FILE="$RUN_DIR/pseudonym-secret"
WEBHOOK_PORT=${WEBHOOK_PORT:-8099}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The key of the keyed hash applied to personal data: 32 random bytes (hex), new with each
# demo, in a 0600 file of the run dir that every process of the run reads; KEEP_DATA=1 keeps
# it with the data, so that kept hashes still match. Never a fixed string: with a known key,
# every hashed phone number is found by trying them all. VIGIE_PSEUDONYM_SECRET, when set, wins.
pseudonym_secret() {
  if [ -n "${VIGIE_PSEUDONYM_SECRET:-}" ]; then export VIGIE_PSEUDONYM_SECRET; return 0; fi
  if [ "${KEEP_DATA:-0}" != 1 ] || [ ! -s "$SECRET_FILE" ]; then
    (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$SECRET_FILE.new")
    mv -f "$SECRET_FILE.new" "$SECRET_FILE"
  fi
  chmod 600 "$SECRET_FILE"
  VIGIE_PSEUDONYM_SECRET=$(cat "$SECRET_FILE")
  export VIGIE_PSEUDONYM_SECRET
}

# Partner webhooks (docs/webhooks.md): a demo partner whose deliveries go to a local
# receiver on loopback, which verifies each signature with the partner's secret (a 0600 file
# of the run dir) and logs every request to $RUN_DIR/webhooks.log. Before the worker starts:
# with chDB, one process at a time opens the store. VIGIE_WEBHOOKS_ENABLED=false: off.
webhooks() {
  export VIGIE_WEBHOOKS_ENABLED=${VIGIE_WEBHOOKS_ENABLED:-true}
  export VIGIE_WEBHOOK_ALLOW_HTTP_LOOPBACK=${VIGIE_WEBHOOK_ALLOW_HTTP_LOOPBACK:-true}
  [ "$VIGIE_WEBHOOKS_ENABLED" = true ] || return 0
  if [ "${KEEP_DATA:-0}" != 1 ]; then rm -f "$RUN_DIR/webhook-secret" "$RUN_DIR/webhooks.log"; fi
  $PY scripts/webhook_demo.py --url "http://127.0.0.1:$WEBHOOK_PORT/vigie" \
    --secret-file "$RUN_DIR/webhook-secret"
  if ! running "$RUN_DIR/webhook-receiver.pid"; then
    nohup $PY scripts/webhook_receiver.py --port "$WEBHOOK_PORT" \
      --secret-file "$RUN_DIR/webhook-secret" --log "$RUN_DIR/webhooks.log" \
      >"$RUN_DIR/webhook-receiver.out" 2>&1 &
    echo $! >"$RUN_DIR/webhook-receiver.pid"
  fi
}

start() {
  if running "$RUN_DIR/worker.pid"; then
    echo "vigie is already running (make stop first)"; status; return 0
  fi
  # Development tokens, made once and kept (0600) so that open pages survive a restart.
  if [ -z "${VIGIE_CONSOLE_TOKENS:-}" ]; then
    if [ ! -s var/console-dev-tokens ]; then
      (umask 077; $PY -c 'from console import generate_dev_tokens; print(generate_dev_tokens())' \
        > var/console-dev-tokens)
    fi
    VIGIE_CONSOLE_TOKENS=$(cat var/console-dev-tokens)
    # A demo partner (Évry-Courcouronnes municipal police, registered from the simulator's
    # demo partners): its token opens the console on its perimeter only.
    if [ ! -s var/console-partner-token ]; then
      (umask 077; $PY -c 'import secrets; print(secrets.token_urlsafe(24))' \
        > var/console-partner-token)
    fi
    VIGIE_CONSOLE_TOKENS="$VIGIE_CONSOLE_TOKENS,$(cat var/console-partner-token):partner:demo-pm-evry:pm-91228"
  fi
  export VIGIE_CONSOLE_TOKENS
  export VIGIE_CONSOLE_PARTNERS_SEED=${VIGIE_CONSOLE_PARTNERS_SEED:-$PWD/offline/simulator/demo_partners.json}
  pseudonym_secret
  # Each demo starts from scratch: the simulator makes a new history each time, and the
  # state of a previous demo (its stream clock ran ahead at SPEEDUP x the wall clock) would
  # stamp that history with the old clock. KEEP_DATA=1 keeps topics, tables and state.
  if [ "${KEEP_DATA:-0}" != 1 ]; then
    bash scripts/kafka.sh stop >/dev/null 2>&1 || true
    rm -rf var/kafka/data var/vigie/chdb "$VIGIE_WORKER_DATA_DIR"
    echo "previous demo data cleared (KEEP_DATA=1 keeps it)"
  fi
  bash scripts/kafka.sh start --port "${KAFKA_PORT:-19092}" >/dev/null
  webhooks
  nohup "$VIGIE" worker >"$RUN_DIR/worker.log" 2>&1 &
  echo $! >"$RUN_DIR/worker.pid"
  echo "worker starting (log: $RUN_DIR/worker.log)"
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$VIGIE_WEB_PORT/healthz" >/dev/null 2>&1 && break
    running "$RUN_DIR/worker.pid" || { echo "worker exited:"; tail -30 "$RUN_DIR/worker.log"; exit 1; }
    sleep 1
  done
  # History first (baselines need weeks), then a live stream at SPEEDUP x wall clock.
  from=$(date -d "$HISTORY_DAYS days ago" +%Y-%m-%dT%H:%M)
  nohup "$VIGIE" simulate --to kafka --realtime --speedup "$SPEEDUP" --start "$from" \
    --days $((HISTORY_DAYS + 30)) --seed "$(date +%s)" >"$RUN_DIR/simulator.log" 2>&1 &
  echo $! >"$RUN_DIR/simulator.pid"
  echo "simulator started: $HISTORY_DAYS days of history, then live at ${SPEEDUP}x"
  # /counts asks for the worker's local API token (a 0600 file in its data dir), passed to
  # curl on stdin (-K -), not on its command line where `ps` would show it.
  for _ in $(seq 1 180); do
    n=$(printf 'header = "Authorization: Bearer %s"\n' \
          "$(cat "$VIGIE_WORKER_DATA_DIR/local-api-token" 2>/dev/null)" \
        | curl -fsS -K - "http://127.0.0.1:$VIGIE_WEB_PORT/counts" 2>/dev/null \
        | $PY -c 'import json,sys; print(json.load(sys.stdin)["reports"])' 2>/dev/null || echo 0)
    [ "${n:-0}" -gt 0 ] && break
    sleep 1
  done
  if ! running "$RUN_DIR/worker.pid"; then
    echo "the worker stopped; last lines of $RUN_DIR/worker.log:"; tail -30 "$RUN_DIR/worker.log"
    exit 1
  fi
  echo "reports stored so far: ${n:-0}"
  cat <<MSG

Vigie is running (embedded ClickHouse: chDB in var/vigie/chdb).
  Console (ops room):  http://127.0.0.1:$VIGIE_CONSOLE_PORT/#token=${VIGIE_CONSOLE_TOKENS%%:*}
  Token (operator):    ${VIGIE_CONSOLE_TOKENS%%:*}
  Partner (PM Évry):   http://127.0.0.1:$VIGIE_CONSOLE_PORT/#token=$(cat var/console-partner-token 2>/dev/null)
  Metrics:             http://127.0.0.1:$VIGIE_WEB_PORT/metrics
  Health:              http://127.0.0.1:$VIGIE_WEB_PORT/healthz  /readyz
  Stored counts:       .venv/bin/vigie counts
  Feedback to reporters: .venv/bin/vigie feedback [--report ID]  (vigie.reports.feedback.v1)
  Partner webhooks:    $RUN_DIR/webhooks.log (signed POSTs to 127.0.0.1:$WEBHOOK_PORT, verified)
  Topics:              vigie.incidents.v1, vigie.alerts.v1 on $VIGIE_KAFKA_BOOTSTRAP
  Logs:                $RUN_DIR/worker.log  $RUN_DIR/simulator.log
  Stop everything:     make stop
MSG
}

stop() {
  for name in simulator worker webhook-receiver; do
    if running "$RUN_DIR/$name.pid"; then
      kill "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || true
      for _ in $(seq 1 30); do running "$RUN_DIR/$name.pid" || break; sleep 1; done
      running "$RUN_DIR/$name.pid" && kill -9 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || true
      echo "$name stopped"
    fi
    rm -f "$RUN_DIR/$name.pid"
  done
}

status() {
  for name in worker simulator webhook-receiver; do
    if running "$RUN_DIR/$name.pid"; then echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"))"
    else echo "$name: stopped"; fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
