# bench/scale_report.sh: the table rows, notes and plots of the scale scenarios S1-S6 (issue #16),
# sourced by bench/compare after bench/scale.sh. Every cell is the median over the repetitions
# of one point (med, from $OUT/scale.csv); the plots are bench/plot_scale.py's.

# Python with matplotlib for the plots: the system's, else a venv made on first use. It lives
# outside the checkout so that CI's fresh clones on the same machine find it.
SCALE_VENV=${BENCH_SCALE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/warren-bench-venv}
SCALE_PLOTS=""   # PNGs written, for the notes

# Cell formats ("–" when empty).
fmt_per() { awk -v v="${1:-}" -v u="$2" 'BEGIN { if (v == "") print "–"; else if (v >= 1e6) printf "%.2fM %s", v/1e6, u; else if (v >= 1e3) printf "%.1fk %s", v/1e3, u; else printf "%.0f %s", v, u }'; }
fmt_us2() { awk -v v="${1:-}" 'BEGIN { if (v == "") print "–"; else if (v < 10) printf "%.2f µs", v; else printf "%.1f µs", v }'; }
fmt_kb2() { awk -v v="${1:-}" 'BEGIN { if (v == "") print "–"; else if (v < 10) printf "%.2f kB", v; else printf "%.1f kB", v }'; }
fmt_pct() { awk -v v="${1:-}" 'BEGIN { if (v == "") print "–"; else printf "%.1f%%", v }'; }
fmt_x() { awk -v v="${1:-}" 'BEGIN { if (v == "") print "–"; else printf "%.2f×", v }'; }
fmt_mbs() { awk -v v="${1:-}" 'BEGIN { if (v == "") print "–"; else if (v < 10) printf "%.2f MB/s", v; else printf "%.0f MB/s", v }'; }
fmt_size() { awk -v v="$1" 'BEGIN { if (v >= 1048576) printf "%g MB", v/1048576; else if (v >= 1024) printf "%g KB", v/1024; else printf "%d B", v }'; }

# The median of one metric for both brokers, formatted: scell fmt scenario point metric broker
scell() { "$1" "$(med "$2" "$3" "$5" "$4")"; }
# A row of one metric: srow metric-label fmt scenario point metric ratio-direction(w/R|R/w|none) target
srow() {
  local label=$1 f=$2 sc=$3 pt=$4 m=$5 dir=$6 tgt=${7:-} w q rt=""
  w=$(med "$sc" "$pt" warren "$m"); q=$(med "$sc" "$pt" rabbitmq "$m")
  case $dir in
    w/R) rt="$(ratio "$w" "$q") w/R" ;;
    R/w) rt="$(ratio "$q" "$w") R/w" ;;
  esac
  row "" "$label" "$("$f" "$w")" "$("$f" "$q")" "$rt" "$tgt"
}
# The first row of a point: its description in the first column.
shead() { row "$1" "" "" "" "" ""; }

reps_label() { if (( $1 == 1 )); then echo "1 run"; else echo "median of $1"; fi; }

s1_table() {
  local n
  for n in $S1_QUEUES; do
    shead "S1 $n durable queues declared, then idle ${S1_IDLE}s ($(reps_label "$SCALE_REPS"))"
    srow "declare rate (queues/s)" "fmt_per_q" S1 "$n" rate w/R
    srow "RSS per idle queue" fmt_kb2 S1 "$n" perq R/w \
      "≤ ⅕ of RabbitMQ's: $(ge "$(med S1 "$n" rabbitmq perq)" "$(med S1 "$n" warren perq)" 5)"
    row "" "RSS ${SCALE_SETTLE} s after start → after the idle time (declared w / R: $(med S1 "$n" warren declared) / $(med S1 "$n" rabbitmq declared))" \
      "$(scell fmt_mb S1 "$n" base warren) → $(scell fmt_mb S1 "$n" rss warren)" \
      "$(scell fmt_mb S1 "$n" base rabbitmq) → $(scell fmt_mb S1 "$n" rss rabbitmq)" "" ""
    srow "idle broker CPU (% of a core)" fmt_pct S1 "$n" idlecpu R/w
    srow "broker CPU per declare" fmt_us2 S1 "$n" declcpu R/w
  done
}
fmt_per_q() { fmt_per "$1" "/s"; }
fmt_per_c() { fmt_per "$1" "conn/s"; }

