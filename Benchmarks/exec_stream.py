"""`kubectl exec` figures for bench.py: the latency of `kubectl exec pod -- true` and the rate
of 10 MB out of an exec, through the agent's tunnel against the direct connection in the same
run (the agent restarted with `tunnel: false`), the direct latency against `kubectl get pod`
(the same kubectl start and TLS setup, no stream), `kubectl port-forward` throughput both ways
through the tunnel and direct against a plain TCP copy to the same programs on this machine,
and the agent's added memory per open exec stream through the tunnel."""
import os
import socket
import shutil
import statistics
import subprocess
import time

FORWARD_BYTES = 50_000_000
# Per connection: swallow what comes and say so at its end (upload); send FORWARD_BYTES (download).
SINK = ["sh", "-c", "cat > /dev/null; echo done"]
SOURCE = ["head", "-c", str(FORWARD_BYTES), "/dev/zero"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def transfer_rates(upload_port, download_port):
    """MB/s of FORWARD_BYTES to a sink and from a source on 127.0.0.1 (best of three each)."""
    chunk = bytes(1 << 16)
    uploads, downloads = [], []
    for _ in range(3):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", upload_port), timeout=120) as connection:
            sent = 0
            while sent < FORWARD_BYTES:
                connection.sendall(chunk)
                sent += len(chunk)
            connection.shutdown(socket.SHUT_WR)
            answer = b""
            while (data := connection.recv(1024)):
                answer += data
        if b"done" not in answer:
            raise RuntimeError(f"the sink did not confirm the upload: {answer!r}")
        uploads.append(sent / 1e6 / (time.monotonic() - started))
        started = time.monotonic()
        received = 0
        with socket.create_connection(("127.0.0.1", download_port), timeout=120) as connection:
            while (data := connection.recv(1 << 16)):
                received += len(data)
        if received != FORWARD_BYTES:
            raise RuntimeError(f"the download carried {received} of {FORWARD_BYTES} bytes")
        downloads.append(received / 1e6 / (time.monotonic() - started))
    return max(uploads), max(downloads)


def forwarded_rates(base, pod):
    """Rates through `kubectl port-forward` to the pod's sink (8080) and source (8081)."""
    upload, download = free_port(), free_port()
    forward = subprocess.Popen(base + ["port-forward", f"pod/{pod}", f"{upload}:8080", f"{download}:8081"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 60
        while f"127.0.0.1:{download}" not in seen and time.monotonic() < deadline:
            line = forward.stdout.readline()
            if not line:
                raise RuntimeError(f"kubectl port-forward ended: {seen}")
            seen += line
        return transfer_rates(upload, download)
    finally:
        forward.terminate()
        forward.wait(30)


def plain_rates():
    """The same transfers to the same programs (busybox nc on this machine), without a pod."""
    upload, download = free_port(), free_port()
    servers = [subprocess.Popen(["busybox", "nc", "-ll", "-p", str(port), "-e"] + program, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for port, program in ((upload, SINK), (download, SOURCE))]
    try:
        time.sleep(0.5)
        return transfer_rates(upload, download)
    finally:
        for server in servers:
            server.kill()
            server.wait()

NAMESPACE = "default"


def kubectl_path(root):
    for candidate in (os.path.join(root, ".build", "test-tools", "bin", "kubectl"), shutil.which("kubectl")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure_exec(cluster, results, root, proc_status, ready_watch, count=30, streams=20):
    kubectl = kubectl_path(root)
    if kubectl is None:
        results.append(("kubectl exec", None, "", "kubectl not installed", None, "skipped"))
        return
    base = [kubectl, "--kubeconfig", os.path.join(cluster.server_dir, "admin.kubeconfig")]
    watch = ready_watch(cluster.api)
    cluster.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", cluster.pod("exec-target"))
    forward_pod = cluster.pod("forward-target")
    forward_pod["spec"]["containers"] = [
        {"name": "sink", "image": cluster.busybox, "command": ["nc", "-ll", "-p", "8080", "-e"] + SINK},
        {"name": "source", "image": cluster.busybox, "command": ["nc", "-ll", "-p", "8081", "-e"] + SOURCE},
    ]
    cluster.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", forward_pod)
    watch.wait(["exec-target", "forward-target"], 180)
    watch.stopped = True

    def timed(arguments):
        started = time.monotonic()
        subprocess.run(base + arguments, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.monotonic() - started

    def figures():
        # Warm (the first exec pays for nothing the others do not), once the agent answers.
        cluster.wait_for(lambda: subprocess.run(base + ["exec", "exec-target", "--", "true"], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL).returncode == 0, 60, "exec to work")
        execs = [timed(["exec", "exec-target", "--", "true"]) for _ in range(count)]
        transfers = [timed(["exec", "exec-target", "--", "head", "-c", "10000000", "/dev/zero"]) for _ in range(3)]
        return execs, 10 / min(transfers), forwarded_rates(base, "forward-target")

    cluster.wait_for(lambda: "the tunnel to the API server is up" in open(os.path.join(cluster.work, "agent.log")).read(), 60, "the tunnel")
    tunnel_execs, tunnel_rate, tunnel_forward = figures()
    cluster.restart_agent("tunnel: false")
    direct_execs, direct_rate, direct_forward = figures()
    plain = plain_rates()
    for index, direction in enumerate(("to the pod", "from the pod")):
        mb = FORWARD_BYTES // 1_000_000
        results.append((f"port-forward {mb} MB {direction} (tunnel)", tunnel_forward[index], "MB/s", "plain TCP copy, same programs", plain[index], ""))
        results.append((f"port-forward {mb} MB {direction} (direct)", direct_forward[index], "MB/s", "plain TCP copy, same programs", plain[index], ""))
    gets = [timed(["get", "pod", "exec-target", "-o", "name"]) for _ in range(count)]
    results.append(("kubectl exec -- true p50 (tunnel)", percentile(tunnel_execs, 0.5) * 1000, "ms",
                    "same, direct", percentile(direct_execs, 0.5) * 1000, ""))
    results.append(("kubectl exec -- true p99 (tunnel)", percentile(tunnel_execs, 0.99) * 1000, "ms",
                    "same, direct", percentile(direct_execs, 0.99) * 1000, ""))
    results.append(("10 MB out of kubectl exec (tunnel)", tunnel_rate, "MB/s", "same, direct", direct_rate, ""))
    results.append(("kubectl exec -- true p50 (direct)", percentile(direct_execs, 0.5) * 1000, "ms",
                    "kubectl get pod p50", percentile(gets, 0.5) * 1000, ""))
    cluster.restart_agent("")

    # Open streams held by `cat` waiting on stdin (through the tunnel): the agent's RSS before
    # and with them.
    cluster.wait_for(lambda: open(os.path.join(cluster.work, "agent.log")).read().count("the tunnel to the API server is up") >= 2, 60, "the tunnel")
    agent = cluster.agent.pid
    time.sleep(2)
    before = statistics.mean(proc_status(agent, "VmRSS") for _ in range(3))
    held = [subprocess.Popen(base + ["exec", "-i", "exec-target", "--", "cat"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(streams)]
    time.sleep(5)
    during = statistics.mean(proc_status(agent, "VmRSS") for _ in range(3))
    for process in held:
        process.stdin.close()
    for process in held:
        process.wait(30)
    results.append((f"agent RSS added per open exec stream, tunnel ({streams} open)", (during - before) / streams, "kB", "", None, ""))
    cluster.delete_all_pods()
