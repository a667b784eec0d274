# Sourced by scripts/k8s-setup.sh and scripts/k8s-down.sh.
# owned_pid FILE: print the pid recorded in FILE if that process is still the one the file was written for,
# i.e. it started no later than the file was written (2 s of slack for clock-tick rounding). A process that
# died leaves its pid free for reuse (pid_max is 32768 here, and a test suite wraps it in minutes): the
# recycled pid then belongs to someone else's process, which must never be signalled. Exit 1 otherwise.
owned_pid() {
  local f=$1 pid start btime hz mtime
  [ -s "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/stat" ] || return 1
  start=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $20}') || return 1
  [ -n "$start" ] || return 1
  btime=$(awk '/^btime/ {print $2}' /proc/stat)
  hz=$(getconf CLK_TCK)
  mtime=$(stat -c %Y "$f")
  [ $((btime + start / hz)) -le $((mtime + 2)) ] || return 1
  echo "$pid"
}
