#!/usr/bin/env bash
# A local Kubernetes cluster for the kubernetes backend, built offline from the Go module proxy. Idempotent.
#
#   scripts/k8s-setup.sh                 packages, binaries (cached), one-node cluster, project images, kubeconfig
#   scripts/k8s-setup.sh --nodes 2       ... plus a second node (kubelet + containerd) in its own network namespace
#   scripts/k8s-setup.sh --build-only    packages and binaries only (no root-level network changes, no cluster)
#   scripts/k8s-setup.sh --no-images    skip building/loading the project images (drill-*:local)
#   scripts/k8s-down.sh                  removes everything this script made (processes, netns, veths, rules, cgroups)
#
# What it builds: Kubernetes v1.34.4 (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy) with `go build` from a wrapper module that requires k8s.io/kubernetes v1.34.4 and replaces each
# of its staging k8s.io/* modules with the published v0.34.4. About 12 min of both cores and 3.8 GB of Go build
# cache the first time; the binaries land in $DRILL_K8S_CACHE/v1.34.4/bin and are reused afterwards.
# The pause image is `gcc -static` of build/pause/linux/pause.c from the same module.
#
# Addresses (docs/kubernetes.md): the node veth pair 10.250.0.0/24 (host end 10.250.0.1, node 2 at 10.250.0.2,
# the node-1 end lives in network namespace drill-k8s-n1), pods 10.244.0.0/16 (10.244.1.0/24 on node 1,
# 10.244.2.0/24 on node 2), services 10.96.0.0/16. The apiserver, etcd, kubelet health and kube-proxy listen
# on 127.0.0.1 or on 10.250.0.1; none of these ranges has a route that leaves the machine.
#
# Environment:
#   DRILL_K8S_CACHE   binaries, Go module wrapper and pause image   (default /var/cache/drill-k8s)
#   DRILL_K8S_STATE   running cluster: pki, etcd data, logs, pids  (default $DRILL_K8S_CACHE/cluster)
#   SKIP_APT=1        do not apt-get (report what is missing instead)
#   K8S_BUILD_NICE    nice level of the Go build (default 19)
# Exit 0: the cluster answers with every node Ready and the kubeconfig is written. Exit 1: what is missing is printed.
set -euo pipefail
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$SCRIPTS/.."
ROOT=$PWD
K8S_VERSION=v1.34.4
STAGING_VERSION=v0.34.4
PAUSE_TAG=registry.k8s.io/pause:3.10
CACHE="${DRILL_K8S_CACHE:-/var/cache/drill-k8s}"
VCACHE="$CACHE/$K8S_VERSION"
BIN="$VCACHE/bin"
STATE="${DRILL_K8S_STATE:-$CACHE/cluster}"
NODES=1
BUILD_ONLY=0
IMAGES=1

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'k8s-setup: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES="${2:-}"; shift 2 ;;
    --nodes=*) NODES="${1#--nodes=}"; shift ;;
    --build-only) BUILD_ONLY=1; shift ;;
    --no-images) IMAGES=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (expected --nodes 1|2, --build-only, --no-images)" ;;
  esac
done
case "$NODES" in 1|2) ;; *) die "--nodes must be 1 or 2, got '$NODES'" ;; esac
[ "$(uname -s)" = Linux ] || die "needs Linux (network namespaces, cgroups, containerd); this is $(uname -s)"
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, veths, iptables, cgroups, containerd): run it with sudo"
started=$(date +%s)

# --- Debian packages ---------------------------------------------------------------------------------
need_apt=()
command -v etcd >/dev/null || need_apt+=(etcd-server)
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need_apt+=(containernetworking-plugins)
command -v nft >/dev/null || need_apt+=(nftables)
command -v kubectl >/dev/null || need_apt+=(kubernetes-client)
command -v containerd >/dev/null || need_apt+=(docker.io)
command -v ctr >/dev/null || need_apt+=(docker.io)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v gcc >/dev/null || need_apt+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
command -v iptables >/dev/null || need_apt+=(iptables)
command -v conntrack >/dev/null || need_apt+=(conntrack)
command -v ip >/dev/null || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u)
  [ "${SKIP_APT:-0}" != 1 ] || die "missing Debian packages ${need_apt[*]} and SKIP_APT=1: install them first"
  command -v apt-get >/dev/null || die "missing ${need_apt[*]} and no apt-get: install them with your package manager"
  say "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
