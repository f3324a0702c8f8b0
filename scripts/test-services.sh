#!/usr/bin/env bash
# Installs the programs the tests start themselves, when they are missing: Debian's
# openssh-server (the SSH tunnel tests run their own sshd on a loopback port), prometheus
# (the metrics tests scrape with a server of their own) and chromium (the `elt ui` tests
# render its pages headless), and the
# Kafka-compatible broker of the kafka tests (scripts/kafka.sh start: tansu, built once and
# cached under /var/tmp/elt-tools, then started on 127.0.0.1:9092). Then gives
# the local PostgreSQL what the change data capture tests need (`wal_level = logical`,
# room for their replication slots), restarting it once when a setting changes. PostgreSQL
# and MariaDB are the machine's own services; .ci/run starts them. Needs root for apt-get;
# without it, it says what to install and goes on: the other tests run, and the ones that
# need those programs fail loudly with the same advice.
set -euo pipefail

here=$(dirname "$0")
"$here/postgres-logical.sh"
"$here/kafka.sh" start

# Debian packages the tests start themselves: sshd (the SSH tunnel tests), Prometheus and
# promtool (the metrics tests), Chromium (the `elt ui` tests).
missing=()
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
[[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]] || missing+=(prometheus)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "test-services: ${missing[*]} missing, so the tests that need them will fail; install them (sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "test-services: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
