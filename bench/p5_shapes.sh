# bench/p5_shapes.sh: scenario P5S of bench/compare (issue #18), sourced by bench/compare (it
# uses its brokers, sampler, perf_capped, j, row and fmt_* helpers and its R array).
#
# P5 for every classic queue shape that must page its backlog: for each broker in
# BENCH_BROKERS (warren, then RabbitMQ) and each shape in BENCH_P5S_SHAPES, a fresh broker; fill
# BENCH_P5S_MESSAGES messages of 1 KB into one queue with no consumer (4 producers, 1,000
# confirms in flight each), then drain them with one consumer (prefetch 1,000, ack multiple
# every 500). The broker's RSS is sampled every 100 ms through both phases. warren-perf reports
# whether the broker sent connection.blocked (and for how long), and its consumer checks the
# drain's order: per producer and priority level, and for the priority shape that no delivery
# has a higher priority than the one before (see perf/src/order.rs).
#
# Shapes (queue bench-p5s-<shape>):
#   dlx        durable, x-dead-letter-exchange=bench-dlx (not declared: nothing is dead-lettered), persistent
#   prio       durable, x-max-priority=10, persistent, priorities 0..9 in turn
#   ttl        durable, persistent, per-message TTL (expiration) 3600000 ms
#   bytes      durable, x-max-length-bytes=20000000000 (20 GB: nothing is dropped), persistent
#   transient  not durable, transient messages (delivery mode 1), still with confirms
#
# Knobs: BENCH_P5S_MESSAGES (default 10000000), BENCH_P5S_SHAPES (default all five, in the
# order above), BENCH_P5S_CAP (seconds per phase, fill or drain, default 1800).

P5S_MESSAGES=${BENCH_P5S_MESSAGES:-10000000}
P5S_SHAPES=${BENCH_P5S_SHAPES:-"dlx prio ttl bytes transient"}
P5S_CAP=${BENCH_P5S_CAP:-1800}
P5S_PRODUCERS=4
P5S_ALL="dlx prio ttl bytes transient"

# warren-perf flags of a shape's fill (queue declaration and message properties).
p5s_flags() {
  case $1 in
    dlx) echo "--durable --persistent --queue-args x-dead-letter-exchange=bench-dlx" ;;
    prio) echo "--durable --persistent --queue-args x-max-priority=10 --priorities 10" ;;
    ttl) echo "--durable --persistent --expiration 3600000" ;;
    bytes) echo "--durable --persistent --queue-args x-max-length-bytes=20000000000" ;;
    transient) echo "" ;;
    *) return 1 ;;
  esac
}

p5s_label() {
  case $1 in
    dlx) echo "durable queue with x-dead-letter-exchange, persistent" ;;
    prio) echo "durable queue with x-max-priority=10, persistent, priorities 0-9" ;;
    ttl) echo "durable queue, persistent, expiration 3600000 (1 h)" ;;
    bytes) echo "durable queue with x-max-length-bytes=20 GB, persistent" ;;
    transient) echo "non-durable queue, transient messages" ;;
  esac
}