CNI_BIN=/usr/lib/cni; [ -x "$CNI_BIN/bridge" ] || CNI_BIN=/opt/cni/bin

# --- Kubernetes binaries, built once into the cache ----------------------------------------------------
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
  csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
  pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

build_binaries() {
  command -v go >/dev/null || die "the Kubernetes binaries are not in $BIN and Go is not installed to build them: install Go >= 1.24 (https://go.dev/dl or Debian backports golang-1.24) and re-run"
  local gov; gov=$(go env GOVERSION | sed 's/^go//')
  case "$gov" in 1.2[4-9]*|1.[3-9]*) ;; *) die "Go $gov is too old to build Kubernetes $K8S_VERSION: it needs Go >= 1.24" ;; esac
  local src="$VCACHE/src"
  mkdir -p "$src" "$BIN"
  if [ ! -s "$src/go.sum" ]; then
    say "writing the wrapper module $src/go.mod (k8s.io/kubernetes $K8S_VERSION, staging modules at $STAGING_VERSION)"
    {
      printf 'module drillk8sbuild\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
      for m in "${STAGING[@]}"; do printf '\tk8s.io/%s => k8s.io/%s %s\n' "$m" "$m" "$STAGING_VERSION"; done
      printf ')\n'
    } >"$src/go.mod"
    say "go get the five commands (downloads the modules from the Go module proxy)"
    local pkgs=(); for c in "${COMPONENTS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c@$K8S_VERSION"); done
    (cd "$src" && GOFLAGS=-mod=mod go get "${pkgs[@]}") >"$VCACHE/go-get.log" 2>&1 \
      || { tail -20 "$VCACHE/go-get.log" >&2; rm -f "$src/go.sum"; die "go get failed (log $VCACHE/go-get.log): is the Go module proxy ($(go env GOPROXY)) reachable?"; }
  fi
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
  ld+=" -X k8s.io/component-base/version.gitMinor=34 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  local c t0
  for c in "${COMPONENTS[@]}"; do
    [ -x "$BIN/$c" ] && continue
    t0=$(date +%s)
    say "go build $c (nice ${K8S_BUILD_NICE:-19}; the whole build takes about 12 min on 2 cores the first time)"
    (cd "$src" && nice -n "${K8S_BUILD_NICE:-19}" go build -trimpath -ldflags "$ld" -o "$BIN/.$c.tmp" "k8s.io/kubernetes/cmd/$c") \
      >"$VCACHE/build-$c.log" 2>&1 || { tail -30 "$VCACHE/build-$c.log" >&2; die "go build of $c failed (log $VCACHE/build-$c.log)"; }
    mv "$BIN/.$c.tmp" "$BIN/$c"
    say "$c built in $(( $(date +%s) - t0 ))s"
  done
}

