#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it all.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` for a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
# the Java interop suite (tests/interop) and bench/compare.py: a JDK, and Maven to fetch Kafka
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# ZooKeeper for tests/cluster (run from its jars with our own zoo.cfg; needs a JRE)
[ -f /usr/share/java/zookeeper.jar ] || need_apt+=(zookeeper)
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)
# Strom Connect's connectors are tested against the real systems: PostgreSQL (sink, CDC
# source with logical decoding) and Mosquitto (MQTT source/sink); tests start their own
# server processes from these binaries, no system service is used
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
if [ ${#need_apt[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"

echo "== Apache Kafka jars for the interop suite (Maven Central, cached outside the repo)"
python3 tools/kafka_dist.py fetch

echo "== lint: ruff, mypy, import-linter"
python3 -m ruff check src tests bench tools
python3 -m mypy
lint-imports

echo "== tests"
# Two workers (pytest-xdist), a whole file each at a time: a file's module brokers are
# started once, and its tests never race each other. Most of the suite waits (sessions
# expiring, JVMs starting, brokers restarting), so two workers take half the time of one.
workers="${STROM_TEST_WORKERS:-2}"
if [ "$workers" -gt 1 ]; then
    exec python3 -m pytest -p no:cacheprovider -n "$workers" --dist loadfile "$@"
fi
exec python3 -m pytest -p no:cacheprovider "$@"
