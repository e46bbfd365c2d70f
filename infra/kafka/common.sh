# shellcheck shell=bash
# Helpers shared by start.sh and stop.sh (sourced; expects STATE, PID_FILE, HERE, say, die).

# Print the pid of our live broker, or fail. Checks the command line so a recycled pid is not
# mistaken for the broker.
broker_pid() {
  local pid cmd
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(ps -o args= -p "$pid" 2>/dev/null || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *kafka.Kafka* ]] || return 1
  echo "$pid"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ensure_command <cmd> <apt package>: install with apt-get when missing and we are root.
ensure_command() {
  command -v "$1" >/dev/null && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "$1 not found; installing $2 with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
  fi
  command -v "$1" >/dev/null || die "$1 not found; install it (e.g. sudo apt-get install -y $2)"
}

sha256() { if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -c1-16; }

# Print the broker classpath, calling mvn only when the cache for this pom.xml is missing or
# names a jar that is gone (e.g. ~/.m2 was cleaned).
resolve_classpath() {
  local cp_file jar ok=1
  cp_file="$STATE/classpath-$(sha256 "$HERE/pom.xml").txt"
  if [[ -s "$cp_file" ]]; then
    IFS=: read -r -a jars <"$cp_file"
    for jar in "${jars[@]}"; do [[ -f "$jar" ]] || { ok=0; break; }; done
  else
    ok=0
  fi
  if [[ $ok -eq 0 ]]; then
    ensure_command mvn maven
    say "resolving the Kafka classpath with mvn (first run only; jars cache in ~/.m2)"
    mvn -q -B -f "$HERE/pom.xml" dependency:build-classpath -Dmdep.outputFile="$cp_file.tmp" \
      >"$STATE/mvn.log" 2>&1 || die "mvn could not resolve infra/kafka/pom.xml; see $STATE/mvn.log"
    rm -f "$STATE"/classpath-*.txt
    mv "$cp_file.tmp" "$cp_file"
  fi
  cat "$cp_file"
}
