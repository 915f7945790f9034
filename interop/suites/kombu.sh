#!/usr/bin/env bash
# Interop suite "kombu": kombu 5.7.0's t/integration/test_py_amqp.py (kombu over py-amqp),
# taken from its PyPI sdist and run unmodified against a broker.
#
#   kombu.sh install   # venv (pinned: kombu.requirements.txt) + sdist into $INTEROP_CACHE
#   kombu.sh test [PYTEST_ARGS...]
#                      # env: AMQP_HOST AMQP_PORT (or AMQP_URL), BROKER_KIND, INTEROP_CACHE;
#                      # last stdout line: "summary: passed=N failed=M skipped=K"
#
# The suite reads RABBITMQ_HOST / RABBITMQ_5672_TCP; they are mapped from AMQP_HOST/AMQP_PORT.
# It also dials localhost:12345 and a freshly bound, unlistened 127.0.0.1 port on purpose (failover,
# retry tests): loopback only. Its tests carry @pytest.mark.flaky(reruns=5, reruns_delay=2)
# (pytest-rerunfailures): kept, as upstream runs them; INTEROP_NO_RERUNS=1 shows first attempts only.
# Excluded tests (interop/EXCLUDED.md, "## kombu") are deselected and counted as skipped.
set -uo pipefail

SUITE=kombu
PKG=kombu VERSION=5.7.0
SDIST_SHA256=31e62fdfd2381caa3422f8e02b84a491d9a2180ddda74507b57f4cb1e1c2c2c9
TEST_PATHS=(t/integration/test_py_amqp.py)
PER_TEST_TIMEOUT=${INTEROP_TEST_TIMEOUT:-60}   # seconds, per test attempt (pytest-timeout)
SUITE_TIMEOUT=${INTEROP_SUITE_TIMEOUT:-420}    # seconds, whole pytest run

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_ROOT=${INTEROP_ROOT:-$(cd "$HERE/.." && pwd)}
INTEROP_CACHE=${INTEROP_CACHE:-$INTEROP_ROOT/.cache/$SUITE}
REQ="$HERE/$SUITE.requirements.txt"
VENV="$INTEROP_CACHE/venv"
SRC="$INTEROP_CACHE/src/$PKG-$VERSION"

# Keep in sync with interop/EXCLUDED.md "## kombu". None so far.
EXCLUDED_TLS=()
EXCLUDED_NET=()

log() { echo "$SUITE: $*" >&2; }

stamp_value() {
  echo "$PKG-$VERSION $SDIST_SHA256 req=$(sha256sum "$REQ" | cut -c1-16)"
}

make_venv() {
  rm -rf "$VENV"
  python3 -m venv "$VENV" >/dev/null 2>&1 && [ -x "$VENV/bin/pip" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "python3 -m venv failed; apt-get install python3-venv"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null || return 1
    rm -rf "$VENV"
    python3 -m venv "$VENV" && [ -x "$VENV/bin/pip" ] && return 0
  fi
  return 1
}

cmd_install() {
  mkdir -p "$INTEROP_CACHE"
  local stamp="$INTEROP_CACHE/.installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(stamp_value)" ] \
     && [ -x "$VENV/bin/python" ] && [ -d "$SRC/t/integration" ]; then
    log "already installed ($(cat "$stamp"))"
    return 0
  fi
  rm -f "$stamp"
  command -v python3 >/dev/null || { log "python3 not found"; return 1; }
  make_venv || { log "cannot create a venv"; return 1; }
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" || { log "pip install failed"; return 1; }
  local dl="$INTEROP_CACHE/dl" tarball
  rm -rf "$dl"; mkdir -p "$dl"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-binary :all: --no-deps \
    -d "$dl" "$PKG==$VERSION" || { log "sdist download failed"; return 1; }
  tarball="$dl/$PKG-$VERSION.tar.gz"
  echo "$SDIST_SHA256  $tarball" | sha256sum -c --quiet - || { log "sdist sha256 mismatch"; return 1; }
  rm -rf "$INTEROP_CACHE/src"; mkdir -p "$INTEROP_CACHE/src"
  tar -xzf "$tarball" -C "$INTEROP_CACHE/src" || return 1
  [ -d "$SRC/t/integration" ] || { log "no t/integration in the sdist"; return 1; }
  stamp_value > "$stamp"
  log "installed $(stamp_value)"
}

