# Shared body of the suites that run a PyPI sdist's own pytest tests (py-amqp.sh, kombu.sh):
# venv from pinned requirements, sdist download with sha256 check, pytest run with exclusions
# deselected, and the "summary:" line. Sourced after the suite sets SUITE, PKG, VERSION,
# SDIST_SHA256, TEST_PATHS, PER_TEST_TIMEOUT, SUITE_TIMEOUT, INTEROP_CACHE, REQ, VENV, SRC,
# EXCLUDED_TLS and EXCLUDED_NET (and, if the suite needs one, a prepare_tests function, run
# before pytest); it dispatches "$1" (install | test).

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
  if declare -F prepare_tests >/dev/null && ! prepare_tests; then
    log "preparing the tests failed"; echo "summary: passed=0 failed=1 skipped=0"; return 1
  fi

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
