#!/usr/bin/env bash
# Start the local single-node Apache Kafka broker (KRaft, broker+controller) in the background.
#
# Idempotent: a live broker from the pid file is reused. With KAFKA_BOOTSTRAP_SERVERS set it
# starts nothing (the user has a cluster). Jars come from Maven Central through pom.xml; the
# resolved classpath is cached in the state folder keyed by a hash of pom.xml, so only the
# first run (or a pom change) calls mvn. Readiness is NOT checked here: that is a real metadata
# request in runtime/services/kafka.py (wait_for_kafka).
#
# Last stdout line is machine-readable: "status=<external|reused|started> [pid=<pid>]".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${AUTOGLM_STATE_DIR:-$REPO/.state}/kafka"
PID_FILE="$STATE/kafka.pid"
LOG_FILE="$STATE/kafka.log"
DATA_DIR="$STATE/data"
CONFIG="$STATE/server.properties"

say() { echo "kafka: $*" >&2; }  # chatter on stderr; stdout carries only the status line
die() { echo "kafka: ERROR: $*" >&2; exit 1; }

if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  say "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set: using that cluster, starting nothing"
  echo "status=external"
  exit 0
fi

# shellcheck source=common.sh disable=SC1091
source "$HERE/common.sh"

mkdir -p "$STATE"
# Two `autoglm up` at once must not launch two brokers on the same data dir.
exec 9>"$STATE/start.lock"
flock -w 180 9 || die "another start.sh holds $STATE/start.lock for 3 minutes; is it stuck?"

if pid="$(broker_pid)"; then
  say "reusing running broker pid $pid (log: $LOG_FILE)"
  echo "status=reused pid=$pid"
  exit 0
fi
rm -f "$PID_FILE"

for port in 9092 9093; do
  if port_open "$port"; then
    die "127.0.0.1:$port is in use by a process this script did not start. Stop it, or set KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 to use it."
  fi
done

ensure_command java openjdk-17-jre-headless
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
[[ "${java_major:-0}" -ge 17 ]] || die "Kafka 4 needs Java 17+, found '${java_major:-none}'. Install openjdk-17-jre-headless."

CP="$(resolve_classpath)"

{ cat "$HERE/server.properties"; echo "log.dirs=$DATA_DIR"; } >"$CONFIG"
LOG4J="-Dlog4j2.configurationFile=$HERE/log4j2.properties"

# Keep the log bounded across many restarts.
if [[ -f "$LOG_FILE" && $(wc -c <"$LOG_FILE") -gt 52428800 ]]; then mv -f "$LOG_FILE" "$LOG_FILE.1"; fi

if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
  # A cluster id is 16 random bytes in URL-safe base64 without padding (what `random-uuid`
  # prints), and, like Kafka's own, never one that starts with '-': the storage tool would
  # read it as an option (about 1 fresh start in 64 failed: "--cluster-id: expected one argument").
  cluster_id="$(tr -d '[:space:]' <"$STATE/cluster.id" 2>/dev/null || true)"
  while [[ -z "$cluster_id" || "$cluster_id" == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  echo "$cluster_id" >"$STATE/cluster.id"
  say "formatting $DATA_DIR (cluster id $cluster_id)"
  java -cp "$CP" "$LOG4J" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$CONFIG" \
    >>"$LOG_FILE" 2>&1 || die "storage format failed; see $LOG_FILE"
fi

read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx1G}"
jvm=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
     -Djava.awt.headless=true "$LOG4J")
# Own session (setsid) so a Ctrl-C or a killed process group of the caller leaves the broker up;
# the inner shell writes its own pid and execs java, so the pid file names the JVM itself.
# shellcheck disable=SC2016 # $$ and $@ are for the inner shell
launcher=(bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" java "${jvm[@]}" -cp "$CP" kafka.Kafka "$CONFIG")
if command -v setsid >/dev/null; then launcher=(setsid "${launcher[@]}"); fi
echo "===== start $(date -u +%FT%TZ) =====" >>"$LOG_FILE"
nohup "${launcher[@]}" >>"$LOG_FILE" 2>&1 </dev/null 9>&- &  # 9>&-: the broker must not hold start.lock

for _ in $(seq 1 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.02; done
pid="$(cat "$PID_FILE" 2>/dev/null || true)"
[[ -n "$pid" ]] || die "broker did not start; see $LOG_FILE"
say "started broker pid $pid on 127.0.0.1:9092 (log: $LOG_FILE)"
echo "status=started pid=$pid"