# S2's target: warren's CPU per publish at the largest point within 3× of the smallest point's.
s2_target() {
  local first last a z
  first=$(sorted_nums "$S2_BINDINGS" | head -1)
  last=$(sorted_nums "$S2_BINDINGS" | tail -1)
  [[ $1 == "$last" && $first != "$last" ]] || return 0
  a=$(med S2 "$first" warren cpu); z=$(med S2 "$last" warren cpu)
  if [[ -z $a || -z $z ]]; then echo "warren ≤ 3× its cost at $first: ?"; return; fi
  echo "warren ≤ 3× its cost at $first: $(ratio "$z" "$a"), $(awk -v a="$a" -v z="$z" 'BEGIN { if (z <= 3 * a) print "met"; else print "**missed**" }')$([[ $last == 100000 ]] || echo " (the target is at 100000)")"
}

s2_table() {
  local n
  for n in $S2_BINDINGS; do
    shead "S2 $n bindings (\`*\` and \`#\` patterns) on one topic exchange, 1 producer → 1 auto-ack consumer, 16 B, ${SCALE_SECS}s ($(reps_label "$SCALE_REPS"))"
    srow "routed (consumed)" fmt_rate S2 "$n" routed w/R
    srow "broker CPU per publish" fmt_us2 S2 "$n" cpu R/w "$(s2_target "$n")"
    srow "published" fmt_rate S2 "$n" pub w/R
    srow "bind rate (bindings/s)" "fmt_per_q" S2 "$n" bindrate w/R
  done
}

s3_fair() { # point broker -> "1.05× (400-420)", or how many consumers got nothing
  local s f; s=$(med S3 "$1" "$2" starved)
  if [[ -n $s && $s != 0 ]]; then echo "∞ ($s got none)"; return; fi
  f=$(med S3 "$1" "$2" fairness)
  [[ -n $f ]] || { echo "–"; return; }
  echo "$(fmt_x "$f") ($(med S3 "$1" "$2" mincount)–$(med S3 "$1" "$2" maxcount))"
}

s3_table() {
  local n
  for n in $S3_CONSUMERS; do
    shead "S3 $n consumer$([[ $n == 1 ]] || echo s) on one queue (own connections), prefetch 10, ack each; 16 B backlog ($(reps_label "$SCALE_REPS"))"
    srow "delivered" fmt_rate S3 "$n" delivered w/R
    row "" "fairness: max/min of per-consumer counts (min–max)" "$(s3_fair "$n" warren)" "$(s3_fair "$n" rabbitmq)" "" ""
    srow "broker CPU per delivery" fmt_us2 S3 "$n" cpu R/w
    srow "peak RSS" fmt_mb S3 "$n" peak R/w
  done
}

# Why a point did not run on a broker ("" if it ran): the na record of the sweep.
s4_na() { # point broker
  awk -F, -v p="$1" -v b="$2" '$1 == "S4" && $2 == p && $3 == b && $5 == "na" { print $6; exit }' "$SCALE_CSV" 2>/dev/null
}

# A broker's cell: the median, or n/a and why.
s4_cell() { # fmt point metric broker [short]
  local na; na=$(s4_na "$2" "$4")
  if [[ -z $na ]]; then scell "$1" S4 "$2" "$3" "$4"
  elif [[ -n ${5:-} ]]; then echo "n/a"
  else echo "n/a: $na"; fi
}

s4_table() {
  local n tgt w
  for n in $(sorted_nums "$S4_CONNECTIONS $S4_EXTRA"); do
    w=$(med S4 "$n" warren perconn)
    tgt=""
    if [[ $n == 50000 ]]; then
      if [[ -n $(s4_na "$n" warren) ]]; then tgt="warren ≤ 15 kB at 50000: n/a (fd limit)"; else tgt="warren ≤ 15 kB: $(le "$w" 15)"; fi
    elif [[ " $S4_EXTRA " == *" $n "* && -n $w ]]; then
      tgt="warren ≤ 15 kB (asked at 50000; here at $n): $(le "$w" 15)"
    fi
    shead "S4 $n idle connections, 2 channels each, held ${S4_HOLD}s$([[ " $S4_EXTRA " == *" $n "* ]] && echo ", the largest that fits a broker under the fd limit") ($(reps_label "$SCALE_REPS"))"
    row "" "RSS per connection" "$(s4_cell fmt_kb2 "$n" perconn warren)" "$(s4_cell fmt_kb2 "$n" perconn rabbitmq)" \
      "$(ratio "$(med S4 "$n" rabbitmq perconn)" "$w") R/w" "$tgt"
    row "" "accept rate" "$(s4_cell fmt_per_c "$n" rate warren short)" "$(s4_cell fmt_per_c "$n" rate rabbitmq short)" \
      "$(ratio "$(med S4 "$n" warren rate)" "$(med S4 "$n" rabbitmq rate)") w/R" ""
    row "" "RSS after settling → with $n (opened w / R: $(med S4 "$n" warren opened) / $(med S4 "$n" rabbitmq opened))" \
      "$(scell fmt_mb S4 "$n" base warren) → $(scell fmt_mb S4 "$n" peak warren)" \
      "$(scell fmt_mb S4 "$n" base rabbitmq) → $(scell fmt_mb S4 "$n" peak rabbitmq)" "" ""
    row "" "broker fds per connection" "$(scell fmt_x1 S4 "$n" fdpc warren)" "$(scell fmt_x1 S4 "$n" fdpc rabbitmq)" "" ""
  done
}
fmt_x1() { awk -v v="${1:-}" 'BEGIN { if (v == "") print "–"; else printf "%.2f", v }'; }

