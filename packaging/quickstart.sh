#!/usr/bin/env bash
# Builds iotkube, creates a cluster in ./iotkube-data (once), starts iotkube-server in the
# background and shows the cluster with kubectl. Run it again to restart the server.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
data="${IOTKUBE_DATA:-$top/iotkube-data}"
port="${IOTKUBE_PORT:-6443}"

packaging/install-deps.sh --tools
swift build -c release --static-swift-stdlib
bin="$top/.build/release"
kubectl="$top/.build/test-tools/bin/kubectl"

if [ ! -f "$data/pki/ca.crt" ]; then
    "$bin/iotkube-server" init --data-dir "$data" --port "$port"
fi
if [ -f "$data/server.pid" ] && kill -0 "$(cat "$data/server.pid")" 2>/dev/null; then
    kill "$(cat "$data/server.pid")" && sleep 1
fi
nohup "$bin/iotkube-server" run --data-dir "$data" --listen "127.0.0.1:$port" > "$data/server.log" 2>&1 &
echo $! > "$data/server.pid"
for _ in $(seq 100); do
    "$kubectl" --kubeconfig "$data/admin.kubeconfig" get --raw /healthz > /dev/null 2>&1 && break
    sleep 0.1
done
echo "iotkube-server is running (log: $data/server.log, stop: kill \$(cat $data/server.pid))"
"$kubectl" --kubeconfig "$data/admin.kubeconfig" get namespaces
"$kubectl" --kubeconfig "$data/admin.kubeconfig" get nodes
echo
echo "A join token for a board (iotkube-agent join <token>):"
"$bin/iotkube-server" token create --data-dir "$data" --ttl 24h | tail -n 1
