# A Python venv at $VENV with the pinned requirements of $REQ, rebuilt only when that file
# changes (its sha256 is kept in the venv). Sourced by suites that need one (pika.sh,
# management-ui.sh); `install_pinned_venv` returns non-zero if venv or pip fail.

install_pinned_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$REQ" | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  rm -rf "$VENV"; mkdir -p "$INTEROP_CACHE"
  python3 -m venv "$VENV" || return 1
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" || return 1
  echo "$want" > "$stamp"
}