# Copies per message from $OUT/S5-copies.json: {"warren": {"<size>": {"transient": N, ...}}, ...}
s5_copies() { # broker size mode
  local f=${BENCH_S5_COPIES:-$OUT/S5-copies.json}
  [[ -s $f ]] || { echo "–"; return; }
  jq -r --arg b "$1" --arg s "$2" --arg m "$3" '.[$b][$s][$m] // "–"' "$f" 2>/dev/null || echo "–"
}

s5_table() {
  local s m pt w tgt
  for s in $S5_SIZES; do
    for m in $S5_MODES; do
      pt=$s-$m; w=$(s5_window "$s")
      tgt=""
      (( s >= 16777216 )) && tgt="≥ 2× RabbitMQ's: $(ge "$(med S5 "$pt" warren mbs)" "$(med S5 "$pt" rabbitmq mbs)" 2)"
      shead "S5 $(fmt_size "$s") $m, 1 → 1, confirm $w, prefetch $w, ${SCALE_SECS}s ($(reps_label "$SCALE_REPS"))"
      srow "through (consumed)" fmt_mbs S5 "$pt" mbs w/R "$tgt"
      srow "peak RSS" fmt_mb S5 "$pt" peak R/w
      srow "broker CPU per message" fmt_us2 S5 "$pt" cpu R/w
      row "" "copies per message (measured apart)" "$(s5_copies warren "$s" "$m")" "$(s5_copies rabbitmq "$s" "$m")" "" ""
    done
  done
}

s6_table() {
  local d
  for d in $S6_DEPTHS; do
    shead "S6 $d × 100 B persistent into one durable classic queue (4 producers, confirm 1000 each), then drained by 1 consumer (prefetch 1000, ack every 500) ($(reps_label "$S6_REPS"))"
    srow "fill (confirmed)" fmt_rate S6 "$d" fill w/R
    srow "drain" fmt_rate S6 "$d" drain w/R
    srow "peak RSS (fill + drain)" fmt_mb S6 "$d" peak R/w
    row "" "peak RSS in the fill / in the drain" \
      "$(scell fmt_mb S6 "$d" fillrss warren) / $(scell fmt_mb S6 "$d" drainrss warren)" \
      "$(scell fmt_mb S6 "$d" fillrss rabbitmq) / $(scell fmt_mb S6 "$d" drainrss rabbitmq)" "" ""
    row "" "broker CPU per message: fill / drain" \
      "$(scell fmt_us2 S6 "$d" fillcpu warren) / $(scell fmt_us2 S6 "$d" draincpu warren)" \
      "$(scell fmt_us2 S6 "$d" fillcpu rabbitmq) / $(scell fmt_us2 S6 "$d" draincpu rabbitmq)" "" ""
    row "" "confirmed / drained" "$(med S6 "$d" warren count) / $(med S6 "$d" warren drained)" \
      "$(med S6 "$d" rabbitmq count) / $(med S6 "$d" rabbitmq drained)" "" ""
  done
}

scale_table() { # scenario
  case $1 in
    S1) s1_table ;; S2) s2_table ;; S3) s3_table ;; S4) s4_table ;; S5) s5_table ;; S6) s6_table ;;
  esac
}

