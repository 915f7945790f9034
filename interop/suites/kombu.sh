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

# shellcheck source=lib/pytest-sdist.sh
source "$HERE/lib/pytest-sdist.sh"
