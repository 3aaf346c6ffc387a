#!/usr/bin/env python3
"""iotkube benchmarks: every figure measured in one run on this machine, next to a peer
measured in the same run where one exists (crun for container start, skopeo for image pulls)
or to the target and the published figure otherwise. Needs root, the release binaries
(`swift build -c release`), docker-registry, umoci, skopeo, busybox-static and crun.

    Benchmarks/run.sh [--quick] [--only start,cgroups,memory,idle,size,scale,pull,exec]

Prints a table; --json FILE also writes the figures. Nothing here asserts a time: the numbers
are for docs/benchmarks.md.
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonset_rollout import measure_daemonset  # noqa: E402
from exec_stream import measure_exec  # noqa: E402
from flash_wear import measure_flash  # noqa: E402
from podman_play import podman_kube_play_times  # noqa: E402
from service_traffic import measure_rules, measure_traffic  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMESPACE = "default"


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args, check=True, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: exit {result.returncode}: {result.stdout}{result.stderr}")
    return result


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def proc_status(pid, field):
    """A field of /proc/PID/status in kB (VmRSS, …); 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User + system CPU of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def io_counters(pid):
    counters = {}
    with open(f"/proc/{pid}/io") as io:
        for line in io:
            key, value = line.split(":")
            counters[key] = int(value)
    return counters