# Lines under the table: the knobs, what was skipped or fell short, where the plots are.
scale_notes() {
  local s k b
  local knobs="BENCH_SCALE_REPS=$SCALE_REPS BENCH_SCALE_SECONDS=$SCALE_SECS BENCH_SCALE_SETTLE=$SCALE_SETTLE"
  ran() { [[ " $SCENARIOS " == *" $1 "* ]]; }
  if ran S1; then knobs+=" BENCH_S1_QUEUES=\"$S1_QUEUES\" BENCH_S1_IDLE=$S1_IDLE"; fi
  if ran S2; then knobs+=" BENCH_S2_BINDINGS=\"$S2_BINDINGS\""; fi
  if ran S3; then knobs+=" BENCH_S3_CONSUMERS=\"$S3_CONSUMERS\" BENCH_S3_BACKLOG=$S3_BACKLOG"; fi
  if ran S4; then knobs+=" BENCH_S4_CONNECTIONS=\"$S4_CONNECTIONS\" BENCH_S4_HOLD=$S4_HOLD"; fi
  if ran S5; then knobs+=" BENCH_S5_SIZES=\"$S5_SIZES\" BENCH_S5_MODES=\"$S5_MODES\""; fi
  if ran S6; then knobs+=" BENCH_S6_DEPTHS=\"$S6_DEPTHS\" BENCH_S6_REPS=$S6_REPS"; fi
  echo "scale: $([[ $SCALE_SMOKE == 1 ]] && echo "SMOKE, ")$knobs; raw figures of every run: $SCALE_CSV"
  if ran S4 && grep -q '^S4,.*,na,' "$SCALE_CSV" 2>/dev/null; then
    echo "S4: not run (fd hard limit $S4_HARD, which cannot be raised here without CAP_SYS_RESOURCE):" \
      "$(awk -F, '$1 == "S4" && $5 == "na" { printf "%s on %s (%s); ", $2, $3, $6 }' "$SCALE_CSV")${S4_EXTRA:+run instead: $S4_EXTRA}"
  fi
  if ran S3 && grep -q '^S3,.*,ranout,' "$SCALE_CSV"; then
    echo "S3: some runs emptied the backlog before their end (rate taken to the last delivery; raise BENCH_S3_BACKLOG):" \
      "$(awk -F, '$1 == "S3" && $5 == "ranout" { printf "%s on %s rep %s; ", $2, $3, $4 }' "$SCALE_CSV")"
  fi
  if ran S5; then
    if [[ -s ${BENCH_S5_COPIES:-$OUT/S5-copies.json} ]]; then echo "S5: copies per message from ${BENCH_S5_COPIES:-$OUT/S5-copies.json}"
    else echo "S5: copies per message are not measured here: \"–\" unless BENCH_S5_COPIES (or \$OUT/S5-copies.json) gives them (see bench/scale_report.sh)"; fi
  fi
  for k in "${!R[@]}"; do
    [[ $k == S[1-6].*.why.* ]] || continue
    s=${k%%.why.*}; b=${k##*.}
    echo "$s on $b: ${R[$k]}"
  done | sort
  [[ -z $SCALE_PLOTS ]] || echo "plots: $SCALE_PLOTS"
}

# A python3 that has matplotlib, or nothing (with a warning).
scale_python() {
  if python3 -c 'import matplotlib' >/dev/null 2>&1; then echo python3; return; fi
  local py=$SCALE_VENV/bin/python
  if ! "$py" -c 'import matplotlib' >/dev/null 2>&1; then
    log "making the plotting venv $SCALE_VENV (python3 -m venv, pip install matplotlib)"
    if ! { python3 -m venv "$SCALE_VENV" && timeout 600 "$py" -m pip install -q matplotlib; } >> "$OUT/venv.log" 2>&1; then
      log "warning: no matplotlib (see $OUT/venv.log): no plots"
      return 0
    fi
  fi
  echo "$py"
}

# One PNG per scale scenario run, in $OUT (and in bench/plots with BENCH_SCALE_SAVE_PLOTS=1).
scale_plot() {
  local py s list=""
  for s in $SCENARIOS; do [[ $s == S[1-6] ]] && list+="$s,"; done
  [[ -n $list ]] || return 0
  if [[ ${BENCH_SCALE_PLOT:-1} == 0 ]]; then return 0; fi
  py=$(scale_python)
  [[ -n $py ]] || return 0
  if ! "$py" "$ROOT/bench/plot_scale.py" "$SCALE_CSV" "$OUT" "${list%,}" > "$OUT/plots.log" 2>&1; then
    log "warning: plotting failed (see $OUT/plots.log)"
    return 0
  fi
  SCALE_PLOTS=$(tr '\n' ' ' < "$OUT/plots.log")
  if [[ ${BENCH_SCALE_SAVE_PLOTS:-0} == 1 ]]; then
    mkdir -p "$ROOT/bench/plots"
    # shellcheck disable=SC2086
    cp $SCALE_PLOTS "$ROOT/bench/plots/"
    log "plots copied to bench/plots/"
  fi
}
