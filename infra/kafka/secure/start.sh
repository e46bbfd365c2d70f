#!/usr/bin/env bash
# Start a second, secured Kafka 4.x broker (SASL_SSL with SCRAM) for tests/test_security.py.
#
# It shares the jars of the plain broker (infra/kafka/pom.xml, classpath cached in the main
# state folder) but nothing else: its own state folder, ports, TLS material and data.
#   SECURE_STATE                 folder for everything of this broker (required; a tmp dir in tests)
#   KAFKA_SCRAM_USERNAME/_PASSWORD  the client user, created at format time (SHA-512 and SHA-256)
#   KAFKA_SECURE_PORT (9095), KAFKA_SECURE_CONTROLLER_PORT (9096)
# The broker's own inter-broker user and the keystore password are random, kept in SECURE_STATE.
# Last stdout line: "status=started pid=<pid> cafile=<path to the CA clients must trust>".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_DIR="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$KAFKA_DIR/../.." && pwd)"
STATE="${SECURE_STATE:?set SECURE_STATE to a folder for the secure broker}"
PID_FILE="$STATE/kafka.pid"
LOG_FILE="$STATE/kafka.log"
DATA_DIR="$STATE/data"
CONFIG="$STATE/server.properties"
PORT="${KAFKA_SECURE_PORT:-9095}"
CONTROLLER_PORT="${KAFKA_SECURE_CONTROLLER_PORT:-9096}"
: "${KAFKA_SCRAM_USERNAME:?set KAFKA_SCRAM_USERNAME}" "${KAFKA_SCRAM_PASSWORD:?set KAFKA_SCRAM_PASSWORD}"

say() { echo "kafka-secure: $*" >&2; }
die() { echo "kafka-secure: ERROR: $*" >&2; exit 1; }

# shellcheck source=../common.sh disable=SC1091
source "$KAFKA_DIR/common.sh"

mkdir -p "$STATE"
chmod 700 "$STATE"
if pid="$(broker_pid)"; then
  echo "status=reused pid=$pid cafile=$STATE/tls/ca.pem"
  exit 0
fi
for port in "$PORT" "$CONTROLLER_PORT"; do
  port_open "$port" && die "127.0.0.1:$port is in use; set KAFKA_SECURE_PORT / KAFKA_SECURE_CONTROLLER_PORT"
done
ensure_command java openjdk-17-jre-headless
ensure_command openssl openssl

secret() { [[ -s "$STATE/$1" ]] || (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$STATE/$1"); cat "$STATE/$1"; }
broker_password="$(secret broker.password)"
KEYSTORE_PASSWORD="$(secret keystore.password)" "$HERE/tls.sh" "$STATE/tls"
keystore_password="$(cat "$STATE/keystore.password")"

# The same cached classpath as the plain broker (mvn runs only if that cache is missing).
CP="$(STATE="${AUTOGLM_STATE_DIR:-$REPO/.state}/kafka" HERE="$KAFKA_DIR"; mkdir -p "$STATE"; resolve_classpath)"

(umask 077
 sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
     -e "s|@BROKER_USER@|broker|g" -e "s|@BROKER_PASSWORD@|$broker_password|g" \
     -e "s|@KEYSTORE@|$STATE/tls/server.p12|g" -e "s|@KEYSTORE_PASSWORD@|$keystore_password|g" \
     -e "s|@CAFILE@|$STATE/tls/ca.pem|g" "$HERE/server.properties.template" >"$CONFIG"
 echo "log.dirs=$DATA_DIR" >>"$CONFIG")
LOG4J="-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.properties"

if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  scram=()
  for mech in SCRAM-SHA-512 SCRAM-SHA-256; do
    scram+=(--add-scram "$mech=[name=broker,password=\"$broker_password\"]")
    scram+=(--add-scram "$mech=[name=$KAFKA_SCRAM_USERNAME,password=\"$KAFKA_SCRAM_PASSWORD\"]")
  done
  java -Xmx256m -cp "$CP" "$LOG4J" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
    -c "$CONFIG" "${scram[@]}" >>"$LOG_FILE" 2>&1 || die "storage format failed; see $LOG_FILE"
fi

jvm=(-Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError
     -Djava.awt.headless=true "$LOG4J")
# shellcheck disable=SC2016 # $$ and $@ are for the inner shell
launcher=(bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" java "${jvm[@]}" -cp "$CP" kafka.Kafka "$CONFIG")
if command -v setsid >/dev/null; then launcher=(setsid "${launcher[@]}"); fi
nohup "${launcher[@]}" >>"$LOG_FILE" 2>&1 </dev/null &
for _ in $(seq 1 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.02; done
pid="$(cat "$PID_FILE" 2>/dev/null || true)"
[[ -n "$pid" ]] || die "broker did not start; see $LOG_FILE"
say "started secure broker pid $pid on SASL_SSL://127.0.0.1:$PORT (log: $LOG_FILE)"
echo "status=started pid=$pid cafile=$STATE/tls/ca.pem"
