#!/usr/bin/env bash
# Interop suite: the Go client github.com/rabbitmq/amqp091-go, its own test
# suite built with `-tags integration`, run unmodified against a broker.
#
#   amqp091-go.sh install   # Debian packages + copy of the sources into $INTEROP_CACHE
#   amqp091-go.sh test      # run against $AMQP_URL; last stdout line is the summary
#
# Sources come only from Debian packages (golang-github-rabbitmq-amqp091-go-dev
# 1.5.0, golang-uber-goleak-dev); they are copied into the cache and built in
# GOPATH mode (GO111MODULE=off), so nothing is fetched from the network.
# Exclusions (see interop/EXCLUDED.md, section "amqp091-go") are applied by
# running only the kept tests with a -run regex (go 1.19 has no -skip).
set -euo pipefail

AMQP091_VERSION=1.5.0
SRC_PKG_DIR=/usr/share/gocode/src/github.com/rabbitmq/amqp091-go
IMPORT_PATH=github.com/rabbitmq/amqp091-go
DEB_PKGS=(golang-go golang-github-rabbitmq-amqp091-go-dev golang-uber-goleak-dev)
SUITE_TIMEOUT=${AMQP091_GO_TIMEOUT:-420}   # seconds, whole suite (go test -timeout is a bit less)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_ROOT=${INTEROP_ROOT:-$(dirname "$here")}
INTEROP_CACHE=${INTEROP_CACHE:-$INTEROP_ROOT/.cache/amqp091-go}

# Tests excluded (keep in sync with interop/EXCLUDED.md "## amqp091-go").
# Format: name<TAB>reason (reason is printed).
EXCLUDED=(
)

log() { echo "amqp091-go: $*" >&2; }

go_env() {
    export GO111MODULE=off
    export GOPATH="$INTEROP_CACHE/gopath:/usr/share/gocode"
    export GOCACHE="$INTEROP_CACHE/gocache"
    export GOFLAGS=
    export GOPROXY=off
    export GOTOOLCHAIN=local
    export CGO_ENABLED=0
}

stamp_value() {
    echo "amqp091-go=$AMQP091_VERSION $(dpkg-query -W -f='${Version}' golang-github-rabbitmq-amqp091-go-dev 2>/dev/null) $(go version 2>/dev/null) script=$(sha1sum "${BASH_SOURCE[0]}" | cut -c1-12)"
}

cmd_install() {
    mkdir -p "$INTEROP_CACHE"
    local stamp="$INTEROP_CACHE/.installed"
    if [[ -f $stamp ]] && [[ $(cat "$stamp") == "$(stamp_value)" ]] \
        && [[ -d $INTEROP_CACHE/gopath/src/$IMPORT_PATH ]]; then
        log "already installed ($(cat "$stamp"))"
        return 0
    fi
    local missing=()
    for p in "${DEB_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; then
            apt-get update
            DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
        fi
    fi
    local have
    have=$(dpkg-query -W -f='${Version}' golang-github-rabbitmq-amqp091-go-dev)
    if [[ $have != "$AMQP091_VERSION"-* ]]; then
        log "error: golang-github-rabbitmq-amqp091-go-dev is $have, this suite is pinned to $AMQP091_VERSION"
        exit 1
    fi
    [[ -f $SRC_PKG_DIR/integration_test.go ]] || { log "error: $SRC_PKG_DIR has no integration_test.go"; exit 1; }

    local dst="$INTEROP_CACHE/gopath/src/$IMPORT_PATH"
    rm -rf "$INTEROP_CACHE/gopath"
    mkdir -p "$(dirname "$dst")"
    cp -r "$SRC_PKG_DIR" "$dst"
    chmod -R u+w "$dst"
    go_env
    mkdir -p "$GOCACHE"
    # Compile the test binary once (offline) so `test` is fast and build errors show here.
    (cd "$dst" && go test -tags integration -count=1 -run '^$' . >/dev/null)
    stamp_value >"$stamp"
    log "installed amqp091-go $have into $INTEROP_CACHE"
}

# All top-level Test*/Example* (with an Output comment) names, minus exclusions.
kept_run_regex() {
    local dst=$1 names excluded_names=() e
    for e in "${EXCLUDED[@]}"; do excluded_names+=("${e%%$'\t'*}"); done
    names=$(cd "$dst" && go test -tags integration -list '.*' . | grep -E '^(Test|Example)' || true)
    local kept=() n skip
    for n in $names; do
        skip=0
        for e in "${excluded_names[@]}"; do [[ $n == "$e" ]] && skip=1; done
        ((skip)) || kept+=("$n")
    done
    local IFS='|'
    echo "^(${kept[*]})\$"
}

cmd_test() {
    : "${AMQP_URL:?AMQP_URL must be set}"
    cmd_install >&2
    go_env
    local dst="$INTEROP_CACHE/gopath/src/$IMPORT_PATH"
    local out="$INTEROP_CACHE/go-test.log"   # (interop/run owns last-run.log)
    local regex
    regex=$(kept_run_regex "$dst")

    local e
    for e in "${EXCLUDED[@]}"; do
        echo "=== EXCLUDED ${e%%$'\t'*}: ${e#*$'\t'}"
    done

    echo "amqp091-go: go test -tags integration against ${BROKER_KIND:-?} at $AMQP_URL"
    local rc=0
    set +e
    (cd "$dst" && AMQP_URL="$AMQP_URL" timeout -k 10 "$SUITE_TIMEOUT" \
        go test -tags integration -count=1 -v -timeout "$((SUITE_TIMEOUT - 20))s" \
        -run "$regex" . "$@" 2>&1) | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e

    # Count top-level results. A test that started (=== RUN) but never reported
    # (panic, go test -timeout, killed) counts as failed. A non-zero exit with no
    # failed test (e.g. goleak in TestMain, build failure) counts as one failure.
    local counts
    counts=$(awk -v nexcl="${#EXCLUDED[@]}" -v rc="$rc" '
        /^=== RUN   / { n=$3; if (n !~ /\//) { started[n]=1 } }
        /^--- PASS: / { done[$3]=1; pass++ }
        /^--- FAIL: / { done[$3]=1; fail++ }
        /^--- SKIP: / { done[$3]=1; skip++ }
        /^goleak: Errors on successful test run/ { goleak=1 }
        END {
            for (n in started) if (!(n in done)) { fail++; printf("amqp091-go: %s started but never finished: counted as failed\n", n) > "/dev/stderr" }
            if (rc != 0 && fail == 0) { fail=1; print "amqp091-go: go test exited " rc " with no failed test (" (goleak ? "TestMain: goleak found leaked goroutines after all tests passed" : "build error, panic or timeout") "): counted as one failure" > "/dev/stderr" }
            printf("%d %d %d\n", pass, fail, skip + nexcl)
        }' "$out")
    local passed failed skipped
    read -r passed failed skipped <<<"$counts"
    echo "summary: passed=$passed failed=$failed skipped=$skipped"
    [[ $failed -eq 0 ]]
}

case "${1:-}" in
    install) cmd_install ;;
    test) shift; cmd_test "$@" ;;  # extra args go to `go test` (e.g. -run REGEX)
    *) echo "usage: $0 install|test" >&2; exit 2 ;;
esac
