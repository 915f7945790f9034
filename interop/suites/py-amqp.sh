#!/usr/bin/env bash
# Interop suite "py-amqp": the t/integration tests of py-amqp 5.4.2, taken from its
# PyPI sdist and run unmodified against a broker.
#
#   py-amqp.sh install   # venv (pinned: py-amqp.requirements.txt) + sdist into $INTEROP_CACHE
#   py-amqp.sh test [PYTEST_ARGS...]
#                        # env: AMQP_HOST AMQP_PORT (or AMQP_URL), BROKER_KIND, INTEROP_CACHE;
#                        # last stdout line: "summary: passed=N failed=M skipped=K"
#
# The suite reads RABBITMQ_HOST / RABBITMQ_5672_TCP; they are mapped from AMQP_HOST/AMQP_PORT.
# Its tests carry @pytest.mark.flaky(reruns=5, reruns_delay=2) (pytest-rerunfailures): kept,
# as upstream runs them; set INTEROP_NO_RERUNS=1 to see first-attempt results only.
# Excluded tests (interop/EXCLUDED.md, "## py-amqp") are deselected and counted as skipped;
# INTEROP_NO_EXCLUDE=1 runs the loopback-only ones too (never the two that dial the internet).
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
# TLS: the sdist ships no t/certs/ and warren has no TLS listener.
EXCLUDED_TLS=(
  "t/integration/test_rmq.py::test_connect[tls]"
  "t/integration/test_rmq.py::test_tls_connect_fails"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_consume[tls-basic_publish-False-True]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_consume[tls-basic_publish-True-True]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_consume[tls-basic_publish-False-False]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_consume[tls-basic_publish-True-False]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_consume[tls-basic_publish_confirm-False-True]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_consume[tls-basic_publish_confirm-True-True]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_consume[tls-basic_publish_confirm-False-False]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_consume[tls-basic_publish_confirm-True-False]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_get[tls]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_get__short_int_header[tls]"
  "t/integration/test_rmq.py::test_rabbitmq_operations::test_publish_get__short_short_int_header[tls]"
)
# Internet: TLS handshakes with tls-v1-2.badssl.com:1012. Never run here (loopback only).
EXCLUDED_NET=(
  "t/integration/test_rmq.py::test_tls_default_certs"
  "t/integration/test_rmq.py::test_tls_no_default_certs_fails"
)

# shellcheck source=lib/pytest-sdist.sh
source "$HERE/lib/pytest-sdist.sh"
