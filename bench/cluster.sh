# bench/cluster.sh: scenario C1 of bench/compare (issue #17), sourced by bench/compare (it uses
# its free_port, wait_no_beam, sampler, rss_kb, log, order, j, row and fmt_* helpers, its R
# array and $OUT, $RABBIT_LOCAL, $RABBIT_NODE, $RABBIT_WAIT and $BROKERS).
#
# C1: a three-node cluster of each broker on this one machine, quorum queues, publisher
# confirms. For each queue count in BENCH_C1_QUEUES (default "1 10"), and each broker in
# BENCH_BROKERS (the order alternating as in the other scenarios), a fresh cluster:
#
#   RabbitMQ  three nodes through rabbitmq-local (rabbit1@localhost, rabbit2@..., rabbit3@...;
#             with BENCH_RABBIT_NODE=name@host: name1@host, ...), each with its own dir and
#             port (distribution on port + 20000), one Erlang cookie shared through their
#             HOME/.erlang.cookie; nodes 2 and 3 join node 1 (stop_app, join_cluster,
#             start_app) and the script checks that cluster_status lists all three running.
#             No plugins (management with BENCH_RABBIT_MGMT=1).
#   warren    three nodes as README.md's "Cluster (in progress)" shows: node N listens on
#             127.0.0.N (AMQP, management and Raft peer port the same on each address), with
#             --cluster-node N --cluster-peers 1=127.0.0.1:R,2=127.0.0.2:R,3=127.0.0.3:R, its
#             own data dir, --no-prometheus; the script waits until `warren ctl cluster_status`
#             on node 1 names a leader and links to all members.
#
# Then the same load on both: the queues c1-1 .. c1-Q (quorum, durable) are declared first,
# c1-i through node ((i-1) mod 3) + 1 (so RabbitMQ's leaders, placed on the declaring node,
# are spread over the nodes); then one warren-perf process per node, all three at once, each
# with BENCH_C1_PRODUCERS producers and BENCH_C1_CONSUMERS consumers on that node (each raised
# to the queue count when smaller, so every queue has publishers and consumers on every node;
# 0 consumers stays 0), 1 KB persistent messages, BENCH_C1_CONFIRM confirms in flight per
# producer, prefetch 1000, ack multiple every 100, for BENCH_C1_SECONDS. warren-perf takes a
# single --uri, hence one process per node: the rates are the sums of the three processes', the
# confirm latency percentiles the worst of the three. Broker CPU is user + system time of the
# three broker processes (RabbitMQ: beam.smp) over the run, from /proc/PID/stat; peak RSS is
# the sum of the three nodes' peaks.
#
# Both brokers' quorum queues replicate (warren: one Raft group per queue, CLUSTER.md), so the
# targets are judged. C1_WARREN_NOTE, when set, is printed next to warren's figures instead and
# the targets are not judged (it was set while warren's queues did not replicate).
#
# Everything listens on loopback only; both clusters are stopped at the end of each run (and
# on exit: the script's EXIT trap covers them while one runs), each stop bounded in time.
#
# Knobs: BENCH_C1_SECONDS (default 10), BENCH_C1_QUEUES (default "1 10"), BENCH_C1_PRODUCERS
# (per node, default 2), BENCH_C1_CONSUMERS (per node, default 1), BENCH_C1_CONFIRM (default 100).
# With CARGO_TARGET_DIR set, C1 runs the binaries bench/compare's cargo build put there.

C1_SECS=${BENCH_C1_SECONDS:-10}
C1_QUEUES=${BENCH_C1_QUEUES:-"1 10"}
C1_PRODUCERS=${BENCH_C1_PRODUCERS:-2}
C1_CONSUMERS=${BENCH_C1_CONSUMERS:-1}
C1_CONFIRM=${BENCH_C1_CONFIRM:-100}
C1_SIZE=1024
C1_NODES=3
# Printed next to warren's C1 figures if they are not comparable (empty: compare and judge).
C1_WARREN_NOTE=""