# write_oci_archive ROOTFS TAG ENTRYPOINT OUT: a one-layer OCI image archive that `ctr images import` reads
# (no Docker needed for the cluster itself).
write_oci_archive() {
  python3 - "$@" <<'PY'
import hashlib, io, json, platform, sys, tarfile
rootfs, tag, entry, out = sys.argv[1:5]
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
    t.add(rootfs, arcname=".")
blobs = {}
def blob(data, media):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media, "digest": digest, "size": len(data)}
layer_desc = blob(layer.getvalue(), "application/vnd.oci.image.layer.v1.tar")
config = {"architecture": arch, "os": "linux", "config": {"Entrypoint": [entry]},
          "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}
config_desc = blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc, "layers": [layer_desc]}
manifest_desc = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
manifest_desc["annotations"] = {"io.containerd.image.name": tag, "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[1]}
index = {"schemaVersion": 2, "manifests": [manifest_desc]}
with tarfile.open(out, "w") as t:
    def put(name, data):
        info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    put("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    put("index.json", json.dumps(index).encode())
    for digest, data in blobs.items():
        put("blobs/sha256/" + digest.split(":", 1)[1], data)
PY
}

build_pause() {
  [ -s "$VCACHE/pause.tar" ] && return
  local src; src=$(cd "$VCACHE/src" 2>/dev/null && go list -m -f '{{.Dir}}' k8s.io/kubernetes 2>/dev/null || true)
  [ -n "$src" ] && [ -f "$src/build/pause/linux/pause.c" ] || die "pause.c not found in the k8s.io/kubernetes module (expected <modcache>/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c)"
  say "building the pause image (gcc -static pause.c) as $PAUSE_TAG"
  local d; d=$(mktemp -d)
  mkdir -p "$d/rootfs"
  gcc -Os -static -DVERSION=3.10 -o "$d/rootfs/pause" "$src/build/pause/linux/pause.c" \
    || { rm -rf "$d"; die "gcc -static failed: install libc6-dev (static libc)"; }
  strip "$d/rootfs/pause" 2>/dev/null || true
  write_oci_archive "$d/rootfs" "$PAUSE_TAG" /pause "$VCACHE/pause.tar.tmp" || { rm -rf "$d"; die "could not write the pause image archive"; }
  rm -rf "$d"
  mv "$VCACHE/pause.tar.tmp" "$VCACHE/pause.tar"
}

build_binaries
build_pause
say "binaries in $BIN: $(cd "$BIN" && ls | tr '\n' ' ')"
if [ "$BUILD_ONLY" = 1 ]; then
  say "build done in $(( $(date +%s) - started ))s (--build-only: no cluster started)"
  exit 0
fi

# --- addresses (docs/kubernetes.md); refuse ranges this machine already uses ----------------------------
NETNS=drill-k8s-n2            # the peer end of the node veth; node 2 (--nodes 2) runs in it
VETH_HOST=drill-k8s0          # 10.250.0.1, node 1 (root network namespace)
VETH_PEER=drill-k8s1          # 10.250.0.2, inside $NETNS
BRIDGE=cni-drill0             # the pod bridge (node 1 in the root namespace, node 2 inside $NETNS)
NODE_NET=10.250.0.0/24 NODE1_IP=10.250.0.1 NODE2_IP=10.250.0.2
POD_NET=10.244.0.0/16 POD1_NET=10.244.1.0/24 POD2_NET=10.244.2.0/24
SVC_NET=10.96.0.0/16 SVC_API_IP=10.96.0.1
API_PORT=16443 ETCD_PORT=12379 ETCD_PEER_PORT=12380
mkdir -p "$STATE"/{pki,logs,pids,etcd,node1,node2}
KC="$STATE/kubeconfig"

for net in "$NODE_NET" "$POD_NET" "$SVC_NET"; do
  other=$(ip -4 -o addr show | grep -v -e " $VETH_HOST " -e " $BRIDGE " | awk '{print $2, $4}' \
    | python3 -c "import ipaddress,sys; n=ipaddress.ip_network('$net'); print(' '.join(l.split()[0] for l in sys.stdin if ipaddress.ip_interface(l.split()[1]).network.overlaps(n)))")
  [ -z "$other" ] || die "address range $net is already used on this machine (interface $other): the cluster's ranges must not overlap a real network; see docs/kubernetes.md"
done

. "$SCRIPTS/lib/pidfile.sh"
alive() { owned_pid "$STATE/pids/$1.pid" >/dev/null; }  # the recorded process itself, never a recycled pid
# put FILE: stdin into FILE, only when it differs (a running kube-proxy watches its configuration file and exits
# when it is rewritten, even with the same content: an idempotent re-run, --nodes 2, must leave it alone)
put() {
  local tmp="$1.new.$$"
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}
# launch NAME CMD...: run it in the background in its own session, pid into pids/NAME.pid, log into logs/NAME.log
launch() {
  local name=$1; shift
  if alive "$name"; then return; fi
  # a daemon must not inherit this shell's other descriptors (a lock the caller holds, CI's output pipe)
  (
    for fd in /proc/$BASHPID/fd/*; do
      n=${fd##*/}
      [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null
    done
    exec setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null
  ) &
  echo $! >"$STATE/pids/$name.pid"
}
wait_for() {  # wait_for WHAT SECONDS LOGNAME CMD...
  local what=$1 secs=$2 log=$3; shift 3
  for _ in $(seq 1 $((secs * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -n "$log" ] && ! alive "$log"; then tail -20 "$STATE/logs/$log.log" >&2; die "$log exited while waiting for $what (log $STATE/logs/$log.log)"; fi
    sleep 0.25
  done
  [ -z "$log" ] || tail -20 "$STATE/logs/$log.log" >&2
  die "$what not ready within ${secs}s${log:+ (log $STATE/logs/$log.log)}"
}

# --- network: veth into our own namespace, forwarding only between the cluster's ranges --------------------
say "network: $VETH_HOST $NODE1_IP <-> $NETNS/$VETH_PEER $NODE2_IP, pods $POD_NET, services $SVC_NET"
ip netns list | grep -qw "$NETNS" || ip netns add "$NETNS"
if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
  ip link add "$VETH_HOST" type veth peer name "$VETH_PEER"
  ip link set "$VETH_PEER" netns "$NETNS"
fi
ip addr replace "$NODE1_IP/24" dev "$VETH_HOST"
ip link set "$VETH_HOST" up
ip netns exec "$NETNS" ip addr replace "$NODE2_IP/24" dev "$VETH_PEER"
ip netns exec "$NETNS" ip link set "$VETH_PEER" up
ip netns exec "$NETNS" ip link set lo up      # no default route in there: nothing can leave through it
if [ "$(sysctl -n net.ipv4.ip_forward)" != 1 ]; then
  [ -e "$STATE/ip_forward.before" ] || echo 0 >"$STATE/ip_forward.before"
  sysctl -qw net.ipv4.ip_forward=1
fi
# filter rules in our own chains (k8s-down.sh deletes them): pods talk to pods and nodes, nothing else is
# forwarded for them; the node addresses answer only on loopback, the veth and the pod bridge.
iptables -N DRILL-K8S-FWD 2>/dev/null || iptables -F DRILL-K8S-FWD
iptables -A DRILL-K8S-FWD -s "$POD_NET" -d "$POD_NET" -j ACCEPT
iptables -A DRILL-K8S-FWD -s "$POD_NET" -d "$NODE_NET" -j ACCEPT
iptables -A DRILL-K8S-FWD -s "$NODE_NET" -d "$POD_NET" -j ACCEPT
iptables -A DRILL-K8S-FWD -s "$POD_NET" -j DROP
iptables -A DRILL-K8S-FWD -d "$POD_NET" -j DROP
iptables -C FORWARD -j DRILL-K8S-FWD 2>/dev/null || iptables -I FORWARD 1 -j DRILL-K8S-FWD
iptables -N DRILL-K8S-IN 2>/dev/null || iptables -F DRILL-K8S-IN
for ifc in lo "$VETH_HOST" "$BRIDGE"; do iptables -A DRILL-K8S-IN -d "$NODE_NET" -i "$ifc" -j RETURN; done
iptables -A DRILL-K8S-IN -d "$NODE_NET" -j DROP
iptables -C INPUT -j DRILL-K8S-IN 2>/dev/null || iptables -I INPUT 1 -j DRILL-K8S-IN

# --- PKI (openssl) and kubeconfig -----------------------------------------------------------------------
P="$STATE/pki"
if [ ! -s "$P/admin.crt" ]; then
  say "PKI: CA, apiserver and admin certificates, service-account keys ($P)"
  (
    cd "$P"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 -subj "/CN=drill-k8s-ca" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
      "$NODE1_IP" "$SVC_API_IP" >apiserver.ext
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 365 -extfile apiserver.ext 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/CN=drill-admin/O=system:masters" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 365 -extfile client.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  ) || die "openssl failed while making the cluster's certificates in $P"
fi
rm -f "$KC"
kubectl config --kubeconfig="$KC" set-cluster drill-k8s --server="https://$NODE1_IP:$API_PORT" --certificate-authority="$P/ca.crt" --embed-certs >/dev/null
kubectl config --kubeconfig="$KC" set-credentials drill-admin --client-certificate="$P/admin.crt" --client-key="$P/admin.key" --embed-certs >/dev/null
kubectl config --kubeconfig="$KC" set-context drill-k8s --cluster=drill-k8s --user=drill-admin >/dev/null
kubectl config --kubeconfig="$KC" use-context drill-k8s >/dev/null
chmod 600 "$KC"

# --- node configuration: containerd, CNI, kubelet, kube-proxy -------------------------------------------
# node_config N NODE_IP POD_SUBNET: writes $STATE/nodeN/{containerd.toml,net.d/10-drill.conflist,kubelet.yaml,proxy.yaml}
node_config() {
  local n=$1 ip=$2 subnet=$3 d="$STATE/node$1"
  mkdir -p "$d"/{net.d,kubelet,ctrd}
  put "$d/containerd.toml" <<TOML
version = 2
root = "$d/ctrd/root"
state = "$d/ctrd/state"
[grpc]
  address = "$d/ctrd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "$PAUSE_TAG"
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$d/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
TOML
  put "$d/net.d/10-drill.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "drill-k8s",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "dataDir": "$d/ipam",
              "routes": [{"dst": "$POD_NET"}, {"dst": "$SVC_NET"}, {"dst": "$NODE_NET"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
  put "$d/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
${CGROUP_ROOT:+cgroupRoot: $CGROUP_ROOT}
containerRuntimeEndpoint: unix://$d/ctrd/containerd.sock
failSwapOn: false
address: $ip
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: $((10248 + (n - 1) * 100))
readOnlyPort: 0
resolvConf: /etc/resolv.conf
podCIDR: $subnet
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
  put "$d/proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: $KC}
hostnameOverride: drill-node$n
clusterCIDR: $POD_NET
masqueradeAll: true
nodePortAddresses: ["$ip/32"]
metricsBindAddress: 127.0.0.1:$((10249 + (n - 1) * 100))
healthzBindAddress: 127.0.0.1:$((10256 + (n - 1) * 100))
conntrack: {maxPerCore: 0}
YAML
}
CGROUP_ROOT="" node_config 1 "$NODE1_IP" "$POD1_NET"

# --- control plane ------------------------------------------------------------------------------------
say "etcd on 127.0.0.1:$ETCD_PORT"
launch etcd etcd --name drill-k8s --data-dir "$STATE/etcd/data" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster "drill-k8s=http://127.0.0.1:$ETCD_PEER_PORT" \
  --listen-metrics-urls "http://127.0.0.1:12381"
wait_for "etcd" 30 etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

say "kube-apiserver on $NODE1_IP:$API_PORT"
launch kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address="$NODE1_IP" \
  --advertise-address="$NODE1_IP" --secure-port="$API_PORT" --cert-dir="$STATE/apiserver" \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range="$SVC_NET" \
  --authorization-mode=Node,RBAC --kubelet-client-certificate="$P/admin.crt" --kubelet-client-key="$P/admin.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname --allow-privileged=true --profiling=false
wait_for "kube-apiserver" 90 kube-apiserver kubectl --kubeconfig="$KC" get --raw /readyz

say "kube-controller-manager and kube-scheduler on 127.0.0.1"
launch kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$KC" --authentication-kubeconfig="$KC" \
  --authorization-kubeconfig="$KC" --bind-address=127.0.0.1 --secure-port=10257 --service-account-private-key-file="$P/sa.key" \
  --root-ca-file="$P/ca.crt" --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --use-service-account-credentials=true --leader-elect=false --controllers='*,-nodeipam' --node-monitor-grace-period=20s
launch kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$KC" --authentication-kubeconfig="$KC" \
  --authorization-kubeconfig="$KC" --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false

# --- node 1: containerd, pause image, kubelet, kube-proxy ---------------------------------------------------
D1="$STATE/node1"
say "node drill-node1 ($NODE1_IP): containerd, kubelet, kube-proxy"
launch containerd-node1 containerd --config "$D1/containerd.toml"
wait_for "containerd (node 1)" 30 containerd-node1 ctr -a "$D1/ctrd/containerd.sock" version
CTR1=(ctr -a "$D1/ctrd/containerd.sock" -n k8s.io)
"${CTR1[@]}" images ls -q | grep -qx "$PAUSE_TAG" || "${CTR1[@]}" images import "$VCACHE/pause.tar" >/dev/null \
  || die "ctr images import of the pause image failed"
launch kubelet-node1 "$BIN/kubelet" --config="$D1/kubelet.yaml" --kubeconfig="$KC" --root-dir="$D1/kubelet" \
  --hostname-override=drill-node1 --node-ip="$NODE1_IP" --node-labels=drill.node=1
launch kube-proxy-node1 "$BIN/kube-proxy" --config="$D1/proxy.yaml"
wait_for "node drill-node1 Ready" 90 kubelet-node1 \
  sh -c "kubectl --kubeconfig='$KC' get node drill-node1 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"

# --- node 2 (--nodes 2): its own containerd, kubelet and kube-proxy inside $NETNS ----------------------------
if [ "$NODES" = 2 ]; then
  D2="$STATE/node2"
  say "node drill-node2 ($NODE2_IP, network namespace $NETNS): containerd, kubelet, kube-proxy"
  for hierarchy in /sys/fs/cgroup/*/; do   # its own cgroup root in every hierarchy (cgroup v1, systemd's too)
    mkdir -p "${hierarchy}drill-node2" 2>/dev/null || true
  done
  [ -e /sys/fs/cgroup/cgroup.controllers ] && mkdir -p /sys/fs/cgroup/drill-node2   # cgroup v2
  if [ -d /sys/fs/cgroup/cpuset/drill-node2 ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >/sys/fs/cgroup/cpuset/drill-node2/cpuset.cpus
    cat /sys/fs/cgroup/cpuset/cpuset.mems >/sys/fs/cgroup/cpuset/drill-node2/cpuset.mems
  fi
  CGROUP_ROOT=/drill-node2 node_config 2 "$NODE2_IP" "$POD2_NET"
  ip route replace "$POD2_NET" via "$NODE2_IP" dev "$VETH_HOST"
  ip netns exec "$NETNS" ip route replace "$POD1_NET" via "$NODE1_IP" dev "$VETH_PEER"
  ip netns exec "$NETNS" ip route replace "$SVC_NET" via "$NODE1_IP" dev "$VETH_PEER"
  ip netns exec "$NETNS" sysctl -qw net.ipv4.ip_forward=1
  cat >"$D2/start.sh" <<START
#!/bin/bash
# node 2: runs in network namespace $NETNS with a private mount namespace (its own /sys, cgroups re-bound)
set -e
mkdir -p $D2/cg
mount --rbind /sys/fs/cgroup $D2/cg
mount -t sysfs sysfs /sys
mount --rbind $D2/cg /sys/fs/cgroup
containerd --config $D2/containerd.toml >>$STATE/logs/containerd-node2.log 2>&1 &
echo \$! >$STATE/pids/containerd-node2.pid
for _ in \$(seq 1 120); do ctr -a $D2/ctrd/containerd.sock version >/dev/null 2>&1 && break; sleep 0.25; done
ctr -a $D2/ctrd/containerd.sock -n k8s.io images import $VCACHE/pause.tar >/dev/null
$BIN/kubelet --config=$D2/kubelet.yaml --kubeconfig=$KC --root-dir=$D2/kubelet --hostname-override=drill-node2 \
  --node-ip=$NODE2_IP --node-labels=drill.node=2 >>$STATE/logs/kubelet-node2.log 2>&1 &
echo \$! >$STATE/pids/kubelet-node2.pid
$BIN/kube-proxy --config=$D2/proxy.yaml >>$STATE/logs/kube-proxy-node2.log 2>&1 &
echo \$! >$STATE/pids/kube-proxy-node2.pid
wait
START
  chmod +x "$D2/start.sh"
  if ! alive kubelet-node2; then
    for stale in kube-proxy-node2 containerd-node2 node2; do   # what a failed earlier start left running
      if pid=$(owned_pid "$STATE/pids/$stale.pid"); then kill "$pid" 2>/dev/null; sleep 1; fi
    done
    launch node2 nsenter --net="/var/run/netns/$NETNS" unshare -m --propagation private "$D2/start.sh"
  fi
  wait_for "node drill-node2 Ready" 120 node2 \
    sh -c "kubectl --kubeconfig='$KC' get node drill-node2 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
fi

# --- the project's images, from the local Docker engine into every node's containerd -----------------------
PROJECT_IMAGES=(drill-mockstack:local drill-toxiproxy:local drill-prometheus:local drill-alertmanager:local)
if [ "$IMAGES" = 1 ]; then
  missing=()
  for img in "${PROJECT_IMAGES[@]}"; do "${CTR1[@]}" images ls -q | grep -qx "docker.io/library/$img" || missing+=("$img"); done
  if [ ${#missing[@]} -gt 0 ] || [ "${FORCE_IMAGES:-0}" = 1 ]; then
    say "project images: scripts/docker-setup.sh and scripts/build-images.sh (Docker builds them offline, cached)"
    bash scripts/docker-setup.sh || die "no Docker engine to build the project images: see the message above (or re-run with --no-images)"
    bash scripts/build-images.sh || die "scripts/build-images.sh failed: see above (or re-run with --no-images)"
    say "loading ${PROJECT_IMAGES[*]} into containerd (node 1)"
    docker save "${PROJECT_IMAGES[@]}" | "${CTR1[@]}" images import - >/dev/null || die "ctr images import of the project images failed"
  else
    say "project images already in containerd (node 1): ${PROJECT_IMAGES[*]} (FORCE_IMAGES=1 reloads them)"
  fi
  if [ "$NODES" = 2 ]; then
    CTR2=(ctr -a "$STATE/node2/ctrd/containerd.sock" -n k8s.io)
    if ! "${CTR2[@]}" images ls -q | grep -qx "docker.io/library/drill-mockstack:local" || [ "${FORCE_IMAGES:-0}" = 1 ]; then
      say "loading the project images into containerd (node 2)"
      "${CTR1[@]}" images export - "${PROJECT_IMAGES[@]/#/docker.io/library/}" | "${CTR2[@]}" images import - >/dev/null \
        || die "ctr images import of the project images on node 2 failed"
    fi
  fi
  # The kubelet lists a node's images in the node's status only every so often (its image cache refreshes
  # every 30 s, the status every 10 s), and the backend checks that list before it deploys anything: a drill
  # started right after an import was refused with "image(s) missing from the node(s)". Wait for the list.
  node_lists_images() {  # node_lists_images NODE: the node's status names every project image
    local names
    names=$(kubectl --kubeconfig="$KC" get node "$1" -o jsonpath='{.status.images[*].names}') || return 1
    for img in "${PROJECT_IMAGES[@]}"; do [[ "$names" == *"docker.io/library/$img"* ]] || return 1; done
  }
  for n in $(seq 1 "$NODES"); do
    wait_for "drill-node$n to list the project images in its status" 180 "" node_lists_images "drill-node$n"
  done
fi

# --- where things are --------------------------------------------------------------------------------------
python3 - "$STATE/runtime.json" "$NODES" "$STATE" "$NODE_NET" "$NETNS" "$VETH_PEER" "$POD1_NET" "$SVC_NET" \
  "$NODE1_IP" "$POD2_NET" "$NODE2_IP" "$VETH_HOST" <<'PY'
import json, sys
path, nodes, state, node_net, netns, peer, pod1, svc, ip1, pod2, ip2, veth_host = sys.argv[1:2] + [int(sys.argv[2])] + sys.argv[3:]
info = {f"drill-node{n}": {"containerd": f"{state}/node{n}/ctrd/containerd.sock"} for n in range(1, nodes + 1)}
if nodes == 2:  # node loss: this link down cuts node 2 off; up plus these routes brings it back
    info["drill-node2"]["link"] = {"netns": netns, "device": peer,
                                   "routes": [f"{pod1} via {ip1}", f"{svc} via {ip1}"],
                                   "host_routes": [f"{pod2} via {ip2} dev {veth_host}"]}
json.dump({"node_net": node_net,  # the only non-loopback range the kubernetes backend accepts an API server in
           "nodes": info}, open(path, "w"), indent=2)
PY
say "cluster ready in $(( $(date +%s) - started ))s: $(kubectl --kubeconfig="$KC" get nodes --no-headers | awk '{print $1"="$2}' | tr '\n' ' ')"
cat <<USE
  kubeconfig: $KC   (the kubernetes backend finds it there by default; DRILL_KUBECONFIG overrides)
  by hand:    export KUBECONFIG=$KC; kubectl get nodes
  drills:     .venv/bin/drill run --backend kubernetes --quarter Q1
  stop:       scripts/k8s-down.sh   (logs: $STATE/logs)
USE
