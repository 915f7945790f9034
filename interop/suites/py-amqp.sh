#!/usr/bin/env bash
# Interop suite "py-amqp": the t/integration tests of py-amqp 5.4.2, taken from its
# PyPI sdist and run unmodified against a broker.
#
#   py-amqp.sh install   # venv (pinned: py-amqp.requirements.txt) + sdist into $INTEROP_CACHE
#   py-amqp.sh test [PYTEST_ARGS...]
#                        # env: AMQP_HOST AMQP_PORT (or AMQP_URL), BROKER_KIND, INTEROP_CACHE,
#                        # AMQPS_PORT TLS_CERTS_DIR (the broker's TLS listener, see interop/run);
#                        # last stdout line: "summary: passed=N failed=M skipped=K"
#
# The suite reads RABBITMQ_HOST / RABBITMQ_5672_TCP; they are mapped from AMQP_HOST/AMQP_PORT.
# Its TLS tests read RABBITMQ_5671_TCP (mapped from AMQPS_PORT) and t/certs/ (which the sdist
# does not ship): the certificates interop/run made for the broker (TLS_CERTS_DIR) go there.
# Its tests carry @pytest.mark.flaky(reruns=5, reruns_delay=2) (pytest-rerunfailures): kept,
# as upstream runs them; set INTEROP_NO_RERUNS=1 to see first-attempt results only.
# Excluded tests (interop/EXCLUDED.md, "## py-amqp": the two that dial the internet) are
# deselected and counted as skipped.
set -uo pipefail

SUITE=py-amqp
PKG=amqp VERSION=5.4.2
SDIST_SHA256=9362660c4a31150cf18e78cae2ce8aa1e929fc6c6739e69f6dd5dbea9c3edc82
TEST_PATHS=(t/integration)
PER_TEST_TIMEOUT=${INTEROP_TEST_TIMEOUT:-60}   # seconds, per test attempt (pytest-timeout)
SUITE_TIMEOUT=${INTEROP_SUITE_TIMEOUT:-420}    # seconds, whole pytest run

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_ROOT=${INTEROP_ROOT:-$(cd "$HERE/.." && pwd)}
INTEROP_CACHE=${INTEROP_CACHE:-$INTEROP_ROOT/.cache/$SUITE}
REQ="$HERE/$SUITE.requirements.txt"
VENV="$INTEROP_CACHE/venv"
SRC="$INTEROP_CACHE/src/$PKG-$VERSION"

# Keep in sync with interop/EXCLUDED.md "## py-amqp".
# TLS: none excluded since warren has a TLS listener (see prepare_tests below).
EXCLUDED_TLS=()
# Internet: TLS handshakes with tls-v1-2.badssl.com:1012. Never run here (loopback only).
EXCLUDED_NET=(
  "t/integration/test_rmq.py::test_tls_default_certs"
  "t/integration/test_rmq.py::test_tls_no_default_certs_fails"
)

# Called by lib/pytest-sdist.sh before pytest: t/certs/ as py-amqp's tests expect it, from the
# running broker's throwaway certificates. test_tls_connect_fails wants
# client_{certificate,key}_broken.pem, PEM files whose base64 is damaged ("Broken" at its start,
# as upstream ships them), so that loading them fails with ssl.SSLError.
prepare_tests() {
  if [ -z "${AMQPS_PORT:-}" ] || [ -z "${TLS_CERTS_DIR:-}" ]; then
    log "AMQPS_PORT / TLS_CERTS_DIR not set (interop/run sets them): the TLS tests will fail"
    return 0
  fi
  export RABBITMQ_5671_TCP=$AMQPS_PORT
  local certs="$SRC/t/certs" f
  rm -rf "$certs" && mkdir -p "$certs" || return 1
  cp "$TLS_CERTS_DIR"/{ca_certificate,client_certificate,client_key}.pem "$certs/" || return 1
  for f in client_certificate client_key; do
    sed '2s/^....../Broken/' "$certs/$f.pem" > "$certs/${f}_broken.pem" || return 1
  done
}

# shellcheck source=lib/pytest-sdist.sh
source "$HERE/lib/pytest-sdist.sh"