# bench/compare's cargo build honours CARGO_TARGET_DIR (relative to the checkout); use what it built.
C1_BIN=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $C1_BIN == /* ]] || C1_BIN=$ROOT/$C1_BIN
C1_BIN=$C1_BIN/release
C1_WARREN=$C1_BIN/warren
C1_PERF=$C1_BIN/warren-perf

C1_KIND=""        # warren | rabbitmq while a cluster runs
C1_DIR=""         # its temp dir (one subdir per node)
C1_PIDS=()        # broker process of node 1..3 (index 0..2): warren, or RabbitMQ's beam.smp
C1_HOSTS=()       # AMQP address of each node
C1_PORTS=()       # AMQP port of each node
C1_NAMES=()       # RabbitMQ: Erlang node names
C1_MGMT=""        # warren: management port (the same on each node's address)
C1_SAMPLERS=()
C1_LOADERS=()     # the warren-perf runs (their timeout wrappers) while they go

c1_uri() { echo "amqp://guest:guest@${C1_HOSTS[$1]}:${C1_PORTS[$1]}/%2f"; } # node index 0..2

# rabbitmqctl (or another CLI) against RabbitMQ node index $1, in a subshell.
c1_rabbit_ctl() {
  local i=$1; shift
  (export RABBITMQ_LOCAL_NODE=${C1_NAMES[$i]}
   eval "$("$RABBIT_LOCAL" env "$C1_DIR/n$((i + 1))" "${C1_PORTS[$i]}")"
   timeout 120 "$@")
}

c1_start_rabbitmq() { # tag
  local tag=$1 base=${RABBIT_NODE:-rabbit@localhost} i n p cookie running
  C1_KIND=rabbitmq
  C1_NAMES=()
  for (( i = 1; i <= C1_NODES; i++ )); do C1_NAMES+=("${base%@*}$i@${base#*@}"); done
  # Wait for the Erlang nodes in the way: any beam.smp by default, else those of our names.
  if [[ -z $RABBIT_NODE ]]; then
    wait_no_beam
  else
    for n in "${C1_NAMES[@]}"; do RABBIT_NODE=$n wait_no_beam; done
  fi
  C1_DIR=$(mktemp -d /tmp/rabbitmq-c1.XXXXXX)
  cookie=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
  C1_PORTS=(); C1_HOSTS=()
  while (( ${#C1_PORTS[@]} < C1_NODES )); do
    p=$(free_port)
    [[ " ${C1_PORTS[*]} " == *" $p "* ]] || { C1_PORTS+=("$p"); C1_HOSTS+=(127.0.0.1); }
  done
  local no_plugins=(env RABBITMQ_ENABLED_PLUGINS=)
  [[ ${BENCH_RABBIT_MGMT:-0} != 1 ]] || no_plugins=(env)
  local starters=()
  for (( i = 0; i < C1_NODES; i++ )); do
    mkdir -p "$C1_DIR/n$((i + 1))/home"
    printf '%s' "$cookie" > "$C1_DIR/n$((i + 1))/home/.erlang.cookie"
    chmod 400 "$C1_DIR/n$((i + 1))/home/.erlang.cookie"
    RABBITMQ_LOCAL_NODE=${C1_NAMES[$i]} timeout 180 "${no_plugins[@]}" "$RABBIT_LOCAL" start \
      "$C1_DIR/n$((i + 1))" "${C1_PORTS[$i]}" > "$OUT/rabbitmq.$tag.n$((i + 1)).log" 2>&1 &
    starters+=($!)
  done
  local ok=1
  for p in "${starters[@]}"; do wait "$p" || ok=0; done
  c1_find_pids
  (( ok )) || { echo "bench/compare: a RabbitMQ node of C1 did not start (see $OUT/rabbitmq.$tag.n*.log and $C1_DIR/n*/log)" >&2; exit 1; }
  for (( i = 1; i < C1_NODES; i++ )); do
    { c1_rabbit_ctl "$i" rabbitmqctl stop_app \
        && c1_rabbit_ctl "$i" rabbitmqctl join_cluster "${C1_NAMES[0]}" \
        && c1_rabbit_ctl "$i" rabbitmqctl start_app; } >> "$OUT/rabbitmq.$tag.n$((i + 1)).log" 2>&1 \
      || { echo "bench/compare: ${C1_NAMES[$i]} could not join ${C1_NAMES[0]} (see $OUT/rabbitmq.$tag.n$((i + 1)).log)" >&2; exit 1; }
  done
  running=$(c1_rabbit_ctl 0 rabbitmqctl cluster_status --formatter json 2>/dev/null | jq -r '.running_nodes | length' || true)
  [[ $running == "$C1_NODES" ]] \
    || { echo "bench/compare: the RabbitMQ cluster of C1 has ${running:-no} running nodes, not $C1_NODES" >&2; exit 1; }
  c1_find_pids
  log "C1: RabbitMQ cluster of ${C1_NAMES[*]} up (AMQP ports ${C1_PORTS[*]})"
}

