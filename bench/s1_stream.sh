# bench/s1_stream.sh: scenario S1 of bench/compare (issue #14), sourced by it (it uses its
# brokers, sampler, perf_capped, first_error, cpu_us_per_msg, j, row and fmt_* helpers, its R
# array, and the knobs STREAM_MESSAGES, S1_PRODUCERS, S1_CONSUMERS and S1_CAP it reads from
# BENCH_STREAM_MESSAGES, BENCH_STREAM_PRODUCERS and BENCH_S1_CAP).
#
# S1: a stream far larger than the broker's memory target. Fresh broker; declare a
# durable stream (x-queue-type=stream) and fill it with STREAM_MESSAGES x 100 B from
# S1_PRODUCERS producers with confirms (1,000 in flight each); then S1_CONSUMERS consumers start
# at once from x-stream-offset=first (prefetch 1000, ack multiple every 500) and each stops when
# it has all the messages. Broker RSS is sampled through both phases, broker CPU per message is
# taken from /proc/PID/stat, the stream's size on disk with du after the fill. A broker that
# refuses the stream (warren before streams land: 406) gets "n/a" and the reason; the run goes on.

run_S1() {
  local b each=$(( STREAM_MESSAGES / S1_PRODUCERS ))
  local total=$(( each * S1_PRODUCERS ))
  local t0 n fill_rss replay_rss confirmed
  for b in $(order 10); do
    start_broker "$b" S1
    start_sampler "$OUT/S1-fill.$b.rss"
    log "S1 on $b: stream, fill $total x 100 B, $S1_PRODUCERS producers, confirm 1000 each"
    t0=$(cpu_ticks)
    perf_capped "$S1_CAP" "S1-fill.$b" --producers "$S1_PRODUCERS" --consumers 0 --queue bench-s1 \
      --queue-type stream --durable --persistent --size 100 --confirm 1000 --pmessages "$each"
    CPU_TICKS=$(( $(cpu_ticks) - t0 ))
    stop_sampler
    fill_rss=$(cat "$OUT/S1-fill.$b.rss")
    confirmed=$(j .confirmed "S1-fill.$b")
    R[S1.fillrss.$b]=$fill_rss
    R[S1.count.$b]=$confirmed
    R[S1.fill.$b]=$(j .confirm_rate "S1-fill.$b")
    R[S1.fillcpu.$b]=$(cpu_us_per_msg "S1-fill.$b")
    R[S1.disk.$b]=$(du -sk "$BROKER_DIR" 2>/dev/null | cut -f1)
    if [[ -z $confirmed || $confirmed == 0 ]]; then
      R[S1.fail.$b]="fill: $(first_error "S1-fill.$b" "$S1_CAP")"
      R[S1.na.$b]=1
      log "S1 on $b failed: ${R[S1.fail.$b]}"
      stop_broker
      continue
    fi
    (( confirmed == total )) || R[S1.fail.$b]="fill: $confirmed of $total confirmed ($(first_error "S1-fill.$b" "$S1_CAP"))"
    log "S1 on $b: $confirmed confirmed (peak RSS $fill_rss kB, ${R[S1.disk.$b]} kB on disk);" \
      "replay with $S1_CONSUMERS consumers from first"
    start_sampler "$OUT/S1-replay.$b.rss"
    t0=$(cpu_ticks)
    perf_capped "$S1_CAP" "S1-replay.$b" --producers 0 --consumers "$S1_CONSUMERS" --predeclared \
      --queue bench-s1 --stream-offset first --prefetch 1000 --multi-ack-every 500 \
      --consume-count "$confirmed"
    CPU_TICKS=$(( $(cpu_ticks) - t0 ))
    stop_sampler
    R[S1.endrss.$b]=$(rss_kb "$BROKER_PID")
    replay_rss=$(cat "$OUT/S1-replay.$b.rss")
    R[S1.replayrss.$b]=$replay_rss
    R[S1.rss.$b]=$(( fill_rss > replay_rss ? fill_rss : replay_rss ))
    R[S1.replay.$b]=$(j .consume_rate "S1-replay.$b")
    R[S1.replaycpu.$b]=$(cpu_us_per_msg "S1-replay.$b")
    R[S1.slowest.$b]=$(j '[.consumers[].consume_rate] | min' "S1-replay.$b")
    R[S1.fastest.$b]=$(j '[.consumers[].consume_rate] | max' "S1-replay.$b")
    n=$(j "[.consumers[] | select(.consumed == $confirmed)] | length" "S1-replay.$b")
    if [[ ${n:-0} != "$S1_CONSUMERS" ]]; then
      R[S1.fail.$b]+="${R[S1.fail.$b]:+; }replay: ${n:-0} of $S1_CONSUMERS consumers got all $confirmed ($(first_error "S1-replay.$b" "$S1_CAP"))"
    fi
    [[ -z ${R[S1.fail.$b]:-} ]] || log "S1 on $b: ${R[S1.fail.$b]}"
    stop_broker
  done
}