def container_monitors(work):
    """The container monitors of this run's agent: no children of it (they leave its children,
    so that init reaps them), found by their command line, which names a plan under `work`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    arguments = file.read().split(b"\0")
            except OSError:
                continue
            if len(arguments) > 2 and arguments[1] == b"__iotkube-monitor" and arguments[2].startswith(work.encode()):
                found.append(int(entry))
    return found


class API:
    """The Kubernetes API over HTTPS with the admin client certificate of a kubeconfig."""

    def __init__(self, kubeconfig, directory):
        text = open(kubeconfig).read()

        def field(name):
            match = re.search(rf"{name}:\s*(\S+)", text)
            if not match:
                raise RuntimeError(f"{kubeconfig}: no {name}")
            return match.group(1).strip('"')

        server = field("server")
        self.host, self.port = re.match(r"https://([^:/]+):(\d+)", server).groups()
        self.port = int(self.port)
        paths = {}
        for name in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
            paths[name] = os.path.join(directory, name + ".pem")
            with open(paths[name], "wb") as out:
                out.write(base64.b64decode(field(name)))
        self.context = ssl.create_default_context(cafile=paths["certificate-authority-data"])
        self.context.check_hostname = False
        self.context.load_cert_chain(paths["client-certificate-data"], paths["client-key-data"])

    def connect(self, timeout=30):
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    def call(self, method, path, body=None, connection=None, content_type="application/json"):
        own = connection is None
        connection = connection or self.connect()
        try:
            headers = {"Accept": "application/json"}
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, (json.loads(data) if data else None)
        finally:
            if own:
                connection.close()


class Cluster:
    """A registry with test images, an iotkube-server and one joined iotkube-agent."""

    def __init__(self, binaries, work, agent_config=""):
        self.binaries = binaries
        self.work = work
        self.processes = []
        self.registry = self.start_registry()
        self.busybox = f"{self.registry}/bench/busybox:1"
        self.build_images()
        self.server_port = free_port()
        self.server_dir = os.path.join(work, "server")
        run([self.bin("iotkube-server"), "init", "--data-dir", self.server_dir, "--port", str(self.server_port),
             "--advertise-address", "127.0.0.1"])
        self.server = self.spawn("server", [self.bin("iotkube-server"), "run", "--data-dir", self.server_dir,
                                            "--listen", f"127.0.0.1:{self.server_port}"])
        self.api = API(os.path.join(self.server_dir, "admin.kubeconfig"), work)
        self.wait_for(lambda: self.api.call("GET", "/api/v1/namespaces")[0] == 200, 60, "iotkube-server to serve")
        self.node = "bench-board"
        self.agent_config = agent_config
        self.agent = None

    def bin(self, name):
        return os.path.join(self.binaries, name)

    def spawn(self, name, args):
        logfile = open(os.path.join(self.work, name + ".log"), "ab")
        process = subprocess.Popen(args, stdout=logfile, stderr=logfile, stdin=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    @staticmethod
    def wait_for(condition, seconds, what):
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if condition():
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")

    def start_registry(self):
        storage = os.path.join(self.work, "registry")
        os.makedirs(storage)
        port = free_port()
        config = os.path.join(self.work, "registry.yml")
        with open(config, "w") as out:
            out.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
        self.spawn("registry", ["/usr/bin/docker-registry", "serve", config])
        address = f"127.0.0.1:{port}"
        self.wait_for(lambda: run(["curl", "-sf", f"http://{address}/v2/"], check=False).returncode == 0, 30, "docker-registry")
        return address

    def build_images(self):
        """busybox (every applet) and a 60 MB image of three random layers, for the pull test."""
        layout, bundle = os.path.join(self.work, "layout"), os.path.join(self.work, "bundle")
        script = f"""
            set -e
            umoci init --layout '{layout}'
            umoci new --image '{layout}:busybox'
            umoci unpack --image '{layout}:busybox' '{bundle}'
            mkdir -p '{bundle}/rootfs/bin' '{bundle}/rootfs/etc' '{bundle}/rootfs/tmp'
            cp /bin/busybox '{bundle}/rootfs/bin/busybox'
            for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox '{bundle}/rootfs/bin/'"$applet"; done
            printf 'root:x:0:0:root:/root:/bin/sh\\n' > '{bundle}/rootfs/etc/passwd'
            printf 'root:x:0:\\n' > '{bundle}/rootfs/etc/group'
            chmod 1777 '{bundle}/rootfs/tmp'
            umoci repack --image '{layout}:busybox' '{bundle}'
            umoci config --image '{layout}:busybox' --config.cmd sh --config.env PATH=/bin
            skopeo copy -q --dest-tls-verify=false 'oci:{layout}:busybox' 'docker://{self.busybox}'
            cp -a '{layout}' '{layout}-big'
            for layer in 1 2 3; do
                rm -rf '{bundle}-big'
                umoci unpack --image '{layout}-big:busybox' '{bundle}-big'
                head -c 20000000 /dev/urandom > '{bundle}-big/rootfs/data-'$layer
                umoci repack --image '{layout}-big:busybox' '{bundle}-big'
            done
            skopeo copy -q --dest-tls-verify=false 'oci:{layout}-big:busybox' 'docker://{self.registry}/bench/big:1'
        """
        run(["/bin/sh", "-c", script], timeout=600)

    def join_and_start_agent(self, extra_arguments=()):
        token = run([self.bin("iotkube-server"), "token", "create", "--data-dir", self.server_dir, "--ttl", "2h"]).stdout.split()[-1]
        self.config_dir = os.path.join(self.work, "etc")
        self.state_dir = os.path.join(self.work, "state")
        self.runtime_root = os.path.join(self.work, "run")
        os.makedirs(os.path.join(self.work, "cni"), exist_ok=True)
        run([self.bin("iotkube-agent"), "join", token, "--node-name", self.node, "--config-dir", self.config_dir,
             "--state-dir", self.state_dir, "--port", str(free_port()), "--no-start", "--insecure-registry", self.registry])
        with open(os.path.join(self.config_dir, "agent.yaml"), "a") as config:
            config.write(f'podLogDirectory: "{self.work}/logs"\nruntimeRoot: "{self.runtime_root}"\n'
                         f'cniConfigDirectory: "{self.work}/cni"\nstaticPodPath: "{self.work}/manifests"\n{self.agent_config}\n')
        self.agent_arguments = [self.bin("iotkube-agent"), "run", "--config", os.path.join(self.config_dir, "agent.yaml"), *extra_arguments]
        self.agent = self.spawn("agent", self.agent_arguments)

        def ready():
            status, node = self.api.call("GET", f"/api/v1/nodes/{self.node}")
            return status == 200 and any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
        self.wait_for(ready, 120, "the node to be Ready")

    def restart_agent(self, config_line, wrapper=None):
        """Stops the agent (its containers keep running and are adopted), sets the last line
        of agent.yaml to `config_line`, and starts it again (through `wrapper`, a command line
        that ends by exec'ing its arguments); returns once the node is Ready."""
        self.agent.send_signal(signal.SIGTERM)
        self.agent.wait(60)
        path = os.path.join(self.config_dir, "agent.yaml")
        with open(path) as config:
            lines = config.read().rstrip("\n").split("\n")
        if lines[-1].startswith(("tunnel:", "cgroupsPerQOS:", "runtime:", "serviceProxyMode:")):
            lines.pop()
        with open(path, "w") as config:
            config.write("\n".join(lines + ([config_line] if config_line else [])) + "\n")
        self.agent = self.spawn("agent", (wrapper or []) + self.agent_arguments)

        def ready():
            status, node = self.api.call("GET", f"/api/v1/nodes/{self.node}")
            return status == 200 and any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
        time.sleep(1)
        self.wait_for(ready, 120, "the node to be Ready")

    def pod(self, name, command=("sleep", "100000"), host_network=False):
        spec = {"nodeName": self.node, "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "app", "image": self.busybox, "command": list(command)}]}
        if host_network:
            spec["hostNetwork"] = True
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}

    def delete_all_pods(self):
        status, pods = self.api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")
        for pod in pods["items"]:
            self.api.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod['metadata']['name']}")
        self.wait_for(lambda: not self.api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")[1]["items"], 180, "pods to be deleted")

    def wait_until_node_is_quiet(self, seconds=60):
        """Until the agent has removed every pod the API no longer has: no pod directory and no
        container left (with a grace period of 0 the API forgets a pod at once, and the board
        then stops its containers and releases its network, as a kubelet does)."""
        pods = os.path.join(self.state_dir, "pods")

        def quiet():
            left = os.listdir(pods) if os.path.isdir(pods) else []
            containers = [c for c in os.listdir(self.runtime_root) if not c.startswith(".")] if os.path.isdir(self.runtime_root) else []
            return not left and not containers
        self.wait_for(quiet, seconds, "the agent to remove the deleted pods")

    def close(self):
        if self.agent and self.agent.poll() is None:
            try:
                self.delete_all_pods()
            except Exception as error:  # the figures are printed already; cleanup goes on
                log(f"deleting pods: {error}")
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.agent:
            for container in os.listdir(self.runtime_root) if os.path.isdir(self.runtime_root) else []:
                if not container.startswith("."):
                    run([self.bin("iotkube-agent"), "runtime", "--root", self.runtime_root, "delete", "--force", container], check=False)
        run(["/bin/sh", "-c", f"grep -F ' {self.work}/' /proc/self/mountinfo | awk '{{print $5}}' | sort -r | xargs -r -n1 umount -l"], check=False)
        run(["ip", "link", "del", "iotkube0"], check=False)
        # The agent's service proxy and cluster DNS (what `iotkube-agent reset` removes).
        run(["nft", "delete", "table", "ip", "iotkube-proxy"], check=False)
        run(["ip", "address", "delete", "169.254.20.10/32", "dev", "lo"], check=False)
        # The default network's node-wide egress chain (what `iotkube-agent reset` removes).
        try:
            cidr = open(os.path.join(self.state_dir, "network", "node-pod-cidr")).read().strip()
        except (OSError, AttributeError):
            cidr = ""
        if cidr:
            address, prefix = cidr.split("/")
            chain = "IOTKUBE-EG-" + "".join(f"{int(octet):02X}" for octet in address.split(".")) + "-" + prefix
            run(["iptables", "-w", "5", "-t", "nat", "-D", "POSTROUTING", "-s", cidr, "-m", "comment", "--comment", "iotkube pod egress", "-j", chain], check=False)
            run(["iptables", "-w", "5", "-t", "nat", "-F", chain], check=False)
            run(["iptables", "-w", "5", "-t", "nat", "-X", chain], check=False)


class ReadyWatch:
    """Records when each pod is first seen Ready in a watch of the namespace."""

    def __init__(self, api):
        self.api = api
        self.ready = {}
        self.lock = threading.Lock()
        self.stopped = False
        status, pods = api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")
        self.version = pods["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        connection = self.api.connect(timeout=3600)
        connection.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?watch=true&resourceVersion={self.version}",
                           headers={"Accept": "application/json"})
        response = connection.getresponse()
        while not self.stopped:
            line = response.readline()
            if not line:
                break
            event = json.loads(line)
            pod = event.get("object", {})
            conditions = (pod.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                with self.lock:
                    self.ready.setdefault(pod["metadata"]["name"], time.monotonic())

    def wait(self, names, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if all(name in self.ready for name in names):
                    return {name: self.ready[name] for name in names}
            time.sleep(0.002)
        raise RuntimeError(f"pods not Ready within {seconds} s: {[n for n in names if n not in self.ready]}")


def measure_start(cluster, results, count, parallel):
    """Pod created → Ready in the API, sequentially and `parallel` at a time."""
    watch = ReadyWatch(cluster.api)
    # The image is pulled once (present for every measured pod).
    cluster.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", cluster.pod("warmup"))
    watch.wait(["warmup"], 180)
    cluster.delete_all_pods()
    overlapped = f"{parallel} in parallel while {parallel} are removed"
    latencies = {"sequential": [], f"{parallel} in parallel": [], overlapped: []}
    for index in range(count):
        name = f"seq-{index}"
        started = time.monotonic()
        status, _ = cluster.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", cluster.pod(name))
        assert status == 201, status
        latencies["sequential"].append(watch.wait([name])[name] - started)
    cluster.delete_all_pods()

    def batch_of(label, names):
        starts = {}
        threads = []

        def create(name):
            starts[name] = time.monotonic()
            cluster.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", cluster.pod(name))
        for name in names:
            thread = threading.Thread(target=create, args=(name,))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        ready = watch.wait(names)
        latencies[label] += [ready[name] - starts[name] for name in names]
        cluster.delete_all_pods()
    # On a quiet node (as crun's batches: each is deleted before the next), then each batch
    # right after the previous one's deletion, while the board still removes those pods.
    for batch in range(count // parallel):
        cluster.wait_until_node_is_quiet()
        batch_of(f"{parallel} in parallel", [f"par-{batch}-{index}" for index in range(parallel)])
    cluster.wait_until_node_is_quiet()
    for batch in range(count // parallel):
        batch_of(overlapped, [f"busy-{batch}-{index}" for index in range(parallel)])
    cluster.wait_until_node_is_quiet()
    watch.stopped = True
    sequential, together = crun_start_times(cluster, count, parallel)
    for label, values in latencies.items():
        crun = sequential if label == "sequential" else together if label == f"{parallel} in parallel" else None
        target = "≤ 150 ms" if label == "sequential" else "≤ 300 ms" if crun else ""
        results.append(("pod start p50, " + label, values and percentile(values, 0.5) * 1000, "ms",
                        "crun run -d p50, " + label, percentile(crun, 0.5) * 1000 if crun else None, target))
        results.append(("pod start p99, " + label, values and percentile(values, 0.99) * 1000, "ms",
                        "crun run -d p99, " + label, percentile(crun, 0.99) * 1000 if crun else None, ""))
    played = podman_kube_play_times(cluster, count, parallel, run, log)
    if played is None:
        results.append(("podman kube play", None, "", "not installed here (or failed)", None, "skipped"))
    else:
        for label, values, podman in (("sequential", latencies["sequential"], played[0]),
                                      (f"{parallel} in parallel", latencies[f"{parallel} in parallel"], played[1])):
            results.append(("pod start p50 (vs podman), " + label, values and percentile(values, 0.5) * 1000, "ms",
                            "podman kube play p50, " + label, percentile(podman, 0.5) if podman else None, ""))


def measure_pod_cgroups(cluster, results, count, parallel):
    """Pods with memory limits started `parallel` at a time, with the kubepods hierarchy (the
    default), without it (`cgroupsPerQOS: false`: a cgroup per container only), and made by crun
    (`runtime: crun`), in one run."""
    def batch_latencies():
        watch = ReadyWatch(cluster.api)
        latencies = []
        for batch in range(count // parallel):
            names = [f"cg-{batch}-{index}" for index in range(parallel)]
            starts = {}
            for name in names:
                pod = cluster.pod(name)
                pod["spec"]["containers"][0]["resources"] = {"limits": {"memory": "32Mi"}, "requests": {"cpu": "10m"}}
                starts[name] = time.monotonic()
                cluster.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod)
            ready = watch.wait(names)
            latencies += [ready[name] - starts[name] for name in names]
            cluster.delete_all_pods()
        watch.stopped = True
        return latencies
    with_cgroups = batch_latencies()
    cluster.restart_agent("cgroupsPerQOS: false")
    without = batch_latencies()
    crun = []
    if shutil.which("crun"):
        # crun refuses a hybrid host: the agent then runs where its near-empty cgroup2 mount is hidden.
        wrapper = None
        if os.path.isdir("/sys/fs/cgroup/unified"):
            wrapper = ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                       'mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified; exec "$0" "$@"']
        cluster.restart_agent("runtime: crun", wrapper=wrapper)
        crun = batch_latencies()
    cluster.restart_agent("")
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        results.append((f"pod start {label}, {parallel} in parallel, pod cgroups", percentile(with_cgroups, fraction) * 1000, "ms",
                        "without pod cgroups (cgroupsPerQOS: false)", percentile(without, fraction) * 1000, ""))
        results.append((f"pod start {label}, {parallel} in parallel, pod cgroups", percentile(with_cgroups, fraction) * 1000, "ms",
                        "runtime: crun, same pods", percentile(crun, fraction) * 1000 if crun else None, "" if crun else "crun not installed"))


def crun_start_times(cluster, count, parallel):
    """`crun run -d` of the same busybox sleep in a new network namespace (no CNI): the floor."""
    if shutil.which("crun") is None:
        return [], []
    bundle = os.path.join(cluster.work, "crun-bundle")
    run(["umoci", "unpack", "--image", os.path.join(cluster.work, "layout") + ":busybox", bundle])
    with open(os.path.join(bundle, "config.json")) as file:
        config = json.load(file)
    config["ociVersion"] = "1.0.2"
    config["process"]["args"] = ["sleep", "100000"]
    config["process"]["terminal"] = False
    config["linux"].pop("resources", None)
    config["linux"].pop("cgroupsPath", None)
    namespaces = config["linux"]["namespaces"]
    if not any(n["type"] == "network" for n in namespaces):
        namespaces.append({"type": "network"})
    with open(os.path.join(bundle, "config.json"), "w") as file:
        json.dump(config, file)
    # crun 1.8 refuses hybrid cgroups: in its private mount namespace the empty cgroup2 mount of
    # a hybrid host is covered, so crun sees plain v1.
    script = f"""
        if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified; fi
        cd '{bundle}'
        for i in $(seq 1 {count}); do
            start=$(date +%s%N)
            crun --cgroup-manager=disabled --root '{cluster.work}/crun-state' run -d bench-$i >/dev/null 2>&1 || echo failed
            end=$(date +%s%N)
            echo $(( end - start ))
            crun --root '{cluster.work}/crun-state' delete -f bench-$i >/dev/null 2>&1
        done
    """
    # The same count again, `parallel` at a time.
    script += f"""
        for batch in $(seq 1 {count // parallel}); do
            for i in $(seq 1 {parallel}); do
                ( start=$(date +%s%N)
                  crun --cgroup-manager=disabled --root '{cluster.work}/crun-state' run -d par-$batch-$i >/dev/null 2>&1 || echo failed
                  end=$(date +%s%N); echo p$(( end - start )) ) &
            done
            wait
            for i in $(seq 1 {parallel}); do crun --root '{cluster.work}/crun-state' delete -f par-$batch-$i >/dev/null 2>&1; done
        done
    """
    output = run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script], timeout=600).stdout.split()
    if "failed" in output:
        log("crun could not run the bundle; no peer figure")
        return [], []
    return [int(v) / 1e9 for v in output if not v.startswith("p")], [int(v[1:]) / 1e9 for v in output if v.startswith("p")]


def measure_memory_and_idle(cluster, results, idle_minutes):
    """Agent RSS with 0, 10 and 50 pods; monitor RSS; idle CPU and bytes written with 10 pods."""
    agent = cluster.agent.pid
    watch = ReadyWatch(cluster.api)
    time.sleep(10)
    # RSS with its split: anonymous memory (heap, stacks, relocated data) and file pages (the
    # binary's code and libraries, clean and shared with the monitors; reclaimable).
    def rss_now():
        return tuple(proc_status(agent, key) for key in ("VmRSS", "RssAnon", "RssFile"))
    rss = {"0 pods": rss_now()}
    created = 0
    for target in (10, 50):
        names = []
        while created < target:
            name = f"idle-{created}"
            cluster.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", cluster.pod(name))
            names.append(name)
            created += 1
        watch.wait(names, 300)
        time.sleep(10)
        rss[f"{target} pods" if target == 50 else "10 pods, 10 s after Ready"] = rss_now()
        if target == 10:
            monitors = container_monitors(cluster.work)
            monitor_rss = [proc_status(pid, "VmRSS") for pid in monitors]
            monitor_pss = [smaps_pss(pid) for pid in monitors]
            # Idle with 10 pods: CPU of the agent (monitors separately) and what it writes.
            cpu_before, io_before = cpu_seconds(agent), io_counters(agent)
            monitor_cpu_before = sum(cpu_seconds(pid) for pid in monitors)
            state_before = directory_bytes(cluster.state_dir)
            log(f"idle with 10 pods for {idle_minutes} min")
            time.sleep(idle_minutes * 60)
            cpu = cpu_seconds(agent) - cpu_before
            io_after = io_counters(agent)
            # Idle RSS: after the window, past the start burst (the heap is trimmed every 30 s).
            rss["10 pods, idle"] = rss_now()
            monitor_cpu = sum(cpu_seconds(pid) for pid in monitors) - monitor_cpu_before
            hours = idle_minutes / 60
            beats = idle_minutes * 6
            results.append(("agent CPU idle, 10 pods", cpu / (idle_minutes * 60) * 100, "% of a core", "", None, "< 1 %"))
            results.append(("agent CPU per heartbeat", cpu / beats * 1000, "ms", "", None, ""))
            results.append(("monitors' CPU idle, 10 pods", monitor_cpu / (idle_minutes * 60) * 100, "% of a core", "", None, ""))
            results.append(("agent bytes written to disk / hour", (io_after["write_bytes"] - io_before["write_bytes"]) / hours / 1e6, "MB/h",
                            "", None, "< 1 MB/h"))
            results.append(("agent bytes passed to write() / hour", (io_after["wchar"] - io_before["wchar"]) / hours / 1e6, "MB/h",
                            "", None, "(includes sockets)"))
            results.append(("state directory growth / hour", (directory_bytes(cluster.state_dir) - state_before) / hours / 1e6, "MB/h", "", None, ""))
            results.append(("monitor RSS per container", statistics.mean(monitor_rss) / 1024 if monitor_rss else None, "MB", "", None, "≤ 2 MB"))
            results.append(("monitor PSS per container (shared pages split)", statistics.mean(monitor_pss) / 1024 if monitor_pss else None, "MB",
                            "", None, "≤ 2 MB"))
    watch.stopped = True
    for when, (value, anonymous, file_backed) in rss.items():
        target = "≤ 25 MB idle" if when in ("0 pods", "10 pods, idle") else ""
        results.append((f"agent RSS, {when}", value / 1024, "MB", "k3s agent (published, Pi 4)", 268, target))
        results.append(("  of it anonymous", anonymous / 1024, "MB", "", None, ""))
        results.append(("  of it file pages", file_backed / 1024, "MB", "", None, "(binary, libc: shared)"))
    cluster.delete_all_pods()


def smaps_pss(pid):
    """Proportional set size in kB: shared pages (the agent binary) divided among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def directory_bytes(path):
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def measure_sizes(binaries, work, results):
    for name in ("iotkube-agent", "iotkube-server"):
        stripped = os.path.join(work, name + ".stripped")
        shutil.copy(os.path.join(binaries, name), stripped)
        run(["strip", stripped])
        results.append((f"{name} stripped", os.path.getsize(stripped) / 1e6, "MB", "", None, "≤ 30 MB" if name == "iotkube-agent" else ""))
    packages = os.path.join(ROOT, ".build", "package")
    for name in sorted(os.listdir(packages)) if os.path.isdir(packages) else []:
        if name.endswith(".deb") or name.endswith(".tar.gz"):
            results.append((name, os.path.getsize(os.path.join(packages, name)) / 1e6, "MB", "", None, ""))


def measure_pull(cluster, results):
    """`iotkube-agent images pull` against `skopeo copy` of the same 60 MB image from the registry."""
    reference = f"{cluster.registry}/bench/big:1"

    def timed(args):
        # A shell that reaps the command reports the command's I/O in its own /proc entry.
        script = 'start=$(date +%s%N); "$@" >/dev/null 2>&1 || exit 1; end=$(date +%s%N); echo $(( end - start )); grep -E "^(write_bytes|wchar)" /proc/$$/io'
        output = run(["/bin/sh", "-c", script, "sh", *args], timeout=600).stdout.split("\n")
        counters = dict(line.split(": ") for line in output[1:] if ": " in line)
        return int(output[0]) / 1e9, int(counters["write_bytes"]), int(counters["wchar"])
    size = int(run(["/bin/sh", "-c", f"du -sb '{cluster.work}/layout-big/blobs' | cut -f1"]).stdout)
    ours, peer, unpacked = [], [], []
    for attempt in range(3):
        root = os.path.join(cluster.work, f"pull-{attempt}")
        ours.append(timed([cluster.bin("iotkube-agent"), "images", "pull", reference, "--insecure-registry", cluster.registry,
                           "--config", "/nonexistent", "--root", root]))
        peer.append(timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{reference}", f"oci:{root}-skopeo:big"]))
        # The same work as the agent's pull: download, then unpack into a root filesystem.
        unpack = f"skopeo copy -q --src-tls-verify=false 'docker://{reference}' 'oci:{root}-umoci:big' && umoci unpack --image '{root}-umoci:big' '{root}-umoci-bundle'"
        unpacked.append(timed(["/bin/sh", "-c", unpack]))
    for label, runs in (("skopeo copy (download only)", peer), ("skopeo copy + umoci unpack", unpacked)):
        results.append(("image pull 60 MB (3 layers), median", statistics.median(t for t, _, _ in ours), "s", label,
                        statistics.median(t for t, _, _ in runs), "ratio ≤ 1"))
        results.append(("bytes written per image byte", statistics.median(max(w, c) for _, w, c in ours) / size, "",
                        label, statistics.median(max(w, c) for _, w, c in runs) / size, ""))


def measure_scale(binaries, work, results, steps, seconds):
    """N simulated nodes renewing leases every 10 s and patching a pod status every 30 s
    against one server: the largest N whose lease renewals stay under 1 s at p99."""
    server_dir = os.path.join(work, "scale-server")
    port = free_port()
    run([os.path.join(binaries, "iotkube-server"), "init", "--data-dir", server_dir, "--port", str(port), "--advertise-address", "127.0.0.1"])
    logfile = open(os.path.join(work, "scale-server.log"), "ab")
    server = subprocess.Popen([os.path.join(binaries, "iotkube-server"), "run", "--data-dir", server_dir, "--listen", f"127.0.0.1:{port}"],
                              stdout=logfile, stderr=logfile)
    try:
        api = API(os.path.join(server_dir, "admin.kubeconfig"), work)
        Cluster.wait_for(lambda: api.call("GET", "/api/v1/namespaces")[0] == 200, 60, "the scale server")
        best = None
        nodes = 0
        for target in steps:
            stop = threading.Event()
            latencies, errors, lock = [], [0], threading.Lock()

            def simulate(index):
                name = f"sim-{index:05d}"
                connection = api.connect()
                try:
                    api.call("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}, connection)
                    status, lease = api.call("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name, "namespace": "kube-node-lease"},
                        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}, connection)
                    if status == 409:
                        status, lease = api.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}", None, connection)
                    api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                             "spec": {"nodeName": name, "containers": [{"name": "app", "image": "busybox"}]}}, connection)
                    beat = 0
                    stop.wait(index % 100 / 10)  # spread the beats over the 10 s
                    while not stop.is_set():
                        lease["spec"]["renewTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
                        started = time.monotonic()
                        status, renewed = api.call("PUT", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}", lease, connection)
                        elapsed = time.monotonic() - started
                        with lock:
                            if status == 200:
                                latencies.append(elapsed)
                                lease = renewed
                            else:
                                errors[0] += 1
                        if beat % 3 == 0:
                            api.call("PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/status",
                                     {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}, connection,
                                     content_type="application/merge-patch+json")
                        beat += 1
                        stop.wait(10)
                except Exception:
                    with lock:
                        errors[0] += 1
                finally:
                    connection.close()
            threads = [threading.Thread(target=simulate, args=(index,), daemon=True) for index in range(target)]
            for thread in threads:
                thread.start()
            log(f"{target} simulated nodes for {seconds} s")
            time.sleep(seconds)
            with lock:
                measured = list(latencies)
            rss = proc_status(server.pid, "VmRSS") / 1024
            stop.set()
            for thread in threads:
                thread.join(30)
            p99 = percentile(measured, 0.99)
            log(f"  {len(measured)} renewals, p50 {percentile(measured, 0.5) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, errors {errors[0]}, server RSS {rss:.0f} MB")
            results.append((f"lease renew p99, {target} nodes", p99 * 1000, "ms", "", None, "< 1000 ms"))
            if p99 < 1.0 and errors[0] == 0:
                best, nodes = rss, target
            else:
                break
            # The next step simulates other nodes; the finished ones stay stored.
            for index in range(target):
                api.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/sim-{index:05d}")
        results.append(("simulated nodes with p99 renew < 1 s", nodes, "nodes", "", None, "≥ 1000"))
        results.append(("server RSS at that N", best, "MB", "", None, ""))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = proc_meminfo_total() / 1024 ** 3
    return f"{os.cpu_count()} × {model}, {memory:.1f} GiB RAM, kernel {os.uname().release}"


def proc_meminfo_total():
    with open("/proc/meminfo") as meminfo:
        return int(meminfo.readline().split()[1]) * 1024


def print_table(results):
    print(f"\niotkube benchmarks — {machine()}\n")
    header = f"{'measurement':<44} {'value':>12} {'unit':<12} {'peer':<34} {'peer value':>11} {'ratio':>7}  target"
    print(header)
    print("-" * len(header))
    for name, value, unit, peer, peer_value, target in results:
        shown = "—" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))
        peer_shown = "" if peer_value is None else (f"{peer_value:.2f}" if isinstance(peer_value, float) else str(peer_value))
        ratio = f"{value / peer_value:.2f}" if isinstance(value, (int, float)) and value and peer_value else ""
        print(f"{name:<44} {shown:>12} {unit:<12} {peer:<34} {peer_shown:>11} {ratio:>7}  {target}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"), help="where the iotkube binaries are")
    parser.add_argument("--quick", action="store_true", help="fewer pods, 1 minute idle, shorter scale steps")
    parser.add_argument("--only", default="size,start,cgroups,memory,pull,exec,scale,flash,daemonset,services",
                        help="comma-separated: size,start,cgroups,memory,pull,exec,scale,flash,daemonset,services")
    parser.add_argument("--json", help="also write the figures to this file")
    arguments = parser.parse_args()
    if os.getuid() != 0:
        sys.exit("bench: needs root (containers, namespaces, mounts)")
    for tool in ("docker-registry", "umoci", "skopeo", "busybox", "curl", "strip"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing (packaging/install-deps.sh --test installs it)")
    for name in ("iotkube-agent", "iotkube-server"):
        if not os.access(os.path.join(arguments.bin, name), os.X_OK):
            sys.exit(f"bench: no {name} in {arguments.bin} (swift build -c release)")
    only = set(arguments.only.split(","))
    results = []
    work = tempfile.mkdtemp(prefix="iotkube-bench-")
    try:
        if "size" in only:
            measure_sizes(arguments.bin, work, results)
        if "services" in only:
            measure_rules(arguments.bin, results, run, log)
        if only & {"start", "cgroups", "memory", "pull", "exec", "services"}:
            cluster = Cluster(arguments.bin, work)
            try:
                cluster.join_and_start_agent()
                if "start" in only:
                    measure_start(cluster, results, 20 if arguments.quick else 50, 10)
                if "cgroups" in only:
                    measure_pod_cgroups(cluster, results, 20 if arguments.quick else 50, 10)
                if "memory" in only:
                    measure_memory_and_idle(cluster, results, 1 if arguments.quick else 10)
                if "pull" in only:
                    measure_pull(cluster, results)
                if "exec" in only:
                    measure_exec(cluster, results, ROOT, proc_status, ReadyWatch)
                if "services" in only:
                    measure_traffic(cluster, results, ReadyWatch, percentile, log, 10 if arguments.quick else 30)
            finally:
                cluster.close()
        if "scale" in only:
            steps = [100, 500, 1000] if arguments.quick else [250, 500, 1000, 1500, 2000, 3000]
            measure_scale(arguments.bin, work, results, steps, 30 if arguments.quick else 60)
        if "daemonset" in only:
            measure_daemonset(arguments.bin, work, results, API, Cluster.wait_for, free_port, run, log, proc_status, cpu_seconds, arguments.quick)
        if "flash" in only:
            measure_flash(arguments.bin, work, results, API, Cluster.wait_for, free_port, run, log, io_counters, arguments.quick)
    finally:
        print_table(results)
        if arguments.json:
            with open(arguments.json, "w") as out:
                json.dump({"machine": machine(), "results": results}, out, indent=2)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
