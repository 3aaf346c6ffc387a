"""Server flash wear for bench.py: the bytes iotkube-server writes to disk per hour (the
kernel's write_bytes of the process: SQLite pages, WAL and checkpoints) while N simulated boards
do what an agent does when nothing changes: renew their Lease every 10 s and send a Node status
heartbeat every 5 minutes. Measured with Lease renewals and heartbeats written through (the
peer, `--reconstructible-write-interval 0`, over 60 s) and kept in memory with the default
10-minute flush (over 620 s, so the window holds exactly one flush; `--quick`: a 30 s flush over
60 s, twenty times the default's flushes), both in one run."""
import os
import signal
import subprocess
import threading
import time

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def stamp(precision="micro"):
    now = time.time()
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return text + (f".{int(now % 1 * 1e6):06d}Z" if precision == "micro" else "Z")


def ready_condition():
    return {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "iotkube-agent is posting ready status",
            "lastHeartbeatTime": stamp("seconds"), "lastTransitionTime": "2026-01-01T00:00:00Z"}


def server_writes(binaries, work, api_class, wait_for, free_port, run, log, io_counters, nodes, seconds, interval):
    """Bytes per hour the server writes with `nodes` simulated boards, Lease and heartbeat
    writes deferred by `interval` seconds (0: written through)."""
    directory = os.path.join(work, f"flash-{nodes}-{interval}")
    port = free_port()
    run([os.path.join(binaries, "iotkube-server"), "init", "--data-dir", directory, "--port", str(port), "--advertise-address", "127.0.0.1"])
    logfile = open(os.path.join(work, f"flash-{nodes}-{interval}.log"), "ab")
    server = subprocess.Popen([os.path.join(binaries, "iotkube-server"), "run", "--data-dir", directory, "--listen", f"127.0.0.1:{port}",
                               "--reconstructible-write-interval", str(interval),
                               # Room for every board's pod range (the default /16 holds 256).
                               "--cluster-cidr", "10.64.0.0/12"], stdout=logfile, stderr=logfile)
    try:
        api = api_class(os.path.join(directory, "admin.kubeconfig"), work)
        wait_for(lambda: api.call("GET", "/api/v1/namespaces")[0] == 200, 60, "the flash-wear server")
        ready = threading.Barrier(nodes + 1)
        stop = threading.Event()
        errors = [0]
        lock = threading.Lock()

        def board(index):
            name = f"board-{index:04d}"
            connection = api.connect()
            try:
                api.call("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}, connection)
                _, lease = api.call("POST", LEASES, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": stamp()}}, connection)
                # The board's first status is a real change (written at once); the measured
                # window holds only heartbeats.
                api.call("PATCH", f"/api/v1/nodes/{name}/status", {"status": {"conditions": [ready_condition()]}}, connection,
                         content_type="application/merge-patch+json")
                ready.wait()
                # Beats spread over the 10 s and the 5 minutes, as boards that joined at different times.
                next_renewal = time.monotonic() + index % 100 / 10
                next_status = time.monotonic() + index * 300 / nodes % 300
                while not stop.is_set():
                    now = time.monotonic()
                    if now >= next_renewal:
                        lease["spec"]["renewTime"] = stamp()
                        status, renewed = api.call("PUT", f"{LEASES}/{name}", lease, connection)
                        if status == 200:
                            lease = renewed
                        else:
                            with lock:
                                errors[0] += 1
                        next_renewal += 10
                    if now >= next_status:
                        status, _ = api.call("PATCH", f"/api/v1/nodes/{name}/status", {"status": {"conditions": [ready_condition()]}}, connection,
                                             content_type="application/merge-patch+json")
                        if status != 200:
                            with lock:
                                errors[0] += 1
                        next_status += 300
                    stop.wait(max(0.05, min(next_renewal, next_status) - time.monotonic()))
            except Exception:
                with lock:
                    errors[0] += 1
                try:
                    ready.abort()
                except threading.BrokenBarrierError:
                    pass
            finally:
                connection.close()

        threads = [threading.Thread(target=board, args=(index,), daemon=True) for index in range(nodes)]
        for thread in threads:
            thread.start()
        ready.wait(300)
        # The first status of each node is a real change; measure after the boards settle.
        time.sleep(15)
        before = io_counters(server.pid)["write_bytes"]
        time.sleep(seconds)
        written = io_counters(server.pid)["write_bytes"] - before
        stop.set()
        for thread in threads:
            thread.join(30)
        per_hour = written * 3600 / seconds
        log(f"  {nodes} boards, writes {'deferred ' + str(interval) + ' s' if interval else 'through'}: "
            f"{written} bytes in {seconds} s = {per_hour / 1e6:.1f} MB/hour, errors {errors[0]}")
        return per_hour, errors[0]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def measure_flash(binaries, work, results, api_class, wait_for, free_port, run, log, io_counters, quick, counts=(50, 500)):
    interval, window = (30, 60) if quick else (600, 620)
    for nodes in counts:
        through, through_errors = server_writes(binaries, work, api_class, wait_for, free_port, run, log, io_counters, nodes, 60, 0)
        deferred, deferred_errors = server_writes(binaries, work, api_class, wait_for, free_port, run, log, io_counters, nodes, window, interval)
        note = "" if through_errors + deferred_errors == 0 else f" ({through_errors + deferred_errors} errors)"
        results.append((f"server disk writes, {nodes} boards, {interval} s flush", deferred / 1e6, "MB/hour", "written through" + note, through / 1e6,
                        "< 10 MB/hour at 500"))
