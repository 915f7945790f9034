# bench/delayed.sh: scenario D1 of bench/compare (issue #15), sourced by bench/compare (it uses
# its brokers, sampler, perf_capped, first_error, cpu_ticks, cpu_us_per_msg, j, row and fmt_*
# helpers and its R array).
#
# D1: delayed messages at scale. For each broker in BENCH_BROKERS (warren, then RabbitMQ), a
# fresh broker and two phases on it:
#
#   hold   BENCH_D1_MESSAGES persistent 1 KB messages from 4 producers (1,000 confirms in
#          flight each) into the durable queue bench-d1, each delayed by one of 10 levels from
#          1 h to 2 h (message k of a producer gets level k mod 10), so none falls due during
#          the run; no consumer. Confirmed rate, broker peak RSS, broker CPU per message,
#          connection.blocked notices (both phases), and the data dir's size afterwards.
#   timed  with that backlog still held: BENCH_D1_TIMED persistent 1 KB messages at
#          BENCH_D1_RATE msg/s from one producer with confirms, delays of 10 levels from 1 s to
#          10 s, and one consumer on bench-d1 (prefetch 1,000) at the same time, until it has
#          them all. warren-perf reports each message's lateness (receive time - (send time +
#          delay)) and the messages delivered more than 1 ms early (perf/src/delay.rs).
#
# warren delays with its built-in x-delayed-message exchange (bench-d1-later, durable,
# x-delayed-type=direct, header x-delay). RabbitMQ 3.10 from Debian has no delayed-message
# plugin, so it gets the classic workaround (warren-perf --delay-mode ttl-queues): a durable
# holding queue bench-d1.delay.<D> per delay D with x-message-ttl=D, dead-lettered into bench-d1
# through the default exchange.
#
# With BENCH_D1_PLUGIN_DIR naming a directory that holds a built
# rabbitmq_delayed_message_exchange-<version>/ (BENCHMARKS.md, D1, says how to build it with
# Debian's erlc), RabbitMQ gets the plugin instead and is driven exactly as warren is.
#
# Knobs: BENCH_D1_MESSAGES (default 10000000), BENCH_D1_TIMED (default 100000), BENCH_D1_RATE
# (msg/s, default 5000), BENCH_D1_CAP (seconds per phase, default 1800), BENCH_D1_PLUGIN_DIR.

D1_MESSAGES=${BENCH_D1_MESSAGES:-10000000}
D1_TIMED=${BENCH_D1_TIMED:-100000}
D1_RATE=${BENCH_D1_RATE:-5000}
D1_CAP=${BENCH_D1_CAP:-1800}
D1_PLUGIN_DIR=${BENCH_D1_PLUGIN_DIR:-}
D1_PRODUCERS=4
D1_QUEUE=bench-d1
# 10 levels each: 1 h to 2 h in steps of 400 s, and 1 s to 10 s.
D1_HOLD_DELAYS=$(seq -s, 3600000 400000 7200000)
D1_TIMED_DELAYS=$(seq -s, 1000 1000 10000)

# warren-perf flags of a broker's way of delaying: the exchange type, or the TTL queues.
d1_mode_flags() {
  case $1 in
    warren) echo "--exchange bench-d1-later --exchange-type x-delayed-message --exchange-args x-delayed-type=direct" ;;
    rabbitmq)
      if [[ -n $D1_PLUGIN_DIR ]]; then d1_mode_flags warren; else echo "--delay-mode ttl-queues"; fi ;;
  esac
}

# What RabbitMQ delays with, for the table.
d1_rabbit_way() {
  if [[ -n $D1_PLUGIN_DIR ]]; then echo "the delayed-message plugin"; else echo "per-delay TTL queues"; fi
}

