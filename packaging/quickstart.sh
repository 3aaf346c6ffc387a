#!/usr/bin/env bash
# Builds iotkube, creates a cluster in ./iotkube-data (once), starts iotkube-server in the
# background, joins this machine as a node with iotkube-agent (config in ./iotkube-data/agent)
# and shows the cluster with kubectl. Run it again to restart both. Other boards reach the server
# at this machine's primary address (IOTKUBE_ADVERTISE_ADDRESS chooses another one when the
# cluster is created).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
data="${IOTKUBE_DATA:-$top/iotkube-data}"
port="${IOTKUBE_PORT:-6443}"

packaging/install-deps.sh --tools
unset SWIFT_SDK   # built for this machine, which runs it
source packaging/release-build.sh   # the flags packaging/build-deb.sh builds with: one build
"${release_build[@]}"
bin="$top/.build/release"
kubectl="$top/.build/test-tools/bin/kubectl"

if [ ! -f "$data/pki/ca.crt" ]; then
    "$bin/iotkube-server" init --data-dir "$data" --port "$port" ${IOTKUBE_ADVERTISE_ADDRESS:+--advertise-address "$IOTKUBE_ADVERTISE_ADDRESS"}
fi
# Stops the process in pid file $1 and waits (up to 30 s) until it is gone.
stop_old() {
    local pid
    [ -f "$1" ] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    echo "pid $pid ($1) did not stop within 30 s" >&2
}
stop_old "$data/server.pid"
advertised=$(sed -n 's/.*"advertiseAddress" *: *"\([^"]*\)".*/\1/p' "$data/server.json")
case "$advertised" in *:*) advertised_host="[$advertised]" ;; *) advertised_host=$advertised ;; esac
# On every address, so that other boards join through the advertised one; a cluster that
# advertises the loopback address stays on it.
listen=()
[ "$advertised" = 127.0.0.1 ] && listen=(--listen "127.0.0.1:$port")
nohup "$bin/iotkube-server" run --data-dir "$data" "${listen[@]}" > "$data/server.log" 2>&1 &
echo $! > "$data/server.pid"
for _ in $(seq 100); do
    "$kubectl" --kubeconfig "$data/admin.kubeconfig" get --raw /healthz > /dev/null 2>&1 && break
    sleep 0.1
done
echo "iotkube-server is running (log: $data/server.log, stop: kill \$(cat $data/server.pid))"

# This machine as a node: join once, then run the agent in the background.
agent_dir="$data/agent"
if [ ! -f "$agent_dir/agent.yaml" ]; then
    # Over the loopback address: a change of this machine's address does not cut its own agent off.
    token=$("$bin/iotkube-server" token create --data-dir "$data" --ttl 1h --server "https://127.0.0.1:$port" | tail -n 1)
    "$bin/iotkube-agent" join "$token" --config-dir "$agent_dir" --state-dir "$data/agent-state" --no-start
fi
stop_old "$data/agent.pid"
nohup "$bin/iotkube-agent" run --config "$agent_dir/agent.yaml" > "$data/agent.log" 2>&1 &
echo $! > "$data/agent.pid"
for _ in $(seq 150); do
    "$kubectl" --kubeconfig "$data/admin.kubeconfig" get nodes 2>/dev/null | grep -q " Ready" && break
    sleep 0.1
done
echo "iotkube-agent is running (log: $data/agent.log, stop: kill \$(cat $data/agent.pid))"
"$kubectl" --kubeconfig "$data/admin.kubeconfig" get nodes -o wide
echo
echo "A join token for another board (iotkube-agent join <token>); it reaches this server at https://$advertised_host:$port"
echo "(to use another address or DNS name, create the cluster with IOTKUBE_ADVERTISE_ADDRESS=<address> after removing $data):"
"$bin/iotkube-server" token create --data-dir "$data" --ttl 24h | tail -n 1