cmd_test() {
  [ -x "$VENV/bin/python" ] && [ -d "$SRC" ] || { log "not installed: run '$0 install' first"; echo "summary: passed=0 failed=1 skipped=0"; return 1; }
  local host=${AMQP_HOST:-} port=${AMQP_PORT:-}
  if [ -z "$host" ] || [ -z "$port" ]; then
    [ -n "${AMQP_URL:-}" ] || { log "AMQP_HOST/AMQP_PORT or AMQP_URL must be set"; echo "summary: passed=0 failed=1 skipped=0"; return 1; }
    read -r host port < <("$VENV/bin/python" -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 5672)' "$AMQP_URL")
  fi
  export RABBITMQ_HOST=$host RABBITMQ_5672_TCP=$port
  export PYTHONDONTWRITEBYTECODE=1

  local args=() id nexcl=0
  if [ "${INTEROP_NO_EXCLUDE:-0}" = 1 ]; then
    for id in "${EXCLUDED_NET[@]}"; do args+=(--deselect "$id"); done
  else
    for id in "${EXCLUDED_TLS[@]}" "${EXCLUDED_NET[@]}"; do args+=(--deselect "$id"); done
  fi
  [ "${INTEROP_NO_RERUNS:-0}" = 1 ] && args+=(-p no:rerunfailures)

  local out="$INTEROP_CACHE/pytest-${BROKER_KIND:-broker}.log"
  log "running ${TEST_PATHS[*]} against ${BROKER_KIND:-?} at $host:$port"
  cd "$SRC" || return 1
  timeout -k 15 "$SUITE_TIMEOUT" "$VENV/bin/python" -m pytest -p no:cacheprovider -v -rfE \
    --color=no -o addopts= --timeout="$PER_TEST_TIMEOUT" \
    "${args[@]}" "${TEST_PATHS[@]}" "$@" 2>&1 | tee "$out"
  local status=${PIPESTATUS[0]}
  [ "$status" = 124 ] || [ "$status" = 137 ] && log "pytest killed after ${SUITE_TIMEOUT}s"
  summarize "$out" "$status"
}

# Counts from pytest's closing line ("== 2 failed, 40 passed, 15 deselected, 3 rerun in 9s ==");
# deselected (= excluded) counts as skipped, errors as failed. Without that line (killed),
# counts the per-test verbose lines and adds one failure for the run that did not finish.
summarize() {
  "$VENV/bin/python" - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
status = int(sys.argv[2])
c = dict.fromkeys(("passed", "failed", "error", "errors", "skipped", "deselected",
                   "xfailed", "xpassed", "rerun"), 0)
m = None
for line in text.splitlines():
    if re.match(r"^=+ .*\bin [0-9.]+s", line):
        m = line
if m:
    for n, k in re.findall(r"(\d+) (\w+)", m):
        if k in c:
            c[k] += int(n)
    passed = c["passed"] + c["xpassed"]
    failed = c["failed"] + c["error"] + c["errors"]
    skipped = c["skipped"] + c["deselected"] + c["xfailed"]
    if failed == 0 and status not in (0, 5):
        failed = 1
else:
    res = re.findall(r"^\S+::\S+ (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", text, re.M)
    passed = res.count("PASSED") + res.count("XPASS")
    failed = res.count("FAILED") + res.count("ERROR") + 1
    skipped = res.count("SKIPPED") + res.count("XFAIL")
if c["rerun"]:
    print("reruns: %d (tests that failed an attempt and were retried by pytest-rerunfailures)" % c["rerun"])
print("summary: passed=%d failed=%d skipped=%d" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
PY
}

case ${1:-} in
  install) cmd_install ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: $0 install|test [pytest args]" >&2; exit 2 ;;
esac
