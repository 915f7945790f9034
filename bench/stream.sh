# bench/stream.sh: scenario ST1 of bench/compare (issue #14), sourced by it (it uses its
# brokers, sampler, perf_capped, first_error, cpu_us_per_msg, j, row and fmt_* helpers, its R
# array, and the knobs STREAM_MESSAGES, ST1_PRODUCERS, ST1_CONSUMERS and ST1_CAP it reads from
# BENCH_STREAM_MESSAGES, BENCH_STREAM_PRODUCERS and BENCH_ST1_CAP).
#
# ST1: a stream far larger than the broker's memory target. Fresh broker; declare a
# durable stream (x-queue-type=stream) and fill it with STREAM_MESSAGES x 100 B from
# ST1_PRODUCERS producers with confirms (1,000 in flight each); then ST1_CONSUMERS consumers start
# at once from x-stream-offset=first (prefetch 1000, ack multiple every 500) and each stops when
# it has all the messages. Broker RSS is sampled through both phases, broker CPU per message is
# taken from /proc/PID/stat, the stream's size on disk with du after the fill. A broker that
# refuses the stream (warren before streams land: 406) gets "n/a" and the reason; the run goes on.

run_ST1() {
  local b each=$(( STREAM_MESSAGES / ST1_PRODUCERS ))
  local total=$(( each * ST1_PRODUCERS ))
  local t0 n fill_rss replay_rss confirmed
  for b in $(order 10); do
    start_broker "$b" ST1
    start_sampler "$OUT/ST1-fill.$b.rss"
    log "ST1 on $b: stream, fill $total x 100 B, $ST1_PRODUCERS producers, confirm 1000 each"
    t0=$(cpu_ticks)
    perf_capped "$ST1_CAP" "ST1-fill.$b" --producers "$ST1_PRODUCERS" --consumers 0 --queue bench-st1 \
      --queue-type stream --durable --persistent --size 100 --confirm 1000 --pmessages "$each"
    CPU_TICKS=$(( $(cpu_ticks) - t0 ))
    stop_sampler
    fill_rss=$(cat "$OUT/ST1-fill.$b.rss")
    confirmed=$(j .confirmed "ST1-fill.$b")
    R[ST1.fillrss.$b]=$fill_rss
    R[ST1.count.$b]=$confirmed
    R[ST1.fill.$b]=$(j .confirm_rate "ST1-fill.$b")
    R[ST1.fillcpu.$b]=$(cpu_us_per_msg "ST1-fill.$b")
    R[ST1.disk.$b]=$(du -sk "$BROKER_DIR" 2>/dev/null | cut -f1 || true)
    if [[ -z $confirmed || $confirmed == 0 ]]; then
      R[ST1.fail.$b]="fill: $(first_error "ST1-fill.$b" "$ST1_CAP")"
      R[ST1.na.$b]=1
      log "ST1 on $b failed: ${R[ST1.fail.$b]}"
      stop_broker
      continue
    fi
    (( confirmed == total )) || R[ST1.fail.$b]="fill: $confirmed of $total confirmed ($(first_error "ST1-fill.$b" "$ST1_CAP"))"
    log "ST1 on $b: $confirmed confirmed (peak RSS $fill_rss kB, ${R[ST1.disk.$b]} kB on disk);" \
      "replay with $ST1_CONSUMERS consumers from first"
    start_sampler "$OUT/ST1-replay.$b.rss"
    t0=$(cpu_ticks)
    perf_capped "$ST1_CAP" "ST1-replay.$b" --producers 0 --consumers "$ST1_CONSUMERS" --predeclared \
      --queue bench-st1 --stream-offset first --prefetch 1000 --multi-ack-every 500 \
      --consume-count "$confirmed"
    CPU_TICKS=$(( $(cpu_ticks) - t0 ))
    stop_sampler
    R[ST1.endrss.$b]=$(rss_kb "$BROKER_PID")
    replay_rss=$(cat "$OUT/ST1-replay.$b.rss")
    R[ST1.replayrss.$b]=$replay_rss
    R[ST1.rss.$b]=$(( fill_rss > replay_rss ? fill_rss : replay_rss ))
    R[ST1.replay.$b]=$(j .consume_rate "ST1-replay.$b")
    R[ST1.replaycpu.$b]=$(cpu_us_per_msg "ST1-replay.$b")
    R[ST1.slowest.$b]=$(j '[.consumers[].consume_rate] | min' "ST1-replay.$b")
    R[ST1.fastest.$b]=$(j '[.consumers[].consume_rate] | max' "ST1-replay.$b")
    n=$(j "[.consumers[] | select(.consumed == $confirmed)] | length" "ST1-replay.$b")
    if [[ ${n:-0} != "$ST1_CONSUMERS" ]]; then
      R[ST1.fail.$b]+="${R[ST1.fail.$b]:+; }replay: ${n:-0} of $ST1_CONSUMERS consumers got all $confirmed ($(first_error "ST1-replay.$b" "$ST1_CAP"))"
    fi
    [[ -z ${R[ST1.fail.$b]:-} ]] || log "ST1 on $b: ${R[ST1.fail.$b]}"
    stop_broker
  done
}

