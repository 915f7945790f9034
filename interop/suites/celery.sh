#!/usr/bin/env bash
# Interop app suite: a real Celery 5 application (py-amqp transport via kombu) on the broker.
#   celery.sh install   venv with the pinned packages in $INTEROP_CACHE (idempotent, stamped)
#   celery.sh test      needs AMQP_URL (and INTEROP_CACHE); starts/kill its own celery workers
# Last stdout line of `test`: "summary: passed=N failed=M skipped=K"; exit 0 iff failed=0.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${INTEROP_ROOT:-$(cd "$HERE/.." && pwd)}
APP="$ROOT/apps/celery"
CACHE=${INTEROP_CACHE:-$ROOT/.cache/celery}
VENV="$CACHE/venv"
REQ="$APP/requirements.txt"
TEST_TIMEOUT=${CELERY_SUITE_TIMEOUT:-240}

log() { echo "celery-suite: $*" >&2; }

make_venv() { rm -rf "$VENV"; python3 -m venv "$VENV" >/dev/null 2>&1 && [ -x "$VENV/bin/pip" ]; }

install() {
  mkdir -p "$CACHE" || return 1
  local stamp="$VENV/.stamp" want
  want=$( (sha256sum "$REQ"; python3 --version 2>&1) | sha256sum | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "venv up to date ($VENV)"; return 0
  fi
  command -v python3 >/dev/null || { log "python3 not found"; return 1; }
  if ! make_venv; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "python3 -m venv failed; installing python3-venv"
      apt-get update -qq >/dev/null 2>&1 || true
      local v; v=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$v-venv" >/dev/null 2>&1 || true
      make_venv || { log "python3 -m venv still fails"; return 1; }
    else
      log "python3 -m venv failed (install python3-venv)"; return 1
    fi
  fi
  log "installing $(grep -v '^#' "$REQ" | tr '\n' ' ')into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" || { log "pip install failed"; return 1; }
  echo "$want" > "$stamp"
}

RUN=""
cleanup() {
  if [ -n "$RUN" ] && [ -f "$RUN/worker.pids" ]; then
    local pid
    while read -r pid; do
      [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null
    done < "$RUN/worker.pids"
  fi
  [ -n "$RUN" ] && rm -rf "$RUN"
}

run_tests() {
  : "${AMQP_URL:?AMQP_URL must be set}"
  [ -x "$VENV/bin/python" ] || install || { echo "summary: passed=0 failed=1 skipped=0"; return 1; }
  RUN=$(mktemp -d /tmp/celery-suite.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  export CELERY_APP_STATE="$RUN/state" CELERY_APP_RESULTS="$RUN/state/results"
  export CELERY_WORKER_PIDFILE="$RUN/worker.pids" CELERY_OUTCOMES="$RUN/outcomes"
  mkdir -p "$CELERY_APP_RESULTS"; : > "$CELERY_OUTCOMES"
  log "broker ${BROKER_KIND:-?} at $AMQP_URL; celery $("$VENV/bin/python" -c 'import celery,kombu,amqp; print(celery.__version__, "kombu", kombu.__version__, "amqp", amqp.__version__)')"

  # in the background + wait, so that a TERM/INT to this script is handled at once
  (cd "$APP" && exec timeout -k 10 "$TEST_TIMEOUT" "$VENV/bin/python" -m pytest -v "$@") &
  PYTEST_PID=$!
  trap 'kill -TERM "$PYTEST_PID" 2>/dev/null; exit 143' TERM
  trap 'kill -TERM "$PYTEST_PID" 2>/dev/null; exit 130' INT
  wait "$PYTEST_PID"
  local rc=$?
  local hung=0
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    log "pytest hit the ${TEST_TIMEOUT}s suite timeout"; hung=1
  fi
  # one final outcome per test: failed beats skipped beats passed
  local counts
  counts=$(awk '{o[$1] = ($2=="failed" || o[$1]=="failed") ? "failed" : (($2=="skipped" || o[$1]=="skipped") ? "skipped" : $2)}
                END {p=f=s=0; for (k in o) { if (o[k]=="passed") p++; else if (o[k]=="failed") f++; else s++ }
                     print p, f, s}' "$CELERY_OUTCOMES")
  local passed failed skipped
  read -r passed failed skipped <<< "$counts"
  failed=$((failed + hung))
  if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi  # collection error etc.
  if [ "$failed" != 0 ]; then
    for f in "$CELERY_APP_STATE"/worker-*.log; do
      [ -f "$f" ] || continue
      echo "----- $(basename "$f") (last 40 lines) -----"; tail -n 40 "$f"
    done
  fi
  echo "summary: passed=$passed failed=$failed skipped=$skipped"
  [ "$failed" = 0 ]
}

case ${1:-} in
  install) install ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: $0 install|test [pytest args]" >&2; exit 2 ;;
esac
