"""Daemon set rollouts for bench.py: a daemon set on N simulated boards (the server's own
controllers make and replace the pods; a simulator in this process plays every board's agent,
reporting each pod Running and Ready and confirming deletions), then an image update rolled
across all of them with maxUnavailable 10%. Measured for 50 and 500 boards in the same run: the
time to converge (every board's pod of the new template available), the server's CPU seconds
during the update and its RSS at the end. The 50-board run is the peer of the 500-board one."""
import concurrent.futures
import os
import signal
import subprocess
import threading
import time

NAMESPACE = "default"


def rollout(binaries, work, api_class, wait_for, free_port, run, log, proc_status, cpu_seconds, boards):
    directory = os.path.join(work, f"daemonset-{boards}")
    port = free_port()
    run([os.path.join(binaries, "iotkube-server"), "init", "--data-dir", directory, "--port", str(port), "--advertise-address", "127.0.0.1"])
    logfile = open(os.path.join(work, f"daemonset-{boards}.log"), "ab")
    # Boards stay reachable for the whole run (the simulator sends no heartbeats).
    server = subprocess.Popen([os.path.join(binaries, "iotkube-server"), "run", "--data-dir", directory, "--listen", f"127.0.0.1:{port}",
                               "--node-monitor-grace-period", "86400", "--cluster-cidr", "10.64.0.0/12"], stdout=logfile, stderr=logfile)
    stop = threading.Event()
    try:
        api = api_class(os.path.join(directory, "admin.kubeconfig"), work)
        wait_for(lambda: api.call("GET", "/api/v1/namespaces")[0] == 200, 60, "the daemon set server")
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            def register(index):
                connection = api.connect()
                try:
                    name = f"board-{index:04d}"
                    api.call("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}, connection)
                    api.call("PATCH", f"/api/v1/nodes/{name}/status", {"status": {"conditions": [{"type": "Ready", "status": "True"}],
                             "allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"}}}, connection, content_type="application/merge-patch+json")
                finally:
                    connection.close()
            list(pool.map(register, range(boards)))

        def simulate():
            """Every board's agent: pods bound to a board become Running and Ready; pods being
            deleted are confirmed gone."""
            connections = threading.local()

            def act(item):
                if not hasattr(connections, "value"):
                    connections.value = api.connect()
                meta = item["metadata"]
                path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
                try:
                    if meta.get("deletionTimestamp"):
                        api.call("DELETE", path + "?gracePeriodSeconds=0", None, connections.value)
                    elif item.get("status", {}).get("phase") != "Running":
                        api.call("PATCH", path + "/status", {"status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}},
                            connections.value, content_type="application/merge-patch+json")
                except Exception:
                    connections.value.close()
                    connections.value = api.connect()

            listing = api.connect(timeout=120)
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                while not stop.is_set():
                    try:
                        status, pods = api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods", None, listing)
                    except Exception:
                        listing.close()
                        listing = api.connect(timeout=120)
                        continue
                    pending = [item for item in (pods or {}).get("items", [])
                               if item["metadata"].get("deletionTimestamp") or item.get("status", {}).get("phase") != "Running"]
                    list(pool.map(act, pending))
                    if not pending:
                        stop.wait(0.2)

        simulator = threading.Thread(target=simulate, daemon=True)
        simulator.start()

        def daemon_status():
            status, body = api.call("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/agent")
            return body.get("status", {}) if status == 200 else {}

        manifest = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "agent", "image": "busybox:1.36"}]}}}}
        started = time.monotonic()
        status, body = api.call("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets", manifest)
        if status != 201:
            raise RuntimeError(f"creating the daemon set: {status} {body}")

        def converged():
            current = daemon_status()
            return (current.get("desiredNumberScheduled") == boards and current.get("updatedNumberScheduled") == boards
                    and current.get("numberAvailable") == boards and current.get("observedGeneration") == current_generation[0])
        current_generation = [1]
        wait_for(converged, 900, f"the daemon set on {boards} boards")
        placed = time.monotonic() - started

        before = cpu_seconds(server.pid)
        started = time.monotonic()
        status, body = api.call("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/agent",
                                {"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "busybox:1.37"}]}}}},
                                content_type="application/merge-patch+json")
        if status != 200:
            raise RuntimeError(f"updating the daemon set: {status} {body}")
        current_generation[0] = body["metadata"]["generation"]
        wait_for(converged, 1800, f"the update across {boards} boards")
        updated = time.monotonic() - started
        cpu = cpu_seconds(server.pid) - before
        rss = proc_status(server.pid, "VmRSS") / 1024
        log(f"  {boards} boards: placed in {placed:.1f} s, update converged in {updated:.1f} s, server CPU {cpu:.1f} s, RSS {rss:.0f} MB")
        return placed, updated, cpu, rss
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def measure_daemonset(binaries, work, results, api_class, wait_for, free_port, run, log, proc_status, cpu_seconds, quick):
    figures = {}
    for boards in (50, 500):
        log(f"daemon set rollout across {boards} simulated boards")
        figures[boards] = rollout(binaries, work, api_class, wait_for, free_port, run, log, proc_status, cpu_seconds, boards)
    small, large = figures[50], figures[500]
    results.append(("daemon set placed on 500 boards", large[0], "s", "50 boards", small[0], ""))
    results.append(("daemon set update converged, 500 boards", large[1], "s", "50 boards", small[1], ""))
    results.append(("server CPU during the update, 500 boards", large[2], "s", "50 boards", small[2], ""))
    results.append(("server RSS after the update, 500 boards", large[3], "MB", "50 boards", small[3], ""))
