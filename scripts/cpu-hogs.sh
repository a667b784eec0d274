#!/usr/bin/env bash
# Run a command while CPU busy loops keep the cores loaded, as on a busy CI machine:
#   scripts/cpu-hogs.sh .venv/bin/pytest tests/integration/test_cleanup_after_sigkill.py
#   CPU_HOGS=4 scripts/cpu-hogs.sh bash scripts/test.sh
# CPU_HOGS (default 2) busy loops run for the command's whole life and are always stopped after it,
# also on Ctrl-C. The command's exit code is this script's exit code.
set -uo pipefail
if [ "$#" -eq 0 ]; then
  echo "usage: scripts/cpu-hogs.sh COMMAND [ARG...]   (CPU_HOGS=N busy loops, default 2)" >&2
  exit 2
fi
hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done
  wait "${hogs[@]}" 2>/dev/null
  hogs=()
}
trap stop_hogs EXIT
trap 'stop_hogs; exit 130' INT TERM
for _ in $(seq "${CPU_HOGS:-2}"); do
  ( trap - INT TERM; while :; do :; done ) &
  hogs+=("$!")
done
echo "cpu-hogs: ${#hogs[@]} busy loop(s) running (pids ${hogs[*]}) while: $*" >&2
"$@"
rc=$?
stop_hogs
echo "cpu-hogs: busy loops stopped; command exited $rc" >&2
exit "$rc"