# Starts a broker for D1: RabbitMQ with the delayed-message plugin when BENCH_D1_PLUGIN_DIR says.
d1_start() { # broker
  if [[ $1 == rabbitmq && -n $D1_PLUGIN_DIR ]]; then
    local defaults
    defaults=$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins | head -1)
    RABBITMQ_PLUGINS_DIR="$defaults:$D1_PLUGIN_DIR" start_broker "$1" D1
    (eval "$(rabbit_env)"; RABBITMQ_PLUGINS_DIR="$defaults:$D1_PLUGIN_DIR" \
      rabbitmq-plugins enable rabbitmq_delayed_message_exchange >> "$OUT/rabbitmq.D1.log" 2>&1) \
      || { echo "bench/compare: cannot enable the delayed-message plugin from $D1_PLUGIN_DIR" >&2; exit 1; }
  else
    start_broker "$1" D1
  fi
}

d1_broker() { # broker
  local b=$1 each=$(( D1_MESSAGES / D1_PRODUCERS ))
  local total=$(( each * D1_PRODUCERS ))
  local mode t0 hold_rss timed_rss confirmed
  read -ra mode <<< "$(d1_mode_flags "$b")"
  d1_start "$b"
  start_sampler "$OUT/D1-hold.$b.rss"
  log "D1 hold on $b: $total x 1 KB persistent, delays 1-2 h (${mode[*]}), $D1_PRODUCERS producers, confirm 1000 each"
  t0=$(cpu_ticks)
  perf_capped "$D1_CAP" "D1-hold.$b" --producers "$D1_PRODUCERS" --consumers 0 --queue "$D1_QUEUE" \
    --durable --persistent --size 1024 --confirm 1000 --pmessages "$each" \
    --delays "$D1_HOLD_DELAYS" "${mode[@]}"
  CPU_TICKS=$(( $(cpu_ticks) - t0 ))
  stop_sampler
  hold_rss=$(cat "$OUT/D1-hold.$b.rss")
  confirmed=$(j .confirmed "D1-hold.$b")
  R[D1.holdrss.$b]=$hold_rss
  R[D1.rss.$b]=$hold_rss
  R[D1.count.$b]=${confirmed:-0}
  R[D1.hold.$b]=$(j .confirm_rate "D1-hold.$b")
  R[D1.holdtime.$b]=$(j .duration_secs "D1-hold.$b")
  R[D1.holdcpu.$b]=$(cpu_us_per_msg "D1-hold.$b")
  R[D1.disk.$b]=$(du -sk "$BROKER_DIR" 2>/dev/null | cut -f1 || true)
  if [[ -z $confirmed || $confirmed == 0 ]]; then
    R[D1.fail.$b]="hold: $(first_error "D1-hold.$b" "$D1_CAP")"
  elif (( confirmed != total )); then
    R[D1.fail.$b]="hold: $confirmed of $total confirmed ($(first_error "D1-hold.$b" "$D1_CAP"))"
  fi
  log "D1 hold on $b: ${confirmed:-0} confirmed in ${R[D1.holdtime.$b]:-?}s (peak RSS $hold_rss kB," \
    "${R[D1.disk.$b]} kB on disk); timed phase: $D1_TIMED at $D1_RATE msg/s, delays 1-10 s, 1 consumer"

  start_sampler "$OUT/D1-timed.$b.rss"
  t0=$(cpu_ticks)
  # Declared again (same arguments): on RabbitMQ this adds the holding queues of 1-10 s.
  perf_capped "$D1_CAP" "D1-timed.$b" --producers 1 --consumers 1 --queue "$D1_QUEUE" \
    --durable --persistent --size 1024 --confirm 1000 --rate "$D1_RATE" --pmessages "$D1_TIMED" \
    --prefetch 1000 --cmessages "$D1_TIMED" --delays "$D1_TIMED_DELAYS" "${mode[@]}"
  CPU_TICKS=$(( $(cpu_ticks) - t0 ))
  stop_sampler
  timed_rss=$(cat "$OUT/D1-timed.$b.rss")
  R[D1.timedrss.$b]=$timed_rss
  R[D1.rss.$b]=$(( hold_rss > timed_rss ? hold_rss : timed_rss ))
  R[D1.timedcpu.$b]=$(cpu_us_per_msg "D1-timed.$b")
  R[D1.tconf.$b]=$(j .confirmed "D1-timed.$b")
  R[D1.tcons.$b]=$(j .consumed "D1-timed.$b")
  R[D1.delayed.$b]=$(j .delayed.count "D1-timed.$b")
  R[D1.p50.$b]=$(j .delayed.lateness_p50_ms "D1-timed.$b")
  R[D1.p99.$b]=$(j .delayed.lateness_p99_ms "D1-timed.$b")
  R[D1.p999.$b]=$(j .delayed.lateness_p999_ms "D1-timed.$b")
  R[D1.max.$b]=$(j .delayed.lateness_max_ms "D1-timed.$b")
  R[D1.early.$b]=$(j .delayed.early "D1-timed.$b")
  R[D1.maxearly.$b]=$(j .delayed.max_early_ms "D1-timed.$b")
  if [[ ${R[D1.delayed.$b]:-0} != "$D1_TIMED" ]]; then
    R[D1.fail.$b]+="${R[D1.fail.$b]:+; }timed: ${R[D1.delayed.$b]:-0} of $D1_TIMED delivered, ${R[D1.tconf.$b]:-0} confirmed ($(first_error "D1-timed.$b" "$D1_CAP"))"
  fi
  [[ -z ${R[D1.fail.$b]:-} ]] || log "D1 on $b: ${R[D1.fail.$b]}"
  log "D1 timed on $b: ${R[D1.delayed.$b]:-0} delivered, lateness p99 ${R[D1.p99.$b]:-?} ms," \
    "max ${R[D1.max.$b]:-?} ms, early ${R[D1.early.$b]:-?} (peak RSS $timed_rss kB)"
  stop_broker
}

