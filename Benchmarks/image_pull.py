#!/usr/bin/env python3
"""Image pull benchmark: `iotkube-agent images pull` against `skopeo copy` (download only) and
`skopeo copy` + `umoci unpack` (download and unpack, the same work as the agent) from one local
registry, in the same run. Prints median wall time, the ratio to skopeo+umoci, and the bytes
written to disk per byte of image (from the kernel's per-process write accounting).

usage: image_pull.py AGENT_BINARY [RUNS]
Needs: docker-registry skopeo umoci busybox-static (packaging/install-deps.sh --test).
"""
import gzip, hashlib, io, json, os, random, resource, shutil, socket, statistics, subprocess, sys, tarfile, tempfile, time, urllib.request

AGENT = os.path.abspath(sys.argv[1])
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
work = tempfile.mkdtemp(prefix="iotkube-bench-", dir="/var/tmp")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_layout(path):
    """busybox + 12 layers of 1 MiB: half random (incompressible), half text (compressible)."""
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        open(os.path.join(blobs, digest), "wb").write(data)
        return "sha256:" + digest, len(data)

    def layer(files):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name, data, mode in files:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), mode, 1700000000
                archive.addfile(info, io.BytesIO(data))
        tar = buffer.getvalue()
        digest, size = put(gzip.compress(tar, compresslevel=6, mtime=0))
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}, \
            "sha256:" + hashlib.sha256(tar).hexdigest()

    rng = random.Random(42)
    layers = [layer([("bin/busybox", open("/bin/busybox", "rb").read(), 0o755)])]
    for i in range(12):
        if i % 2:
            data = bytes(rng.getrandbits(8) for _ in range(1 << 20))
        else:
            data = ("line %d of a log-like text file in layer %d\n" % (i, i) * 30000).encode()[: 1 << 20]
        layers.append(layer([("data/%02d/file-%d" % (i, j), data[j * 65536:(j + 1) * 65536], 0o644) for j in range(16)]))
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]}}
    config_digest, config_size = put(json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
                "layers": [d for d, _ in layers]}
    digest, size = put(json.dumps(manifest).encode())
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(path, "oci-layout"), "w"))
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": manifest["mediaType"], "digest": digest, "size": size,
                                                  "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
              open(os.path.join(path, "index.json"), "w"))
    compressed = sum(d["size"] for d, _ in layers)
    return compressed


def timed(command):
    """Runs command; returns (seconds, bytes written to storage by it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_oublock - before.ru_oublock) * 512


def main():
    port = free_port()
    os.makedirs(os.path.join(work, "storage"))
    config = os.path.join(work, "registry.yml")
    open(config, "w").write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/storage\n"
                            "http:\n  addr: 127.0.0.1:%d\n" % (work, port))
    registry = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/v2/" % port)
                break
            except Exception:
                time.sleep(0.1)
        layout = os.path.join(work, "layout")
        compressed = build_layout(layout)
        reference = "127.0.0.1:%d/bench/image:1" % port
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:%s:bench" % layout, "docker://" + reference], check=True)

        peers = {
            "iotkube-agent images pull": lambda d: [AGENT, "images", "pull", "--root", d, "--config", "/nonexistent",
                                                    "--insecure-registry", "127.0.0.1:%d" % port, reference],
            "skopeo copy (no unpack)": lambda d: ["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + reference, "oci:%s:bench" % d],
            "skopeo copy + umoci unpack": lambda d: ["sh", "-c", 'skopeo copy -q --src-tls-verify=false "docker://$1" "oci:$2/oci:bench" && '
                                                              'umoci unpack --image "$2/oci:bench" "$2/bundle" >/dev/null', "sh", reference, d],
        }
        results = {name: [] for name in peers}
        for run in range(RUNS):
            for name, command in peers.items():   # interleaved, so drift hits every peer alike
                target = os.path.join(work, "run-%d-%d" % (run, list(peers).index(name)))
                os.makedirs(target)
                subprocess.run(["sync"])
                results[name].append(timed(command(target)))
                shutil.rmtree(target, ignore_errors=True)
        floor = statistics.median(t for t, _ in results["skopeo copy + umoci unpack"])
        print("image: %d layers, %d bytes compressed; %d runs each, median" % (13, compressed, RUNS))
        print("%-28s %10s %8s %14s %12s" % ("tool", "seconds", "ratio", "bytes written", "per byte"))
        for name, samples in results.items():
            seconds = statistics.median(t for t, _ in samples)
            written = statistics.median(w for _, w in samples)
            print("%-28s %10.3f %8.2f %14d %12.2f" % (name, seconds, seconds / floor, written, written / compressed))
        print("ratio: time / (skopeo copy + umoci unpack); per byte: bytes written / compressed image bytes")
    finally:
        registry.terminate()
        registry.wait()
        shutil.rmtree(work, ignore_errors=True)


main()
