#!/usr/bin/env bash
# Interop suite: Debian's rabbitmqadmin (from the rabbitmq-server package), unmodified, against
# the broker's management API (interop/apps/rabbitmqadmin/suite.py): list, show, declare,
# delete, purge, publish, get, export, import, and definitions files exported by RabbitMQ 3.10
# and by warren imported into the broker under test.
#   rabbitmqadmin.sh install   rabbitmqadmin from Debian's rabbitmq-server if missing
#   rabbitmqadmin.sh test      needs MANAGEMENT_PORT; last stdout line "summary: passed=N ..."
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${INTEROP_ROOT:-$(cd "$HERE/.." && pwd)}

log() { echo "rabbitmqadmin-suite: $*" >&2; }

install() {
  command -v rabbitmqadmin >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "rabbitmqadmin missing; installing Debian's rabbitmq-server (it ships rabbitmqadmin)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null 2>&1 ||
      { log "apt-get install rabbitmq-server failed"; return 1; }
    # Installed for its CLI only: the packaged service must not hold port 5672/15672.
    systemctl disable --now rabbitmq-server >/dev/null 2>&1 || service rabbitmq-server stop >/dev/null 2>&1 || true
  else
    log "rabbitmqadmin is required (Debian: apt-get install rabbitmq-server)"; return 1
  fi
}

case ${1:-} in
  install) install ;;
  test)
    : "${MANAGEMENT_PORT:?MANAGEMENT_PORT must be set}"
    log "broker ${BROKER_KIND:-?}, management API on 127.0.0.1:$MANAGEMENT_PORT"
    python3 "$ROOT/apps/rabbitmqadmin/suite.py" ;;
  *) echo "usage: $0 install|test" >&2; exit 2 ;;
esac
