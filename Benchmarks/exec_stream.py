"""`kubectl exec` figures for bench.py: the latency of `kubectl exec pod -- true` against
`kubectl get pod` in the same run (the same kubectl start and TLS setup, no stream), and the
agent's added memory per open exec stream."""
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

    timed(["exec", "exec-target", "--", "true"])  # warm: the first exec pays for nothing the others do not
    execs = [timed(["exec", "exec-target", "--", "true"]) for _ in range(count)]
    gets = [timed(["get", "pod", "exec-target", "-o", "name"]) for _ in range(count)]
    results.append(("kubectl exec -- true p50 (direct)", percentile(execs, 0.5) * 1000, "ms",
                    "kubectl get pod p50", percentile(gets, 0.5) * 1000, ""))
    results.append(("kubectl exec -- true p99 (direct)", percentile(execs, 0.99) * 1000, "ms",
                    "kubectl get pod p99", percentile(gets, 0.99) * 1000, ""))

    # Open streams held by `cat` waiting on stdin: the agent's RSS before and with them.
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
    results.append((f"agent RSS added per open exec stream ({streams} open)", (during - before) / streams, "kB", "", None, ""))
    cluster.delete_all_pods()