# One shape on one broker: fresh broker, fill, drain, stop.
p5s_shape() { # broker shape
  local b=$1 s=$2 id=P5S-$2 q=bench-p5s-$2
  local each=$(( P5S_MESSAGES / P5S_PRODUCERS ))
  local total=$(( each * P5S_PRODUCERS ))
  local flags fill_rss drain_rss confirmed drained
  read -ra flags <<< "$(p5s_flags "$s")"
  start_broker "$b" "$id"
  start_sampler "$OUT/$id-fill.$b.rss"
  log "P5S $s on $b: fill $total x 1 KB (${flags[*]:-transient}), $P5S_PRODUCERS producers, confirm 1000 each"
  perf_capped "$P5S_CAP" "$id-fill.$b" --producers "$P5S_PRODUCERS" --consumers 0 --queue "$q" \
    --size 1024 --confirm 1000 --pmessages "$each" "${flags[@]}"
  stop_sampler
  fill_rss=$(cat "$OUT/$id-fill.$b.rss")
  confirmed=$(j .confirmed "$id-fill.$b")
  R[$s.fillrss.$b]=$fill_rss
  R[$s.rss.$b]=$fill_rss
  R[$s.count.$b]=${confirmed:-0}
  R[$s.fill.$b]=$(j .confirm_rate "$id-fill.$b")
  R[$s.filltime.$b]=$(j .duration_secs "$id-fill.$b")
  R[$s.disk.$b]=$(du -sk "$BROKER_DIR" 2>/dev/null | cut -f1 || true)
  if [[ -z $confirmed || $confirmed == 0 ]]; then
    R[$s.fail.$b]="fill: $(first_error "$id-fill.$b" "$P5S_CAP")"
    log "P5S $s on $b failed: ${R[$s.fail.$b]}"
    stop_broker
    return
  fi
  (( confirmed == total )) || R[$s.fail.$b]="fill: $confirmed of $total confirmed ($(first_error "$id-fill.$b" "$P5S_CAP"))"
  log "P5S $s on $b: $confirmed confirmed in ${R[$s.filltime.$b]}s (peak RSS $fill_rss kB," \
    "${R[$s.disk.$b]} kB on disk); draining with 1 consumer"
  start_sampler "$OUT/$id-drain.$b.rss"
  perf_capped "$P5S_CAP" "$id-drain.$b" --producers 0 --consumers 1 --predeclared --queue "$q" \
    --prefetch 1000 --multi-ack-every 500 --cmessages "$confirmed"
  stop_sampler
  drain_rss=$(cat "$OUT/$id-drain.$b.rss")
  drained=$(j .consumed "$id-drain.$b")
  R[$s.drainrss.$b]=$drain_rss
  R[$s.rss.$b]=$(( fill_rss > drain_rss ? fill_rss : drain_rss ))
  R[$s.drain.$b]=$(j .consume_rate "$id-drain.$b")
  R[$s.draintime.$b]=$(j .duration_secs "$id-drain.$b")
  R[$s.drained.$b]=${drained:-0}
  R[$s.viol.$b]=$(j .order_violations "$id-drain.$b")
  R[$s.inv.$b]=$(j .priority_inversions "$id-drain.$b")
  if [[ ${drained:-0} != "$confirmed" ]]; then
    R[$s.fail.$b]+="${R[$s.fail.$b]:+; }drain: ${drained:-0} of $confirmed ($(first_error "$id-drain.$b" "$P5S_CAP"))"
  fi
  [[ -z ${R[$s.fail.$b]:-} ]] || log "P5S $s on $b: ${R[$s.fail.$b]}"
  log "P5S $s on $b: drained ${drained:-0} in ${R[$s.draintime.$b]:-?}s (peak RSS $drain_rss kB)"
  stop_broker
}

run_P5S() {
  local s b
  for s in $P5S_SHAPES; do
    p5s_flags "$s" > /dev/null || { echo "bench/compare: unknown P5S shape '$s' (known: $P5S_ALL)" >&2; exit 2; }
  done
  for b in warren rabbitmq; do
    [[ " $BROKERS " == *" $b "* ]] || continue
    for s in $P5S_SHAPES; do p5s_shape "$b" "$s"; done
  done
}

# "no", or "yes: N× over S s (reason)", from the fill's and the drain's summaries.
p5s_blocked() { # broker shape
  blocked_summary "$OUT/P5S-$2-fill.$1.json" "$OUT/P5S-$2-drain.$1.json"
}

# "no", or "yes: N× over S s (reason)" (connection.blocked), from the warren-perf summaries
# among FILES that exist; "–" if none says. Shared with bench/delayed.sh.
blocked_summary() { # FILES...
  local files=() f
  for f in "$@"; do
    [[ -s $f ]] && files+=("$f")
  done
  (( ${#files[@]} )) || { echo "–"; return; }
  jq -rs 'map(select(.blocked != null)) as $r
    | if ($r | length) == 0 then "–"
      elif ($r | any(.blocked)) then
        "yes: \($r | map(.blocked_count) | add)× over \($r | map(.blocked_secs) | add | . * 10 | round / 10) s (\($r | map(.blocked_reason // empty) | first // "no reason"))"
      else "no" end' "${files[@]}" 2>/dev/null || echo "?"
}

p5s_blocked_target() { # warren's: none is the target
  case $(p5s_blocked warren "$1") in
    no) echo "met" ;; yes*) echo "**missed**" ;; *) echo "?" ;;
  esac
}

