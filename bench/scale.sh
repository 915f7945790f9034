# bench/scale.sh: the scale scenarios S1-S6 of bench/compare (issue #16), sourced by it (it uses
# its brokers, sampler, rss_kb, cpu_ticks, j, first_error, log and order helpers and its R array;
# the table, notes and plots are in bench/scale_report.sh).
#
# Each scenario sweeps one dimension. Every point runs BENCH_SCALE_REPS times (default 3) on each
# broker, warren and RabbitMQ alternating run by run (w R, R w, w R, ...), each run on a fresh
# broker; the table shows the median of the repetitions. Broker CPU is user + system time of
# the broker process from /proc/PID/stat (RabbitMQ: beam.smp). Every run's figures go to
# $OUT/scale.csv (scenario,point,broker,rep,metric,value), which the table and the plots
# (bench/plot_scale.py) are made from, so nothing is lost.
#
#   S1 queues       N durable queues declared (warren-perf --declare-queues N --durable, 8
#                   channels), then left idle BENCH_S1_IDLE s. Declare rate; RSS per queue =
#                   (RSS at the end of the idle time - RSS 3 s after start) / declared; idle CPU
#                   (% of a core) over the idle time; broker CPU per declare.
#   S2 bindings     N bindings of one queue to one topic exchange, patterns with * and #
#                   (--topic-bindings N); a first run only binds, then 1 producer -> 1 auto-ack
#                   consumer, 16 B transient, BENCH_SCALE_SECONDS, each routing key matching
#                   exactly one binding. Routed (consumed) msg/s, broker CPU per publish (the
#                   publishing run only), bind rate.
#   S3 consumers    a backlog filled first (1 producer, confirms, at most BENCH_S3_BACKLOG
#                   messages of 16 B, BENCH_SCALE_SECONDS), then N consumers, each its own
#                   connection, prefetch 10, one ack per message, drain it for
#                   BENCH_SCALE_SECONDS. Delivered msg/s = consumed / the longest consumer's
#                   time from consume-ok to its last message; fairness = max/min of the
#                   consumers' counts (the consumers connect in the first part of the run, so
#                   this includes their start spread: see BENCHMARKS.md); broker CPU per delivery.
#   S4 connections  N idle connections, 2 channels each (--idle-connections N --idle-channels 2),
#                   held BENCH_S4_HOLD s. RSS per connection = (peak while held - RSS after
#                   settling) / N; accept rate = opened / open time. A point that needs more
#                   descriptors than the hard limit - 500 in the broker (measured per connection
#                   at the points before: warren holds 2, RabbitMQ 1) or in warren-perf, or
#                   more connections than RabbitMQ's own socket limit (90% of its descriptors),
#                   is skipped on that broker (n/a), and the largest thousand that fits each
#                   broker runs too, so the curve has its end. BENCH_S4_CAP (300 s) caps a run.
#   S5 size         1 producer -> 1 consumer, one queue, transient (non-durable queue) and
#                   persistent (durable queue), confirms and prefetch of W = 64 MiB / size
#                   messages (1 to 1,000), ack multiple every W/2, BENCH_SCALE_SECONDS. MB/s
#                   through (consumed x size / run time, MB = 2^20 bytes), peak RSS, broker CPU
#                   per message; copies per message from $OUT/S5-copies.json when present.
#   S6 depth        D persistent 100 B messages into one durable classic queue (4 producers, 1,000
#                   confirms in flight each, no consumer), then drained by 1 consumer (prefetch
#                   1,000, ack multiple every 500). Fill and drain msg/s, peak RSS in each, broker
#                   CPU per message. BENCH_S6_REPS repetitions (default 1: a 10M point is long).
#
# BENCH_SCALE_SMOKE=1: the smallest point of each, 1 repetition, 2 s runs, 1 s settling, 2 s
# idle or held (S6 at 100,000 messages, S3's backlog at most 1,000,000); what CI runs. A knob
# set explicitly wins over the smoke's value.

if [[ ${BENCH_SCALE_SMOKE:-0} == 1 ]]; then
  SCALE_SMOKE=1
  _reps=1 _secs=2 _settle=1 _s1=1000 _s1idle=2 _s2=10 _s3=1 _s3b=1000000 _s4=1000 _s4hold=2 _s5=1024 _s6=100000
