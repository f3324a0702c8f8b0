#!/usr/bin/env bash
# A Kafka-compatible broker for the kafka tests, examples and benchmark: tansu (a broker
# in Rust, built with `cargo install`) with its in-memory storage engine, on 127.0.0.1:9092.
#   scripts/kafka.sh start   installs tansu once (about 17 minutes on 2 cores; cached under
#                            $ELT_TOOLS_DIR, default /var/tmp/elt-tools), then starts it
#                            unless a broker already answers on the port
#   scripts/kafka.sh stop    stops the broker this script started
#   scripts/kafka.sh status  says whether a broker answers
# In-memory storage: a restart of the broker forgets every topic (the tests create their
# own). ELT_KAFKA_PORT moves the port.
set -euo pipefail

version="0.6.0"
tools="${ELT_TOOLS_DIR:-/var/tmp/elt-tools}"
root="$tools/tansu-$version"
bin="$root/bin/tansu"
port="${ELT_KAFKA_PORT:-9092}"
pidfile="$tools/tansu.pid"
log="$tools/tansu.log"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

install() {
  [[ -x $bin ]] && return 0
  command -v cargo >/dev/null || { echo "kafka.sh: cargo is needed to install tansu" >&2; exit 1; }
  echo "kafka.sh: installing tansu $version into $root (once; about 17 minutes on 2 cores)"
  mkdir -p "$tools"
  # --locked: without it the dependency versions drift and the build fails; dynostore is the
  # feature that brings the in-memory storage engine.
  CARGO_TARGET_DIR="$tools/tansu-target" cargo install tansu --version "$version" --locked \
    --features dynostore --root "$root" --quiet
  rm -rf "$tools/tansu-target"
}

case "${1:-}" in
  start)
    if answers; then exit 0; fi
    install
    echo "kafka.sh: starting tansu on 127.0.0.1:$port (log: $log)"
    setsid "$bin" broker --storage-engine memory://tansu/ \
      --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
      >"$log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    for _ in $(seq 1 60); do
      answers && exit 0
      sleep 1
    done
    echo "kafka.sh: tansu did not come up on port $port; see $log" >&2
    exit 1
    ;;
  stop)
    if [[ -f $pidfile ]]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    ;;
  status)
    if answers; then echo "a broker answers on 127.0.0.1:$port"; else echo "no broker on 127.0.0.1:$port"; exit 1; fi
    ;;
  *)
    echo "usage: scripts/kafka.sh start|stop|status" >&2
    exit 2
    ;;
esac