# RabbitMQ's beam.smp of each node (its pid file, else the process that names its dir).
c1_find_pids() {
  local i d pid
  C1_PIDS=()
  for (( i = 0; i < C1_NODES; i++ )); do
    d=$C1_DIR/n$((i + 1))
    pid=$(cat "$d/rabbit.pid" 2>/dev/null || true)
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
      pid=$(pgrep -f "beam.smp.*$d/" | head -1 || true)
    fi
    C1_PIDS+=("${pid:-}")
  done
}

# A port P in 10000-12767 free on 127.0.0.1-3 (AMQP), with P+10000 (management) and P+20000
# (Raft peers) free too: below the ephemeral range, as free_port's.
c1_free_ports() {
  python3 - <<'PY'
import random, socket
def free(ip, p):
    s = socket.socket()
    try:
        s.bind((ip, p)); return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(1000):
    p = random.randint(10000, 12767)
    if all(free("127.0.0.%d" % n, p + d) for n in (1, 2, 3) for d in (0, 10000, 20000)):
        print(p); break
else:
    raise SystemExit("bench/compare: no free port triple on 127.0.0.1-3 found")
PY
}

c1_wait_port() { # host port seconds
  local i
  for (( i = 0; i < $3 * 10; i++ )); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

c1_start_warren() { # tag
  local tag=$1 p i peers=""
  C1_KIND=warren
  C1_DIR=$(mktemp -d /tmp/warren-c1.XXXXXX)
  p=$(c1_free_ports)
  C1_MGMT=$(( p + 10000 ))
  C1_PORTS=(); C1_HOSTS=(); C1_PIDS=()
  for (( i = 1; i <= C1_NODES; i++ )); do peers+="${peers:+,}$i=127.0.0.$i:$(( p + 20000 ))"; done
  for (( i = 1; i <= C1_NODES; i++ )); do
    C1_HOSTS+=("127.0.0.$i"); C1_PORTS+=("$p")
    "$C1_WARREN" --cluster-node "$i" --cluster-peers "$peers" --data-dir "$C1_DIR/n$i" \
      --listen "127.0.0.$i:$p" --management-listen "127.0.0.$i:$C1_MGMT" --no-prometheus \
      > "$OUT/warren.$tag.n$i.log" 2>&1 &
    C1_PIDS+=($!)
  done
  for (( i = 0; i < C1_NODES; i++ )); do
    c1_wait_port "${C1_HOSTS[$i]}" "$p" 30 \
      || { echo "bench/compare: warren node $((i + 1)) of C1 did not start (see $OUT/warren.$tag.n$((i + 1)).log)" >&2; exit 1; }
  done
  # A leader for the metadata group, and links to every member, as node 1 sees it.
  local status waited=0
  while :; do
    status=$(timeout 10 "$C1_WARREN" ctl --url "http://127.0.0.1:$C1_MGMT" --formatter json cluster_status 2>/dev/null || true)
    if jq -e '(.groups[0].leader != null) and ([.members[].linked] | all)' <<< "$status" >/dev/null 2>&1; then
      break
    fi
    if (( waited >= 600 )); then # tenths of a second: 60 s
      echo "bench/compare: warren's C1 cluster has no leader after 60 s (cluster_status: ${status:-no answer})" >&2; exit 1
    fi
    sleep 0.1; waited=$(( waited + 1 ))
  done
  "$C1_WARREN" ctl --url "http://127.0.0.1:$C1_MGMT" cluster_status >> "$OUT/warren.$tag.n1.log" 2>&1 || true
  log "C1: warren cluster up on 127.0.0.1-3:$p, leader node $(jq -r '.groups[0].leader' <<< "$status")"
}

c1_start() { # broker tag
  log "starting a $C1_NODES-node $1 cluster for $2"
  # Whatever happens from here on, the cluster is stopped on exit.
  trap 'c1_stop; stop_broker' EXIT
  if [[ $1 == warren ]]; then c1_start_warren "$2"; else c1_start_rabbitmq "$2"; fi
}

# Stops the cluster, bounded: RabbitMQ's nodes through rabbitmq-local stop (60 s each, all at
# once), warren's with TERM; whatever is left after 30 s more gets KILL.
c1_stop() {
  local i pid alive stoppers=()
  # warren-perf runs still going (the script was interrupted): timeout passes the TERM on.
  for pid in "${C1_LOADERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${C1_LOADERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  C1_LOADERS=()
  c1_stop_samplers
  [[ -n $C1_KIND ]] || return 0
  if [[ $C1_KIND == rabbitmq ]]; then
    for (( i = 0; i < C1_NODES; i++ )); do
      [[ -d $C1_DIR/n$((i + 1)) ]] || continue
      RABBITMQ_LOCAL_NODE=${C1_NAMES[$i]} timeout -k 5 60 "$RABBIT_LOCAL" stop "$C1_DIR/n$((i + 1))" >/dev/null 2>&1 &
      stoppers+=($!)
    done
    for pid in "${stoppers[@]}"; do wait "$pid" 2>/dev/null || true; done
  else
    for pid in "${C1_PIDS[@]}"; do [[ -z $pid ]] || kill "$pid" 2>/dev/null || true; done
  fi
  for (( i = 0; i < 300; i++ )); do
    alive=0
    for pid in "${C1_PIDS[@]}"; do [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.1
  done
  for pid in "${C1_PIDS[@]}"; do [[ -z $pid ]] || kill -9 "$pid" 2>/dev/null || true; done
  if [[ $C1_KIND == warren ]]; then
    for pid in "${C1_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
  # epmd was started by the nodes' scripts; it stays (shared and tiny), as bench/compare leaves it.
  rm -rf "$C1_DIR"
  C1_KIND=""; C1_DIR=""; C1_PIDS=()
  trap 'stop_broker' EXIT
}

c1_start_samplers() { # tag
  local i
  C1_SAMPLERS=()
  for (( i = 0; i < C1_NODES; i++ )); do
    sampler "${C1_PIDS[$i]}" "$OUT/$1.n$((i + 1)).rss" &
    C1_SAMPLERS+=($!)
  done
}

c1_stop_samplers() {
  local pid
  for pid in "${C1_SAMPLERS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  C1_SAMPLERS=()
}

# CPU time (user + system, clock ticks) of the cluster's broker processes so far.
c1_cpu_ticks() {
  local pid sum=0 t
  for pid in "${C1_PIDS[@]}"; do
    t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    sum=$(( sum + ${t:-0} ))
  done
  echo "$sum"
}

# Declares c1-1 .. c1-Q, c1-i through node ((i-1) mod 3) + 1.
c1_declare() { # tag queues
  local tag=$1 q=$2 i k
  for (( i = 1; i <= q; i++ )); do
    k=$(( (i - 1) % C1_NODES ))
    timeout -k 5 60 "$C1_PERF" --uri "$(c1_uri "$k")" --json --quiet --producers 0 --consumers 0 \
      --queue "c1-$i" --durable --queue-type quorum --time 1 >> "$OUT/$tag.declare.json" \
      2>> "$OUT/$tag.declare.err" \
      || { echo "bench/compare: C1 could not declare c1-$i on node $((k + 1)) (see $OUT/$tag.declare.err)" >&2; exit 1; }
  done
  if [[ $C1_KIND == rabbitmq ]]; then
    c1_rabbit_ctl 0 rabbitmqctl list_queues name type leader members --formatter json \
      > "$OUT/$tag.queues.json" 2>/dev/null || true
    log "C1: quorum queue leaders: $(jq -r '[.[] | "\(.name)@\(.leader | sub("@.*"; ""))"] | join(" ")' "$OUT/$tag.queues.json" 2>/dev/null || echo '?')"
  fi
}

c1_run() { # broker queues
  local b=$1 q=$2 tag=C1-q$2 id="C1-$2" i prods cons t0 note=""
  prods=$(( C1_PRODUCERS > q ? C1_PRODUCERS : q ))
  cons=$C1_CONSUMERS
  (( cons == 0 || cons >= q )) || cons=$q
  c1_start "$b" "$tag"
  c1_declare "$tag.$b" "$q"
  [[ $b != warren || -z $C1_WARREN_NOTE ]] || note=" (warren: $C1_WARREN_NOTE)"
  log "C1 on $b ($q queue(s)): one warren-perf per node, each $prods producers + $cons consumers," \
    "1 KB persistent, confirm $C1_CONFIRM, ${C1_SECS}s$note"
  c1_start_samplers "$tag.$b"
  t0=$(c1_cpu_ticks)
  for (( i = 0; i < C1_NODES; i++ )); do
    timeout -k 10 $(( C1_SECS + 60 )) "$C1_PERF" --uri "$(c1_uri "$i")" --json --quiet --predeclared \
      --queue-pattern 'c1-%d' --queues "$q" --producers "$prods" --consumers "$cons" \
      --size "$C1_SIZE" --persistent --confirm "$C1_CONFIRM" --prefetch 1000 --multi-ack-every 100 \
      --time "$C1_SECS" > "$OUT/$tag.$b.n$((i + 1)).json" 2> "$OUT/$tag.$b.n$((i + 1)).err" &
    C1_LOADERS+=($!)
  done
  for (( i = 0; i < C1_NODES; i++ )); do
    wait "${C1_LOADERS[$i]}" || log "warren-perf reported errors for $tag on $b node $((i + 1)) (see $OUT/$tag.$b.n$((i + 1)).json / .err)"
    [[ -s $OUT/$tag.$b.n$((i + 1)).json ]] || echo '{}' > "$OUT/$tag.$b.n$((i + 1)).json"
  done
  C1_LOADERS=()
  local ticks=$(( $(c1_cpu_ticks) - t0 ))
  c1_stop_samplers
  # The three processes' summaries in one: rates and counts summed, latencies the worst.
  jq -s --argjson ticks "$ticks" --argjson hz "$(getconf CLK_TCK)" '{
      publish_rate: (map(.publish_rate // 0) | add), confirm_rate: (map(.confirm_rate // 0) | add),
      consume_rate: (map(.consume_rate // 0) | add), confirmed: (map(.confirmed // 0) | add),
      published: (map(.published // 0) | add), consumed: (map(.consumed // 0) | add),
      nacked: (map(.nacked // 0) | add), duration_secs: (map(.duration_secs // 0) | max),
      confirm_latency: { p50_ms: (map(.confirm_latency.p50_ms // empty) | max),
                         p99_ms: (map(.confirm_latency.p99_ms // empty) | max),
                         max_ms: (map(.confirm_latency.max_ms // empty) | max) },
      cpu_secs: ($ticks / $hz), errors: (map(.errors // ["no summary"]) | add),
      per_node: map({ confirm_rate, confirm_p99_ms: .confirm_latency.p99_ms, errors: (.errors | length) }) }' \
    "$OUT/$tag.$b".n[1-3].json > "$OUT/$tag.$b.json"
  R[$id.pub.$b]=$(j .publish_rate "$tag.$b")
  R[$id.conf.$b]=$(j .confirm_rate "$tag.$b")
  R[$id.cons.$b]=$(j .consume_rate "$tag.$b")
  R[$id.cp50.$b]=$(j .confirm_latency.p50_ms "$tag.$b")
  R[$id.cp99.$b]=$(j .confirm_latency.p99_ms "$tag.$b")
  R[$id.err.$b]=$(j '.errors | length' "$tag.$b")
  R[$id.cpu.$b]=$(jq -r 'if .confirmed > 0 then .cpu_secs * 1e6 / .confirmed | . * 10 | round / 10 else empty end' "$OUT/$tag.$b.json")
  R[$id.cores.$b]=$(jq -r 'if .duration_secs > 0 then .cpu_secs / .duration_secs | . * 100 | round / 100 else empty end' "$OUT/$tag.$b.json")
  R[$id.rss.$b]=$(cat "$OUT/$tag.$b".n[1-3].rss 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
  R[$id.procs.$b]="$prods producers + $cons consumers"
  log "C1 on $b ($q queue(s)): confirmed ${R[$id.conf.$b]:-?} msg/s, confirm p99 ${R[$id.cp99.$b]:-?} ms" \
    "(worst node), broker CPU ${R[$id.cores.$b]:-?} cores, errors ${R[$id.err.$b]:-?}$note"
  c1_stop
}

run_C1() {
  [[ -x $C1_PERF && -x $C1_WARREN ]] || { echo "bench/compare: $C1_PERF or $C1_WARREN missing" >&2; exit 1; }
  local q b idx=10
  for q in $C1_QUEUES; do
    for b in $(order "$idx"); do c1_run "$b" "$q"; done
    idx=$(( idx + 1 ))
  done
}

c1_table() {
  local W=warren Q=rabbitmq q id wn target_r target_l
  for q in $C1_QUEUES; do
    id=C1-$q
    # The note goes next to each of warren's figures, when it has some.
    wn=""
    [[ -z $C1_WARREN_NOTE || -z ${R[$id.procs.$W]:-} ]] || wn=" ($C1_WARREN_NOTE)"
    if [[ -n $C1_WARREN_NOTE ]]; then
      target_r="≥ 3× w/R: not judged, warren's $C1_WARREN_NOTE"
      target_l="≤ ½ of RabbitMQ's: not judged"
    else
      target_r="≥ 3× w/R: $(ge "${R[$id.conf.$W]:-}" "${R[$id.conf.$Q]:-}" 3)"
      target_l="≤ ½ of RabbitMQ's: $(ge "${R[$id.cp99.$Q]:-}" "${R[$id.cp99.$W]:-}" 2)"
    fi
    row "C1 3-node cluster, $q quorum queue(s), 1 KB persistent, per node ${R[$id.procs.$Q]:-${R[$id.procs.$W]:-?}}, confirm $C1_CONFIRM in flight each" \
      "confirmed (sum of the 3 nodes)" "$(fmt_rate "${R[$id.conf.$W]:-}")$wn" "$(fmt_rate "${R[$id.conf.$Q]:-}")" \
      "$(ratio "${R[$id.conf.$W]:-}" "${R[$id.conf.$Q]:-}") w/R" "$target_r"
    row "" "confirm latency p99 (worst node)" "$(fmt_ms "${R[$id.cp99.$W]:-}")$wn" "$(fmt_ms "${R[$id.cp99.$Q]:-}")" \
      "$(ratio "${R[$id.cp99.$Q]:-}" "${R[$id.cp99.$W]:-}") R/w" "$target_l"
    row "" "confirm latency p50 (worst node)" "$(fmt_ms "${R[$id.cp50.$W]:-}")$wn" "$(fmt_ms "${R[$id.cp50.$Q]:-}")" "" ""
    row "" "consumed (sum)" "$(fmt_rate "${R[$id.cons.$W]:-}")$wn" "$(fmt_rate "${R[$id.cons.$Q]:-}")" "" ""
    row "" "broker CPU: cores busy / µs per confirmed message (3 nodes)" \
      "${R[$id.cores.$W]:-–} / $(fmt_us "${R[$id.cpu.$W]:-}")$wn" "${R[$id.cores.$Q]:-–} / $(fmt_us "${R[$id.cpu.$Q]:-}")" \
      "$(ratio "${R[$id.cpu.$Q]:-}" "${R[$id.cpu.$W]:-}") R/w" ""
    row "" "peak RSS (sum of the 3 nodes)" "$(fmt_mb "${R[$id.rss.$W]:-}")$wn" "$(fmt_mb "${R[$id.rss.$Q]:-}")" \
      "$(ratio "${R[$id.rss.$Q]:-}" "${R[$id.rss.$W]:-}") R/w" ""
  done
}

c1_notes() {
  echo "C1: BENCH_C1_SECONDS=$C1_SECS, BENCH_C1_QUEUES=\"$C1_QUEUES\", BENCH_C1_PRODUCERS=$C1_PRODUCERS and" \
    "BENCH_C1_CONSUMERS=$C1_CONSUMERS per node (raised to the queue count), BENCH_C1_CONFIRM=$C1_CONFIRM;" \
    "3 nodes of each broker on this one machine; one warren-perf per node, all at once (rates summed," \
    "latencies the worst node's); queue c1-i declared through node ((i-1) mod 3)+1"
  [[ -z $C1_WARREN_NOTE || " $BROKERS " != *" warren "* ]] \
    || echo "C1: warren: $C1_WARREN_NOTE: its queues are per-node instances, only their definitions replicate; not comparable with RabbitMQ's replicated quorum queues"
}