else
  SCALE_SMOKE=0
  _reps=3 _secs=10 _settle=3 _s1="1000 10000 100000" _s1idle=10 _s2="10 1000 10000 100000" _s3="1 10 100 1000"
  _s3b=2000000 _s4="1000 10000 50000" _s4hold=5 _s5="1024 65536 1048576 16777216" _s6="1000000 10000000"
fi
SCALE_REPS=${BENCH_SCALE_REPS:-$_reps}
SCALE_SECS=${BENCH_SCALE_SECONDS:-$_secs}
# Seconds a fresh broker settles before S1's and S4's baseline RSS (3 s as P4; 1 s in the smoke).
SCALE_SETTLE=${BENCH_SCALE_SETTLE:-$_settle}
S1_QUEUES=${BENCH_S1_QUEUES:-$_s1}
S1_IDLE=${BENCH_S1_IDLE:-$_s1idle}
S2_BINDINGS=${BENCH_S2_BINDINGS:-$_s2}
S3_CONSUMERS=${BENCH_S3_CONSUMERS:-$_s3}
S3_BACKLOG=${BENCH_S3_BACKLOG:-$_s3b}
S4_CONNECTIONS=${BENCH_S4_CONNECTIONS:-$_s4}
S4_HOLD=${BENCH_S4_HOLD:-$_s4hold}
S5_SIZES=${BENCH_S5_SIZES:-$_s5}
S5_MODES=${BENCH_S5_MODES:-"transient persistent"}
S6_DEPTHS=${BENCH_S6_DEPTHS:-$_s6}
S6_REPS=${BENCH_S6_REPS:-1}
# Upper bound in seconds for one warren-perf run (declaring 100k queues, one S6 phase).
SCALE_CAP=${BENCH_SCALE_CAP:-3600}
SCALE_CSV=$OUT/scale.csv
# Runs so far: the broker order alternates with each.
SCALE_IDX=0
# File descriptors a point may need in the broker or the client: the hard limit less this.
S4_FD_MARGIN=500
# The hard limit, what fits under it, and the points run because the largest asked did not fit.
S4_HARD=""
S4_LIMIT=0
S4_EXTRA=""
# Cap in seconds of one S4 run: a broker out of descriptors leaves connections hanging.
S4_CAP=${BENCH_S4_CAP:-300}

# scale_rec scenario point broker rep metric value: one raw figure (nothing when empty).
scale_rec() {
  [[ -n ${6:-} ]] || return 0
  [[ -s $SCALE_CSV ]] || echo "scenario,point,broker,rep,metric,value" > "$SCALE_CSV"
  printf '%s,%s,%s,%s,%s,%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >> "$SCALE_CSV"
}

