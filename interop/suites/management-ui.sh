#!/usr/bin/env bash
# Interop suite: warren's web UI in a real browser. Headless Chromium (Debian's chromium and
# chromium-driver), driven by Selenium (interop/apps/management-ui/test_ui.py): log in, declare,
# publish, get, purge and delete a queue through the page, watch the live update, visit every
# page without JavaScript errors; screenshots in target/test-artifacts/management-ui/.
#   management-ui.sh install   chromium and chromedriver via apt-get if missing; a venv with
#                              the pinned selenium in $INTEROP_CACHE
#   management-ui.sh test      needs MANAGEMENT_PORT; last stdout line "summary: passed=N ..."
# Against RabbitMQ it skips: RabbitMQ's own UI is a different page, which this test does not drive.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${INTEROP_ROOT:-$(cd "$HERE/.." && pwd)}
: "${INTEROP_CACHE:?INTEROP_CACHE must be set}"
VENV="$INTEROP_CACHE/venv"
REQ="$HERE/management-ui.requirements.txt"

log() { echo "management-ui-suite: $*" >&2; }

install_browser() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "chromium or chromedriver missing; installing Debian's chromium and chromium-driver"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
      { log "apt-get install chromium chromium-driver failed"; return 1; }
  else
    log "chromium and chromedriver are required (Debian: apt-get install chromium chromium-driver)"; return 1
  fi
}

# shellcheck source=lib/pinned-venv.sh
. "$HERE/lib/pinned-venv.sh"

case ${1:-} in
  install) install_browser && install_pinned_venv ;;
  test)
    : "${MANAGEMENT_PORT:?MANAGEMENT_PORT must be set}"
    if [ "${BROKER_KIND:-warren}" != warren ]; then
      echo "management-ui: skipped against ${BROKER_KIND}: this suite drives warren's web UI;" \
           "RabbitMQ's management UI is a different page"
      echo "summary: passed=0 failed=0 skipped=1"
      exit 0
    fi
    log "broker ${BROKER_KIND:-warren}, management UI on http://127.0.0.1:$MANAGEMENT_PORT/"
    # Selenium Manager must not try to download a driver: the test names Debian's.
    SE_OFFLINE=true PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" "$ROOT/apps/management-ui/test_ui.py" ;;
  *) echo "usage: $0 install|test" >&2; exit 2 ;;
esac