# Drained count, order violations, priority inversions; "in order" when all three are right.
p5s_order() { # broker shape
  [[ -n ${R[$2.drained.$1]:-} ]] || { echo "–"; return; }
  echo "${R[$2.drained.$1]} / ${R[$2.viol.$1]:-?} / ${R[$2.inv.$1]:-?}"
}

p5s_order_ok() { # broker shape -> met when all drained, no violation (no inversion for prio)
  local b=$1 s=$2
  [[ -n ${R[$s.drained.$b]:-} ]] || { echo "?"; return; }
  if [[ ${R[$s.drained.$b]} == "${R[$s.count.$b]}" && ${R[$s.viol.$b]:-x} == 0 && ( $s != prio || ${R[$s.inv.$b]:-x} == 0 ) ]]; then
    echo "met"
  else
    echo "**missed**"
  fi
}

p5s_table() {
  local s W=warren Q=rabbitmq
  for s in $P5S_SHAPES; do
    row "P5S $s: ${R[$s.count.$W]:-n/a} / ${R[$s.count.$Q]:-n/a} × 1 KB, $(p5s_label "$s"); $P5S_PRODUCERS producers, confirm 1000 each, no consumer; then drain" \
      "fill (confirmed)" "$(fmt_rate "${R[$s.fill.$W]:-}")" "$(fmt_rate "${R[$s.fill.$Q]:-}")" \
      "$(ratio "${R[$s.fill.$W]:-}" "${R[$s.fill.$Q]:-}") w/R" ""
    row "" "drain (1 consumer, prefetch 1000, ack every 500)" "$(fmt_rate "${R[$s.drain.$W]:-}")" "$(fmt_rate "${R[$s.drain.$Q]:-}")" \
      "$(ratio "${R[$s.drain.$W]:-}" "${R[$s.drain.$Q]:-}") w/R" ""
    row "" "peak RSS (fill + drain)" "$(fmt_mb "${R[$s.rss.$W]:-}")" "$(fmt_mb "${R[$s.rss.$Q]:-}")" \
      "$(ratio "${R[$s.rss.$Q]:-}" "${R[$s.rss.$W]:-}") R/w" "warren < 512 MB: $(le "${R[$s.rss.$W]:-}" $(( 512 * 1024 - 1 )))"
    row "" "peak RSS in the fill / in the drain" "$(fmt_mb "${R[$s.fillrss.$W]:-}") / $(fmt_mb "${R[$s.drainrss.$W]:-}")" \
      "$(fmt_mb "${R[$s.fillrss.$Q]:-}") / $(fmt_mb "${R[$s.drainrss.$Q]:-}")" "" ""
    row "" "connection.blocked" "$(p5s_blocked $W "$s")" "$(p5s_blocked $Q "$s")" "" "warren none: $(p5s_blocked_target "$s")"
    row "" "drained / order violations / priority inversions" "$(p5s_order $W "$s")" "$(p5s_order $Q "$s")" "" \
      "warren in order: $(p5s_order_ok $W "$s")"
    row "" "broker data dir after the fill" "$(fmt_gb "${R[$s.disk.$W]:-}")" "$(fmt_gb "${R[$s.disk.$Q]:-}")" "" ""
  done
}

# Lines under the table: the knobs, and what fell short.
p5s_notes() {
  local s b
  echo "P5S: BENCH_P5S_MESSAGES=$P5S_MESSAGES, shapes \"$P5S_SHAPES\", cap ${P5S_CAP}s per phase"
  for s in $P5S_SHAPES; do
    for b in warren rabbitmq; do
      [[ -z ${R[$s.fail.$b]:-} ]] || echo "P5S $s on $b: incomplete, ${R[$s.fail.$b]}"
    done
  done
}