run_D1() {
  local b
  for b in warren rabbitmq; do
    [[ " $BROKERS " == *" $b "* ]] || continue
    d1_broker "$b"
  done
}

# "no", or "yes: N× over S s (reason)", from the hold's and the timed phase's summaries.
d1_blocked() { # broker
  blocked_summary "$OUT/D1-hold.$1.json" "$OUT/D1-timed.$1.json"
}

# "met" when warren delivered every timed message, none more than 1 ms early.
d1_early_ok() {
  local W=warren
  if [[ -z ${R[D1.early.$W]:-} ]]; then echo "?"
  elif [[ ${R[D1.early.$W]} == 0 && ${R[D1.delayed.$W]:-} == "$D1_TIMED" ]]; then echo "met"
  else echo "**missed**"; fi
}

d1_table() {
  local W=warren Q=rabbitmq
  d1lat() { echo "$(fmt_ms "${R[D1.p50.$1]:-}") / $(fmt_ms "${R[D1.p999.$1]:-}") / $(fmt_ms "${R[D1.max.$1]:-}")"; }
  d1early() {
    [[ -n ${R[D1.early.$1]:-} ]] || { echo "–"; return; }
    if [[ ${R[D1.early.$1]} == 0 ]]; then echo 0
    else echo "${R[D1.early.$1]} (earliest $(fmt_ms "${R[D1.maxearly.$1]:-}") before due)"; fi
  }
  d1count() { echo "${R[D1.delayed.$1]:-–} / ${R[D1.tconf.$1]:-–}"; }
  d1rss() { echo "$(fmt_mb "${R[D1.holdrss.$1]:-}") / $(fmt_mb "${R[D1.timedrss.$1]:-}")"; }
  d1cpu() { echo "$(fmt_us "${R[D1.holdcpu.$1]:-}") / $(fmt_us "${R[D1.timedcpu.$1]:-}")"; }
  row "D1 hold: ${R[D1.count.$W]:-n/a} / ${R[D1.count.$Q]:-n/a} × 1 KB persistent into a durable queue, delays 1-2 h (10 levels), $D1_PRODUCERS producers, confirm 1000 each, no consumer (warren: x-delayed-message exchange; RabbitMQ: $(d1_rabbit_way))" \
    "hold (confirmed)" "$(fmt_rate "${R[D1.hold.$W]:-}")" "$(fmt_rate "${R[D1.hold.$Q]:-}")" \
    "$(ratio "${R[D1.hold.$W]:-}" "${R[D1.hold.$Q]:-}") w/R" ""
  row "" "peak RSS (hold + timed)" "$(fmt_mb "${R[D1.rss.$W]:-}")" "$(fmt_mb "${R[D1.rss.$Q]:-}")" \
    "$(ratio "${R[D1.rss.$Q]:-}" "${R[D1.rss.$W]:-}") R/w" "warren < 256 MB: $(le "${R[D1.rss.$W]:-}" $(( 256 * 1024 - 1 )))"
  row "" "peak RSS in the hold / in the timed phase" "$(d1rss $W)" "$(d1rss $Q)" "" ""
  row "" "broker CPU per message: hold / timed" "$(d1cpu $W)" "$(d1cpu $Q)" \
    "$(ratio "${R[D1.holdcpu.$Q]:-}" "${R[D1.holdcpu.$W]:-}") / $(ratio "${R[D1.timedcpu.$Q]:-}" "${R[D1.timedcpu.$W]:-}") R/w" ""
  row "" "connection.blocked (hold + timed)" "$(d1_blocked $W)" "$(d1_blocked $Q)" "" ""
  row "" "broker data dir after the hold" "$(fmt_gb "${R[D1.disk.$W]:-}")" "$(fmt_gb "${R[D1.disk.$Q]:-}")" "" ""
  row "D1 timed, on top of the held backlog: $D1_TIMED × 1 KB persistent at $D1_RATE msg/s, delays 1-10 s (10 levels), 1 producer with confirms, 1 consumer (prefetch 1000)" \
    "lateness p99" "$(fmt_ms "${R[D1.p99.$W]:-}")" "$(fmt_ms "${R[D1.p99.$Q]:-}")" \
    "$(ratio "${R[D1.p99.$Q]:-}" "${R[D1.p99.$W]:-}") R/w" "warren ≤ 10 ms: $(le "${R[D1.p99.$W]:-}" 10)"
  row "" "lateness p50 / p99.9 / max" "$(d1lat $W)" "$(d1lat $Q)" "" ""
  row "" "delivered early (> 1 ms)" "$(d1early $W)" "$(d1early $Q)" "" "warren none: $(d1_early_ok)"
  row "" "delivered / confirmed" "$(d1count $W)" "$(d1count $Q)" "" ""
}

# Lines under the table: the knobs, the comparison's terms, and what fell short.
d1_notes() {
  local b
  echo "D1: BENCH_D1_MESSAGES=$D1_MESSAGES, BENCH_D1_TIMED=$D1_TIMED, BENCH_D1_RATE=$D1_RATE msg/s, cap ${D1_CAP}s per phase;" \
    "hold delays $D1_HOLD_DELAYS ms, timed delays $D1_TIMED_DELAYS ms (round-robin per producer);" \
    "lateness = receive time - (send time + delay), early = delivered > 1 ms before due"
  if [[ -n $D1_PLUGIN_DIR ]]; then
    echo "D1: RabbitMQ runs the delayed-message plugin from $D1_PLUGIN_DIR (an x-delayed-message exchange, as warren)"
  else
    echo "D1: RabbitMQ has no delayed-message plugin in Debian's package; it is compared with per-delay TTL queues" \
      "(bench-d1.delay.<D>: x-message-ttl=D, dead-lettered into bench-d1 through the default exchange), warren with its x-delayed-message exchange"
  fi
  for b in warren rabbitmq; do
    [[ -z ${R[D1.fail.$b]:-} ]] || echo "D1 on $b: incomplete, ${R[D1.fail.$b]}"
  done
}