st1_table() {
  local W=warren Q=rabbitmq
  # A broker whose fill confirmed nothing (no streams) gets n/a in every cell.
  st1() { if [[ -n ${R[ST1.na.$1]:-} ]]; then echo "n/a"; else shift; "$@"; fi; }
  row "ST1 stream of ${R[ST1.count.$W]:-n/a} / ${R[ST1.count.$Q]:-n/a} × 100 B ($STREAM_MESSAGES asked), $ST1_PRODUCERS producers, confirm 1000 each; then $ST1_CONSUMERS consumers from \`first\` at once" \
    "fill (confirmed)" "$(st1 $W fmt_rate "${R[ST1.fill.$W]:-}")" "$(st1 $Q fmt_rate "${R[ST1.fill.$Q]:-}")" "$(ratio "${R[ST1.fill.$W]:-}" "${R[ST1.fill.$Q]:-}") w/R" ""
  row "" "replay, all $ST1_CONSUMERS consumers (deliveries/s)" "$(st1 $W fmt_rate "${R[ST1.replay.$W]:-}")" "$(st1 $Q fmt_rate "${R[ST1.replay.$Q]:-}")" \
    "$(ratio "${R[ST1.replay.$W]:-}" "${R[ST1.replay.$Q]:-}") w/R" ""
  st1range() { echo "$(fmt_rate "${R[ST1.slowest.$1]:-}") – $(fmt_rate "${R[ST1.fastest.$1]:-}")"; }
  row "" "replay per consumer, slowest – fastest" "$(st1 $W st1range $W)" "$(st1 $Q st1range $Q)" \
    "$(ratio "${R[ST1.slowest.$W]:-}" "${R[ST1.slowest.$Q]:-}") w/R" ""
  row "" "peak RSS (fill + replay)" "$(st1 $W fmt_mb "${R[ST1.rss.$W]:-}")" "$(st1 $Q fmt_mb "${R[ST1.rss.$Q]:-}")" \
    "$(ratio "${R[ST1.rss.$Q]:-}" "${R[ST1.rss.$W]:-}") R/w" "warren < 256 MB: $(st1 $W le "${R[ST1.rss.$W]:-}" $(( 256 * 1024 - 1 )))"
  st1rss() { echo "$(fmt_mb "${R[ST1.fillrss.$1]:-}") / $(fmt_mb "${R[ST1.replayrss.$1]:-}") / $(fmt_mb "${R[ST1.endrss.$1]:-}")"; }
  row "" "peak RSS in the fill / in the replay / at the end" "$(st1 $W st1rss $W)" "$(st1 $Q st1rss $Q)" "" ""
  st1cpu() { echo "$(fmt_us "${R[ST1.fillcpu.$1]:-}") / $(fmt_us "${R[ST1.replaycpu.$1]:-}")"; }
  row "" "broker CPU per message: fill / per delivery: replay" "$(st1 $W st1cpu $W)" "$(st1 $Q st1cpu $Q)" \
    "$(ratio "${R[ST1.fillcpu.$Q]:-}" "${R[ST1.fillcpu.$W]:-}") / $(ratio "${R[ST1.replaycpu.$Q]:-}" "${R[ST1.replaycpu.$W]:-}") R/w" ""
  row "" "broker data dir after the fill" "$(st1 $W fmt_gb "${R[ST1.disk.$W]:-}")" "$(st1 $Q fmt_gb "${R[ST1.disk.$Q]:-}")" "" ""
}

# Lines under the table: the knobs, and what fell short.
st1_notes() {
  local b W=warren Q=rabbitmq
  echo "ST1: BENCH_STREAM_MESSAGES=$STREAM_MESSAGES, $ST1_PRODUCERS producers, cap ${ST1_CAP}s per phase"
  for b in $W $Q; do
    if [[ -n ${R[ST1.na.$b]:-} ]]; then echo "ST1 on $b: n/a, ${R[ST1.fail.$b]}"
    elif [[ -n ${R[ST1.fail.$b]:-} ]]; then echo "ST1 on $b: incomplete, ${R[ST1.fail.$b]}"; fi
  done
}
