#!/usr/bin/env bash
# Interop app suite: a small node service on amqplib (pinned in interop/apps/amqplib/package.json
# and package-lock.json): confirms, manual acks + prefetch, nack/requeue/dead-letter, mandatory
# returns, direct reply-to RPC, topic routing, channel errors, consumer cancel notification.
#   amqplib.sh install   node_modules in $INTEROP_CACHE via `npm ci` (idempotent, stamped)
#   amqplib.sh test      needs AMQP_URL; last stdout line "summary: passed=N failed=M skipped=K"
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${INTEROP_ROOT:-$(cd "$HERE/.." && pwd)}
APP="$ROOT/apps/amqplib"
CACHE=${INTEROP_CACHE:-$ROOT/.cache/amqplib}
TEST_TIMEOUT=${AMQPLIB_SUITE_TIMEOUT:-240}

log() { echo "amqplib-suite: $*" >&2; }

install() {
  mkdir -p "$CACHE" || return 1
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "node/npm missing; installing Debian's nodejs and npm"
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 ||
        { log "apt-get install nodejs npm failed"; return 1; }
    else
      log "node and npm are required"; return 1
    fi
  fi
  local stamp="$CACHE/.stamp" want
  want=$(cat "$APP/package.json" "$APP/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$CACHE/node_modules/amqplib" ]; then
    log "node_modules up to date ($CACHE)"; return 0
  fi
  cp "$APP/package.json" "$APP/package-lock.json" "$CACHE/" || return 1
  log "npm ci (amqplib $(sed -n 's/.*"amqplib": "\(.*\)".*/\1/p' "$APP/package.json" | head -1)) in $CACHE"
  (cd "$CACHE" && npm ci --no-audit --no-fund --loglevel=error) || { log "npm ci failed"; return 1; }
  echo "$want" > "$stamp"
}

run_tests() {
  : "${AMQP_URL:?AMQP_URL must be set}"
  [ -d "$CACHE/node_modules/amqplib" ] || install || { echo "summary: passed=0 failed=1 skipped=0"; return 1; }
  out=$(mktemp /tmp/amqplib-suite.XXXXXX)
  trap 'rm -f "$out"' EXIT
  log "broker ${BROKER_KIND:-?} at $AMQP_URL"
  # single node process, no children; timeout kills it if a scenario wedges the harness itself
  NODE_PATH="$CACHE/node_modules" timeout -k 5 "$TEST_TIMEOUT" node "$APP/app.js" "$@" | tee "$out"
  local rc=${PIPESTATUS[0]}
  if grep -q '^summary: ' "$out"; then
    return "$rc"   # app.js printed the summary as its last line
  fi
  local passed failed
  passed=$(grep -c '^PASS ' "$out"); failed=$(grep -c '^FAIL ' "$out")
  log "node exited with $rc before its summary (timeout after ${TEST_TIMEOUT}s?)"
  echo "summary: passed=$passed failed=$((failed + 1)) skipped=0"
  return 1
}

case ${1:-} in
  install) install ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: $0 install|test [scenario...]" >&2; exit 2 ;;
esac
