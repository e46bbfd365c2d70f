#!/usr/bin/env bash
# Stop the secure test broker of infra/kafka/secure/start.sh (SIGTERM, SIGKILL after 20 s).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${SECURE_STATE:?set SECURE_STATE to the folder given to start.sh}"
PID_FILE="$STATE/kafka.pid"
say() { echo "kafka-secure: $*" >&2; }
die() { echo "kafka-secure: ERROR: $*" >&2; exit 1; }
# shellcheck source=../common.sh disable=SC1091
source "$HERE/../common.sh"
if ! pid="$(broker_pid)"; then
  rm -f "$PID_FILE"
  echo "status=stopped"
  exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$pid" 2>/dev/null || true
rm -f "$PID_FILE"
echo "status=stopped pid=$pid"
