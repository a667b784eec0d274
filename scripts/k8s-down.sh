#!/usr/bin/env bash
# Remove everything scripts/k8s-setup.sh made, and only that: its processes (by the pids it recorded),
# the pods' containers, network namespace drill-k8s-n2, the veth pair drill-k8s0/drill-k8s1, the pod bridge
# cni-drill0, routes to the pod subnets, the DRILL-K8S-* iptables chains, kube-proxy's nftables tables,
# the node cgroups (kubepods, drill-node2) and the ip_forward setting it changed.
# and the cluster state directory (PKI, kubeconfig, etcd data, node directories, logs). Keeps the binaries and
# the pause image in $DRILL_K8S_CACHE, so the next set-up takes seconds; --purge deletes those too.
# Environment: DRILL_K8S_CACHE, DRILL_K8S_STATE as for k8s-setup.sh. Idempotent.
set -uo pipefail
CACHE="${DRILL_K8S_CACHE:-/var/cache/drill-k8s}"
STATE="${DRILL_K8S_STATE:-$CACHE/cluster}"
NETNS=drill-k8s-n2 VETH_HOST=drill-k8s0 BRIDGE=cni-drill0 POD2_NET=10.244.2.0/24
PURGE=0
[ "${1:-}" = --purge ] && PURGE=1
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "k8s-down: needs root (it removes network namespaces, iptables chains, cgroups)" >&2; exit 1; }

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/pidfile.sh"
# stop_pid NAME: SIGTERM, then SIGKILL after 10 s, the process recorded in pids/NAME.pid (and its session)
stop_pid() {
  local f="$STATE/pids/$1.pid" pid
  [ -s "$f" ] || return 0
  if pid=$(owned_pid "$f"); then  # never a recycled pid: it would be another process now
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    say "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

# the pods' containers first (while containerd still answers), then the node agents, then the control plane
for n in 2 1; do
  sock="$STATE/node$n/ctrd/containerd.sock"
  stop_pid "kubelet-node$n"
  stop_pid "kube-proxy-node$n"
  if [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1; then
    for task in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1
    done
    sleep 1
    for task in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do ctr -a "$sock" -n k8s.io tasks rm -f "$task" >/dev/null 2>&1; done
    for c in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do ctr -a "$sock" -n k8s.io containers rm "$c" >/dev/null 2>&1; done
  fi
  stop_pid "containerd-node$n"
done
stop_pid node2
for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$c"; done
# containerd-shim processes of our containerd outlive it: they name our state directory on their command line
for pid in $(pgrep -f "containerd-shim.*-address $STATE/" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null && say "stopped shim $pid"; done

# mounts the kubelets and containerd left under the state directory (pod volumes, sandboxes, node 2's cgroups)
if [ -d "$STATE" ]; then
  grep -o " $STATE/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
fi
for ns in $(ls /var/run/netns 2>/dev/null | grep '^cni-'); do   # pod network namespaces made by our CNI config:
  # a pod address of ours, or nothing but loopback left (its veth went with our bridge or node namespace)
  if ip netns exec "$ns" ip -o addr 2>/dev/null | grep -q ' 10\.244\.' \
     || ! ip netns exec "$ns" ip -o link 2>/dev/null | grep -vq ': lo:'; then
    ip netns delete "$ns" 2>/dev/null && say "deleted pod network namespace $ns"
  fi
done

# network
ip link show "$VETH_HOST" >/dev/null 2>&1 && ip link delete "$VETH_HOST" && say "deleted veth $VETH_HOST"
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE" && say "deleted bridge $BRIDGE"
ip route del "$POD2_NET" 2>/dev/null
ip netns list 2>/dev/null | grep -qw "$NETNS" && ip netns delete "$NETNS" && say "deleted network namespace $NETNS"
for chain in FORWARD:DRILL-K8S-FWD INPUT:DRILL-K8S-IN; do
  parent=${chain%%:*} own=${chain#*:}
  while iptables -D "$parent" -j "$own" 2>/dev/null; do :; done
  iptables -F "$own" 2>/dev/null && iptables -X "$own" 2>/dev/null && say "deleted iptables chain $own"
done
for table in "ip kube-proxy" "ip6 kube-proxy"; do
  nft list table $table >/dev/null 2>&1 && nft delete table $table && say "deleted nftables table $table"
done
if [ -s "$STATE/ip_forward.before" ]; then
  if pgrep -x dockerd >/dev/null; then
    say "left net.ipv4.ip_forward=1: dockerd runs and needs it (it was $(cat "$STATE/ip_forward.before") before k8s-setup.sh)"
  else
    sysctl -qw net.ipv4.ip_forward="$(cat "$STATE/ip_forward.before")" && say "restored net.ipv4.ip_forward"
  fi
  rm -f "$STATE/ip_forward.before"
fi

# cgroups the kubelets created (cgroup v1 hierarchies, or v2), deepest first
for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/drill-node2 /sys/fs/cgroup/drill-node2; do
  [ -d "$root" ] || continue
  find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
  [ -d "$root" ] && echo "k8s-down: could not remove cgroup $root (a process still in it?)" >&2
done

if [ -d "$STATE" ] && ! grep -q " $STATE/" /proc/mounts; then rm -rf "$STATE" && say "deleted $STATE"; fi
if [ "$PURGE" = 1 ]; then rm -rf "$CACHE" && say "deleted $CACHE (binaries, pause image)"; else say "binaries kept in $CACHE"; fi
say "cluster removed"
