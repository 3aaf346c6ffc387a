"""`kubectl exec` figures for bench.py: the latency of `kubectl exec pod -- true` and the rate
of 10 MB out of an exec, through the agent's tunnel against the direct connection in the same
run (the agent restarted with `tunnel: false`), the direct latency against `kubectl get pod`
(the same kubectl start and TLS setup, no stream), and the agent's added memory per open exec
stream through the tunnel."""
import os
import shutil
import statistics
import subprocess
import time

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
    watch.wait(["exec-target"], 180)
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
        return execs, 10 / min(transfers)

    cluster.wait_for(lambda: "the tunnel to the API server is up" in open(os.path.join(cluster.work, "agent.log")).read(), 60, "the tunnel")
    tunnel_execs, tunnel_rate = figures()
    cluster.restart_agent("tunnel: false")
    direct_execs, direct_rate = figures()
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