# med scenario point broker metric: the median over the repetitions, empty if none.
med() {
  [[ -s $SCALE_CSV ]] || return 0
  awk -F, -v s="$1" -v p="$2" -v b="$3" -v m="$4" '$1 == s && $2 == p && $3 == b && $5 == m { print $6 }' \
    "$SCALE_CSV" | sort -g | awk '{ v[NR] = $1 }
      END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.10g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# calc EXPR var=value...: awk arithmetic, printed with up to 10 significant digits; empty when
# a variable is empty or the expression divides by zero.
calc() {
  local expr=$1 a args=() v; shift
  for a in "$@"; do
    v=${a#*=}
    [[ -n $v ]] || return 0
    args+=(-v "$a")
  done
  awk "${args[@]}" "BEGIN { r = $expr; if (r == \"inf\") exit; printf \"%.10g\n\", r }" 2>/dev/null || true
}

# sperf name args...: warren-perf against the current broker, summary in $OUT/name.json, killed
# if it outlives SCALE_CAP by a minute (no --time is added: throughput runs pass their own).
sperf() {
  local name=$1; shift
  timeout -k 10 $(( ${SPERF_CAP:-$SCALE_CAP} + 60 )) "$PERF" --uri "$(uri)" --json --quiet "$@" \
    > "$OUT/$name.json" 2> "$OUT/$name.err" || log "warren-perf reported errors for $name (see $OUT/$name.json / .err)"
  [[ -s $OUT/$name.json ]] || echo '{}' > "$OUT/$name.json"
}

# scale_check scenario point broker rep name: counts a run whose client reported errors (the
# table's footer lists them) and keeps the first error for the notes.
scale_check() {
  local n e
  n=$(j '.errors | length' "$5")
  if [[ ${n:-0} != 0 ]] || grep -q '^warren-perf' "$OUT/$5.err" 2>/dev/null || [[ $(j 'keys | length' "$5") == 0 ]]; then
    R[$1.$2.err.$3]=$(( ${R[$1.$2.err.$3]:-0} + 1 ))
    e=$(first_error "$5" "$SCALE_CAP")
    R[$1.$2.why.$3]+="${R[$1.$2.why.$3]:+; }rep $4 ($5): $e"
    log "$1 $2 on $3, rep $4: $e"
  fi
}

# The numbers in a list, one a line, in increasing order.
sorted_nums() { tr ' ' '\n' <<< "$1" | awk 'NF' | sort -n; }

# Broker CPU in µs per unit: ticks units.
cpu_us() { calc 't / hz * 1e6 / n' t="$1" hz="$(getconf CLK_TCK)" n="$2"; }

# scale_sweep scenario reps fn points...: fn broker point rep for each point and repetition,
# the broker order alternating from run to run.
scale_sweep() {
  local sc=$1 reps=$2 fn=$3 pt r b bs; shift 3
  for pt in "$@"; do
    for (( r = 1; r <= reps; r++ )); do
      bs=$(order "$SCALE_IDX"); SCALE_IDX=$(( SCALE_IDX + 1 ))
      for b in $bs; do "$fn" "$b" "$pt" "$r"; done
    done
  done
}

# ---------------------------------------------------------------- S1 queues

s1_run() { # broker queues rep
  local b=$1 n=$2 r=$3 name=S1-$2-r$3.$1 base t0 dticks iticks rss declared
  start_broker "$b" "S1-$n-r$r"
  sleep "$SCALE_SETTLE"
  base=$(rss_kb "$BROKER_PID")
  start_sampler "$OUT/$name.rss"
  log "S1 on $b, rep $r: declare $n durable queues (baseline RSS $base kB)"
  t0=$(cpu_ticks)
  sperf "$name" --declare-queues "$n" --queue-pattern 'bench-s1-%d' --durable
  dticks=$(( $(cpu_ticks) - t0 ))
  scale_rec S1 "$n" "$b" "$r" rss_declared "$(rss_kb "$BROKER_PID")"
  t0=$(cpu_ticks)
  sleep "$S1_IDLE"
  iticks=$(( $(cpu_ticks) - t0 ))
  rss=$(rss_kb "$BROKER_PID")
  stop_sampler
  declared=$(j .declared "$name")
  scale_rec S1 "$n" "$b" "$r" declared "$declared"
  scale_rec S1 "$n" "$b" "$r" rate "$(j .declare_rate "$name")"
  scale_rec S1 "$n" "$b" "$r" base "$base"
  scale_rec S1 "$n" "$b" "$r" rss "$rss"
  scale_rec S1 "$n" "$b" "$r" peak "$(cat "$OUT/$name.rss")"
  [[ ${declared:-0} != 0 ]] && scale_rec S1 "$n" "$b" "$r" perq "$(calc '(a - b) / n' a="$rss" b="$base" n="$declared")"
  scale_rec S1 "$n" "$b" "$r" idlecpu "$(calc 't / hz / s * 100' t="$iticks" hz="$(getconf CLK_TCK)" s="$S1_IDLE")"
  scale_rec S1 "$n" "$b" "$r" declcpu "$(cpu_us "$dticks" "$declared")"
  scale_check S1 "$n" "$b" "$r" "$name"
  log "S1 on $b, rep $r: ${declared:-0} declared at $(j .declare_rate "$name") /s; RSS $base -> $rss kB; idle CPU $iticks ticks in ${S1_IDLE}s"
  stop_broker
}

run_S1() { scale_sweep S1 "$SCALE_REPS" s1_run $S1_QUEUES; }

# ---------------------------------------------------------------- S2 topic bindings

s2_run() { # broker bindings rep
  local b=$1 n=$2 r=$3 name=S2-$2-r$3.$1 t0 ticks published
  local topo=(--topic-bindings "$n" --exchange bench-s2 --exchange-type topic --queue bench-s2)
  start_broker "$b" "S2-$n-r$r"
  log "S2 on $b, rep $r: bind $n patterns"
  sperf "$name-bind" "${topo[@]}" --producers 0 --consumers 0
  scale_check S2 "$n" "$b" "$r" "$name-bind"
  scale_rec S2 "$n" "$b" "$r" bindings "$(j .bindings "$name-bind")"
  scale_rec S2 "$n" "$b" "$r" bindrate "$(j .bind_rate "$name-bind")"
  start_sampler "$OUT/$name.rss"
  log "S2 on $b, rep $r: 1 producer -> $n bindings -> 1 auto-ack consumer, 16 B, ${SCALE_SECS}s"
  t0=$(cpu_ticks)
  sperf "$name" "${topo[@]}" --predeclared --producers 1 --consumers 1 --auto-ack --size 16 --time "$SCALE_SECS"
  ticks=$(( $(cpu_ticks) - t0 ))
  stop_sampler
  published=$(j .published "$name")
  scale_rec S2 "$n" "$b" "$r" routed "$(j .consume_rate "$name")"
  scale_rec S2 "$n" "$b" "$r" pub "$(j .publish_rate "$name")"
  scale_rec S2 "$n" "$b" "$r" cpu "$(cpu_us "$ticks" "$published")"
  scale_rec S2 "$n" "$b" "$r" peak "$(cat "$OUT/$name.rss")"
  scale_check S2 "$n" "$b" "$r" "$name"
  stop_broker
}

run_S2() { scale_sweep S2 "$SCALE_REPS" s2_run $S2_BINDINGS; }

# ---------------------------------------------------------------- S3 consumers

s3_run() { # broker consumers rep
  local b=$1 n=$2 r=$3 name=S3-$2-r$3.$1 t0 ticks filled consumed longest
  start_broker "$b" "S3-$n-r$r"
  log "S3 on $b, rep $r: backlog of up to $S3_BACKLOG x 16 B (1 producer, confirm 1000, ${SCALE_SECS}s at most)"
  sperf "$name-fill" --producers 1 --consumers 0 --queue bench-s3 --size 16 --confirm 1000 \
    --pmessages "$S3_BACKLOG" --time "$SCALE_SECS"
  scale_check S3 "$n" "$b" "$r" "$name-fill"
  filled=$(j .confirmed "$name-fill")
  start_sampler "$OUT/$name.rss"
  log "S3 on $b, rep $r: ${filled:-0} queued; $n consumers, prefetch 10, ack each, ${SCALE_SECS}s"
  t0=$(cpu_ticks)
  sperf "$name" --producers 0 --consumers "$n" --predeclared --queue bench-s3 --prefetch 10 --time "$SCALE_SECS"
  ticks=$(( $(cpu_ticks) - t0 ))
  stop_sampler
  consumed=$(j .consumed "$name")
  longest=$(j '[.consumers[].duration_secs] | max' "$name")
  scale_rec S3 "$n" "$b" "$r" backlog "$filled"
  scale_rec S3 "$n" "$b" "$r" consumed "$consumed"
  scale_rec S3 "$n" "$b" "$r" delivered "$(calc 'c / d' c="$consumed" d="$longest")"
  scale_rec S3 "$n" "$b" "$r" reporting "$(j '.consumers | length' "$name")"
  scale_rec S3 "$n" "$b" "$r" starved "$(j '[.consumers[] | select(.consumed == 0)] | length' "$name")"
  scale_rec S3 "$n" "$b" "$r" fairness "$(j '[.consumers[].consumed] | if length > 0 and min > 0 then max / min else empty end' "$name")"
  scale_rec S3 "$n" "$b" "$r" mincount "$(j '[.consumers[].consumed] | min' "$name")"
  scale_rec S3 "$n" "$b" "$r" maxcount "$(j '[.consumers[].consumed] | max' "$name")"
  scale_rec S3 "$n" "$b" "$r" fairness_rate "$(j '[.consumers[].consume_rate] | if length > 0 and min > 0 then max / min else empty end' "$name")"
  scale_rec S3 "$n" "$b" "$r" cpu "$(cpu_us "$ticks" "$consumed")"
  scale_rec S3 "$n" "$b" "$r" peak "$(cat "$OUT/$name.rss")"
  # Consumers that emptied the queue before the end: the rate is still right (it ends at the
  # last delivery) but BENCH_S3_BACKLOG was too small to keep them busy the whole run.
  [[ -n $consumed && -n $filled && $consumed -ge $filled ]] && scale_rec S3 "$n" "$b" "$r" ranout 1
  scale_check S3 "$n" "$b" "$r" "$name"
  stop_broker
}

run_S3() { scale_sweep S3 "$SCALE_REPS" s3_run $S3_CONSUMERS; }

# ---------------------------------------------------------------- S4 connections

# Descriptors the broker holds (entries of /proc/PID/fd).
fd_count() { local f=(/proc/"$1"/fd/*); echo "${#f[@]}"; }

# Samples the broker's descriptor count every 0.5 s; writes the peak to $2 when stopped.
fd_sampler() {
  local pid=$1 out=$2 max=0 n
  trap 'echo "$max" > "$out"; exit 0' TERM
  while kill -0 "$pid" 2>/dev/null; do
    n=$(fd_count "$pid")
    if (( n > max )); then max=$n; fi
    sleep 0.5
  done
  echo "$max" > "$out"
}

# What each broker was measured to need: descriptors at rest and per connection (the largest
# seen). warren holds two per connection (the socket and a duplicate that the store's writer
# thread writes confirms to); RabbitMQ one.
declare -A S4_BASEFD S4_FDPC
# RabbitMQ's own cap on sockets (rabbitmqctl status: 90% of its descriptor limit, 17,910 for a
# limit of 20,000); past it the node stops accepting and the handshakes hang.
declare -A S4_SOCKETS

s4_run() { # broker connections rep
  local b=$1 n=$2 r=$3 name=S4-$2-r$3.$1 base peak opened basefd peakfd fdpid fdpc
  start_broker "$b" "S4-$n-r$r"
  sleep "$SCALE_SETTLE"
  base=$(rss_kb "$BROKER_PID")
  basefd=$(fd_count "$BROKER_PID")
  if [[ $b == rabbitmq && -z ${S4_SOCKETS[$b]:-} ]]; then
    S4_SOCKETS[$b]=$( (eval "$(rabbit_env)"; rabbitmqctl status 2>/dev/null) \
      | sed -n 's/.*Sockets: [0-9]*, limit: \([0-9]*\).*/\1/p' | head -1 || true)
    log "S4: RabbitMQ's socket limit is ${S4_SOCKETS[$b]:-unknown}"
  fi
  start_sampler "$OUT/$name.rss"
  fd_sampler "$BROKER_PID" "$OUT/$name.fds" & fdpid=$!
  log "S4 on $b, rep $r: $n idle connections x 2 channels (baseline RSS $base kB, $basefd fds)"
  SPERF_CAP=$S4_CAP sperf "$name" --idle-connections "$n" --idle-channels 2 --hold "$S4_HOLD"
  stop_sampler
  kill "$fdpid" 2>/dev/null || true; wait "$fdpid" 2>/dev/null || true
  peak=$(cat "$OUT/$name.rss")
  peakfd=$(cat "$OUT/$name.fds" 2>/dev/null || true)
  opened=$(j .opened "$name")
  scale_rec S4 "$n" "$b" "$r" base "$base"
  scale_rec S4 "$n" "$b" "$r" peak "$peak"
  scale_rec S4 "$n" "$b" "$r" opened "$opened"
  scale_rec S4 "$n" "$b" "$r" channels "$(j .channels_per_connection "$name")"
  scale_rec S4 "$n" "$b" "$r" rate "$(j .open_rate "$name")"
  scale_rec S4 "$n" "$b" "$r" basefd "$basefd"
  scale_rec S4 "$n" "$b" "$r" peakfd "$peakfd"
  if [[ ${opened:-0} != 0 ]]; then
    scale_rec S4 "$n" "$b" "$r" perconn "$(calc '(p - b) / n' p="$peak" b="$base" n="$opened")"
    fdpc=$(calc '(p - b) / n' p="$peakfd" b="$basefd" n="$opened")
    scale_rec S4 "$n" "$b" "$r" fdpc "$fdpc"
    S4_BASEFD[$b]=$basefd
    S4_FDPC[$b]=$(awk -v a="${S4_FDPC[$b]:-0}" -v f="${fdpc:-1}" 'BEGIN { if (f < 1) f = 1; printf "%.2f", (f > a ? f : a) }')
  fi
  scale_check S4 "$n" "$b" "$r" "$name"
  stop_broker
}

# Whether N connections fit on broker B: its descriptors at rest plus N times its descriptors per
# connection (1 until measured) within the hard limit - 500, N + 100 within its own socket cap
# if it has one, and N + 100 descriptors in warren-perf within the hard limit - 500.
s4_fits() { # broker n
  (( $2 <= $(s4_maxn "$1") ))
}

# The most connections broker B can take here.
s4_maxn() {
  awk -v p="${S4_FDPC[$1]:-1}" -v b="${S4_BASEFD[$1]:-100}" -v l="$S4_LIMIT" -v s="${S4_SOCKETS[$1]:-}" \
    'BEGIN { n = int((l - b) / p); if (n > l - 100) n = l - 100; if (s != "" && n > s - 100) n = s - 100; print n }'
}

# The largest thousand that fits on broker B.
s4_maxfit() { echo $(( $(s4_maxn "$1") / 1000 * 1000 )); }

s4_why() { # broker n
  local cap=${S4_SOCKETS[$1]:-}
  if [[ -n $cap ]] && (( $2 > cap - 100 )); then
    echo "above RabbitMQ's socket limit $cap (fd hard limit $S4_HARD)"
    return
  fi
  awk -v n="$2" -v p="${S4_FDPC[$1]:-1}" -v b="${S4_BASEFD[$1]:-100}" -v h="$S4_HARD" \
    'BEGIN { printf "needs ~%d fds (%g per connection), fd hard limit %d", b + n * p, p, h }'
}

# One point, repetitions alternating; a broker the point does not fit is skipped (n/a in the
# table, with why).
s4_point() { # n
  local n=$1 r b bs
  for (( r = 1; r <= SCALE_REPS; r++ )); do
    bs=$(order "$SCALE_IDX"); SCALE_IDX=$(( SCALE_IDX + 1 ))
    for b in $bs; do
      if s4_fits "$b" "$n"; then
        s4_run "$b" "$n" "$r"
      elif (( r == 1 )); then
        scale_rec S4 "$n" "$b" 0 na "$(s4_why "$b" "$n")"
        log "S4: $n connections do not fit on $b: $(s4_why "$b" "$n")"
      fi
    done
  done
}

# The points asked for, in increasing order, on the brokers they fit; then, if the largest did
# not fit some broker, the largest thousand that fits that broker, run on every broker it fits.
run_S4() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  local n b max=0 extra=""
  S4_HARD=$(ulimit -Hn)
  [[ $S4_HARD == unlimited ]] && S4_HARD=1048576
  S4_LIMIT=$(( S4_HARD - S4_FD_MARGIN ))
  for n in $(sorted_nums "$S4_CONNECTIONS"); do
    (( n > max )) && max=$n
    s4_point "$n"
  done
  for b in $BROKERS; do
    s4_fits "$b" "$max" && continue
    n=$(s4_maxfit "$b")
    if (( n > 0 )) && [[ " $S4_CONNECTIONS $extra " != *" $n "* ]]; then extra+="$n "; fi
  done
  S4_EXTRA=$(sorted_nums "$extra" | xargs)
  for n in $S4_EXTRA; do s4_point "$n"; done
}

# ---------------------------------------------------------------- S5 message size

# Confirm window and prefetch for a size: 64 MiB of bodies in flight, 1 to 1,000 messages.
s5_window() { local w=$(( 64 * 1024 * 1024 / $1 )); (( w < 1 )) && w=1; (( w > 1000 )) && w=1000; echo "$w"; }

s5_run() { # broker size-mode rep
  local b=$1 pt=$2 r=$3 name=S5-$2-r$3.$1 size=${2%-*} mode=${2#*-} w ack t0 ticks consumed flags=()
  w=$(s5_window "$size"); ack=$(( w / 2 )); (( ack < 1 )) && ack=1
  [[ $mode == persistent ]] && flags=(--durable --persistent)
  start_broker "$b" "S5-$pt-r$r"
  start_sampler "$OUT/$name.rss"
  log "S5 on $b, rep $r: $size B $mode, 1 -> 1, confirm $w, prefetch $w, ${SCALE_SECS}s"
  t0=$(cpu_ticks)
  sperf "$name" --producers 1 --consumers 1 --queue bench-s5 "${flags[@]}" --size "$size" \
    --confirm "$w" --prefetch "$w" --multi-ack-every "$ack" --time "$SCALE_SECS"
  ticks=$(( $(cpu_ticks) - t0 ))
  stop_sampler
  consumed=$(j .consumed "$name")
  scale_rec S5 "$pt" "$b" "$r" mbs "$(calc 'c * s / d / 1048576' c="$consumed" s="$size" d="$(j .duration_secs "$name")")"
  scale_rec S5 "$pt" "$b" "$r" consumed "$consumed"
  scale_rec S5 "$pt" "$b" "$r" peak "$(cat "$OUT/$name.rss")"
  scale_rec S5 "$pt" "$b" "$r" cpu "$(cpu_us "$ticks" "$consumed")"
  scale_check S5 "$pt" "$b" "$r" "$name"
  stop_broker
}

s5_points() { local s m; for s in $S5_SIZES; do for m in $S5_MODES; do printf '%s ' "$s-$m"; done; done; }

run_S5() {
  local m
  for m in $S5_MODES; do
    [[ $m == transient || $m == persistent ]] || { echo "bench/compare: unknown S5 mode '$m' (transient, persistent)" >&2; exit 2; }
  done
  # shellcheck disable=SC2046
  scale_sweep S5 "$SCALE_REPS" s5_run $(s5_points)
}

# ---------------------------------------------------------------- S6 queue depth

s6_run() { # broker depth rep
  local b=$1 d=$2 r=$3 name=S6-$2-r$3.$1 each=$(( $2 / 4 )) t0 ticks confirmed fill_rss drain_rss
  start_broker "$b" "S6-$d-r$r"
  start_sampler "$OUT/$name-fill.rss"
  log "S6 on $b, rep $r: fill $(( each * 4 )) x 100 B persistent, 4 producers, confirm 1000 each"
  t0=$(cpu_ticks)
  sperf "$name-fill" --producers 4 --consumers 0 --queue bench-s6 --durable --persistent --size 100 \
    --confirm 1000 --pmessages "$each" --time "$SCALE_CAP"
  ticks=$(( $(cpu_ticks) - t0 ))
  stop_sampler
  fill_rss=$(cat "$OUT/$name-fill.rss")
  confirmed=$(j .confirmed "$name-fill")
  scale_rec S6 "$d" "$b" "$r" count "$confirmed"
  scale_rec S6 "$d" "$b" "$r" fill "$(j .confirm_rate "$name-fill")"
  scale_rec S6 "$d" "$b" "$r" fillcpu "$(cpu_us "$ticks" "$confirmed")"
  scale_rec S6 "$d" "$b" "$r" fillrss "$fill_rss"
  scale_rec S6 "$d" "$b" "$r" filledrss "$(rss_kb "$BROKER_PID")"
  scale_rec S6 "$d" "$b" "$r" disk "$(du -sk "$BROKER_DIR" 2>/dev/null | cut -f1)"
  scale_check S6 "$d" "$b" "$r" "$name-fill"
  if [[ ${confirmed:-0} != 0 ]]; then
    start_sampler "$OUT/$name-drain.rss"
    log "S6 on $b, rep $r: $confirmed queued (peak RSS $fill_rss kB); drain with 1 consumer"
    t0=$(cpu_ticks)
    sperf "$name-drain" --producers 0 --consumers 1 --predeclared --queue bench-s6 --prefetch 1000 \
      --multi-ack-every 500 --cmessages "$confirmed" --time "$SCALE_CAP"
    ticks=$(( $(cpu_ticks) - t0 ))
    stop_sampler
    drain_rss=$(cat "$OUT/$name-drain.rss")
    scale_rec S6 "$d" "$b" "$r" drained "$(j .consumed "$name-drain")"
    scale_rec S6 "$d" "$b" "$r" drain "$(j .consume_rate "$name-drain")"
    scale_rec S6 "$d" "$b" "$r" draincpu "$(cpu_us "$ticks" "$(j .consumed "$name-drain")")"
    scale_rec S6 "$d" "$b" "$r" drainrss "$drain_rss"
    scale_rec S6 "$d" "$b" "$r" peak "$(( fill_rss > drain_rss ? fill_rss : drain_rss ))"
    scale_check S6 "$d" "$b" "$r" "$name-drain"
  fi
  stop_broker
}

run_S6() { scale_sweep S6 "$S6_REPS" s6_run $S6_DEPTHS; }
