"""Services for bench.py.

Rule programming: `iotkube-agent bench service-rules` in a network namespace of its own
programs 1,000 services × 3 endpoints with nftables (the whole table, then one endpoint
changed: a transaction of only the difference) and with iptables-restore (the same rules, then
the same change: a full restore, as kube-proxy's iptables mode does). The iptables figures are
the peers.

Ready to traffic: a service in front of one pod at a time on the bench board; each pod turns
Ready (seen in a watch of the API) and a prober on the host connects to the cluster address
every 5 ms until a connection succeeds. p50 and p99 over the samples, with the agent's proxy
in nftables mode and then, restarted, in iptables mode (the peer)."""
import json
import os
import socket
import subprocess
import threading
import time

NAMESPACE = "default"


def measure_rules(binaries, results, run, log):
    log("service rules: 1,000 services × 3 endpoints, nftables against iptables-restore")
    output = run(["unshare", "-n", os.path.join(binaries, "iotkube-agent"), "bench", "service-rules",
                  "--services", "1000", "--endpoints", "3", "--rounds", "9"], timeout=900).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    results.append(("service rules: full table (nft)", figures["nft_full_ms"], "ms", "iptables-restore, same rules",
                    figures["iptables_full_ms"], "1,000 svc × 3 ep"))
    results.append(("service rules: one endpoint changed (nft)", figures["nft_change_ms"], "ms", "iptables-restore, full rewrite",
                    figures["iptables_change_ms"], "incremental"))
    results.append(("service rules: bytes sent for that change (nft)", figures["nft_change_bytes"], "bytes", "iptables-restore input",
                    figures["iptables_change_bytes"], ""))
    results.append(("service rules: one service added (nft)", figures["nft_add_ms"], "ms", "", None, ""))


class Prober:
    """Connects to address:port every 5 ms; records when a connection first succeeds after arm()."""

    def __init__(self, address, port):
        self.address, self.port = address, port
        self.armed_at = None
        self.succeeded_at = None
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def arm(self):
        with self.lock:
            self.armed_at = time.monotonic()
            self.succeeded_at = None

    def loop(self):
        while not self.stopped:
            with self.lock:
                waiting = self.armed_at is not None and self.succeeded_at is None
            if waiting:
                try:
                    with socket.create_connection((self.address, self.port), timeout=0.2):
                        with self.lock:
                            self.succeeded_at = time.monotonic()
                except OSError:
                    pass
            time.sleep(0.005)

    def wait(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if self.succeeded_at is not None:
                    return self.succeeded_at
            time.sleep(0.005)
        raise RuntimeError("the service did not answer")


def ready_to_traffic(cluster, watch_class, percentile, samples):
    """Seconds from each pod's Ready (as a watch sees it) to the first connection through the service."""
    api = cluster.api
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "latency", "namespace": NAMESPACE},
               "spec": {"selector": {"app": "latency"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    status, created = api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/services", service)
    if status not in (200, 201):
        status, created = api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/services/latency")
    prober = Prober(created["spec"]["clusterIP"], 80)
    watch = watch_class(api)
    delays = []
    try:
        for index in range(samples):
            name = f"latency-{int(time.time() * 1000) % 100000000}-{index}"
            pod = cluster.pod(name, command=("httpd", "-f", "-p", "8080", "-h", "/"))
            pod["metadata"]["labels"] = {"app": "latency"}
            pod["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
            prober.arm()
            api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod)
            ready = watch.wait([name], 120)[name]
            delays.append(max(0.0, prober.wait(60) - ready))
            api.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}?gracePeriodSeconds=0")
            cluster.wait_for(lambda: api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")[0] == 404, 60, "the pod to go")
            time.sleep(0.5)
    finally:
        prober.stopped = True
        watch.stopped = True
        api.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/services/latency")
    delays.sort()
    return percentile(delays, 0.5), percentile(delays, 0.99)


def measure_traffic(cluster, results, watch_class, percentile, log, samples):
    log(f"ready to traffic through a service: {samples} pods, nftables then iptables")
    nft_p50, nft_p99 = ready_to_traffic(cluster, watch_class, percentile, samples)
    cluster.restart_agent("serviceProxyMode: iptables")
    ipt_p50, ipt_p99 = ready_to_traffic(cluster, watch_class, percentile, samples)
    cluster.restart_agent("")
    results.append(("service: pod Ready → traffic p50 (nft)", round(nft_p50 * 1000, 1), "ms", "same, iptables mode", round(ipt_p50 * 1000, 1), ""))
    results.append(("service: pod Ready → traffic p99 (nft)", round(nft_p99 * 1000, 1), "ms", "same, iptables mode", round(ipt_p99 * 1000, 1), ""))