s1_table() {
  local W=warren Q=rabbitmq
  # A broker whose fill confirmed nothing (no streams) gets n/a in every cell.
  s1() { if [[ -n ${R[S1.na.$1]:-} ]]; then echo "n/a"; else shift; "$@"; fi; }
  row "S1 stream of ${R[S1.count.$W]:-n/a} / ${R[S1.count.$Q]:-n/a} × 100 B ($STREAM_MESSAGES asked), $S1_PRODUCERS producers, confirm 1000 each; then $S1_CONSUMERS consumers from \`first\` at once" \
    "fill (confirmed)" "$(s1 $W fmt_rate "${R[S1.fill.$W]:-}")" "$(s1 $Q fmt_rate "${R[S1.fill.$Q]:-}")" "$(ratio "${R[S1.fill.$W]:-}" "${R[S1.fill.$Q]:-}") w/R" ""
  row "" "replay, all $S1_CONSUMERS consumers (deliveries/s)" "$(s1 $W fmt_rate "${R[S1.replay.$W]:-}")" "$(s1 $Q fmt_rate "${R[S1.replay.$Q]:-}")" \
    "$(ratio "${R[S1.replay.$W]:-}" "${R[S1.replay.$Q]:-}") w/R" ""
  s1range() { echo "$(fmt_rate "${R[S1.slowest.$1]:-}") – $(fmt_rate "${R[S1.fastest.$1]:-}")"; }
  row "" "replay per consumer, slowest – fastest" "$(s1 $W s1range $W)" "$(s1 $Q s1range $Q)" \
    "$(ratio "${R[S1.slowest.$W]:-}" "${R[S1.slowest.$Q]:-}") w/R" ""
  row "" "peak RSS (fill + replay)" "$(s1 $W fmt_mb "${R[S1.rss.$W]:-}")" "$(s1 $Q fmt_mb "${R[S1.rss.$Q]:-}")" \
    "$(ratio "${R[S1.rss.$Q]:-}" "${R[S1.rss.$W]:-}") R/w" "warren < 256 MB: $(s1 $W le "${R[S1.rss.$W]:-}" $(( 256 * 1024 - 1 )))"
  s1rss() { echo "$(fmt_mb "${R[S1.fillrss.$1]:-}") / $(fmt_mb "${R[S1.replayrss.$1]:-}") / $(fmt_mb "${R[S1.endrss.$1]:-}")"; }
  row "" "peak RSS in the fill / in the replay / at the end" "$(s1 $W s1rss $W)" "$(s1 $Q s1rss $Q)" "" ""
  s1cpu() { echo "$(fmt_us "${R[S1.fillcpu.$1]:-}") / $(fmt_us "${R[S1.replaycpu.$1]:-}")"; }
  row "" "broker CPU per message: fill / per delivery: replay" "$(s1 $W s1cpu $W)" "$(s1 $Q s1cpu $Q)" \
    "$(ratio "${R[S1.fillcpu.$Q]:-}" "${R[S1.fillcpu.$W]:-}") / $(ratio "${R[S1.replaycpu.$Q]:-}" "${R[S1.replaycpu.$W]:-}") R/w" ""
  row "" "broker data dir after the fill" "$(s1 $W fmt_gb "${R[S1.disk.$W]:-}")" "$(s1 $Q fmt_gb "${R[S1.disk.$Q]:-}")" "" ""
}

# Lines under the table: the knobs, and what fell short.
s1_notes() {
  local b W=warren Q=rabbitmq
  echo "S1: BENCH_STREAM_MESSAGES=$STREAM_MESSAGES, $S1_PRODUCERS producers, cap ${S1_CAP}s per phase"
  for b in $W $Q; do
    if [[ -n ${R[S1.na.$b]:-} ]]; then echo "S1 on $b: n/a, ${R[S1.fail.$b]}"
    elif [[ -n ${R[S1.fail.$b]:-} ]]; then echo "S1 on $b: incomplete, ${R[S1.fail.$b]}"; fi
  done
}
