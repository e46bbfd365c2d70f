#!/usr/bin/env bash
# Stop the local Kafka broker started by start.sh: SIGTERM (controlled shutdown), wait up to
# KAFKA_STOP_TIMEOUT seconds (default 30), then SIGKILL. Does nothing for an external cluster.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${AUTOGLM_STATE_DIR:-$REPO/.state}/kafka"
PID_FILE="$STATE/kafka.pid"
TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

say() { echo "kafka: $*" >&2; }  # chatter on stderr; stdout carries only the status line
die() { echo "kafka: ERROR: $*" >&2; exit 1; }

if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  say "KAFKA_BOOTSTRAP_SERVERS is set: external cluster, stopping nothing"
  echo "status=external"
  exit 0
fi

# shellcheck source=common.sh disable=SC1091
source "$HERE/common.sh"

if ! pid="$(broker_pid)"; then
  rm -f "$PID_FILE"
  say "not running"
  echo "status=stopped"
  exit 0
fi

kill -TERM "$pid"
for _ in $(seq 1 $((TIMEOUT * 10))); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  say "pid $pid still alive after ${TIMEOUT}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$PID_FILE"
say "stopped broker pid $pid"
echo "status=stopped pid=$pid"
