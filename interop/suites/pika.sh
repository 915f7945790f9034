#!/usr/bin/env bash
# Suite "pika": our own pika 1.3.2 scenario suite (interop/pika_suite), written against
# RabbitMQ's behaviour. Contract: see interop/run (install | test; last line "summary: ...").
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_ROOT=${INTEROP_ROOT:-$(cd "$HERE/.." && pwd)}
: "${INTEROP_CACHE:?INTEROP_CACHE must be set}"
VENV="$INTEROP_CACHE/venv"
REQ="$HERE/pika.requirements.txt"

# shellcheck source=lib/pinned-venv.sh
. "$HERE/lib/pinned-venv.sh"

# RabbitMQ 3.10 ignores x-consumer-timeout (test_ext_consumer_timeout.py): give the reference
# node the same timeout globally, checked twice a second, before any channel opens.
configure_rabbitmq() {
  [ "${BROKER_KIND:-}" = rabbitmq ] && [ -n "${RABBITMQ_DIR:-}" ] || return 0
  (
    eval "$(bash "$RABBITMQ_TOOL" env "$RABBITMQ_DIR" "$AMQP_PORT")"
    rabbitmqctl eval 'application:set_env(rabbit, consumer_timeout, 1000), application:set_env(rabbit, channel_tick_interval, 500).' >/dev/null
  ) || echo "pika suite: could not set consumer_timeout on RabbitMQ" >&2
}

run_tests() {
  local junit="$INTEROP_CACHE/junit.xml"
  rm -f "$junit"
  configure_rabbitmq
  cd "$INTEROP_ROOT" || return 1
  AMQP_URL="amqp://guest:guest@$AMQP_HOST:$AMQP_PORT/%2F" PYTHONDONTWRITEBYTECODE=1 \
    "$VENV/bin/python" -m pytest -p no:cacheprovider -q -rfE --junitxml="$junit" pika_suite "$@"
  local status=$?
  "$VENV/bin/python" - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("summary: passed=0 failed=1 skipped=0"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = s = 0
for su in suites:
    t += int(su.get("tests", 0)); s += int(su.get("skipped", 0))
    f += int(su.get("failures", 0)) + int(su.get("errors", 0))
print("summary: passed=%d failed=%d skipped=%d" % (t - f - s, f, s))
PY
  return $status
}

case ${1:-} in
  install) install_pinned_venv ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: $0 install|test [pytest args]" >&2; exit 2 ;;
esac
