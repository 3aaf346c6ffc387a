#!/usr/bin/env python3
"""Builds an OCI image layout of test images, hostile ones included, with the standard library
only. Each image is a tag (org.opencontainers.image.ref.name) that skopeo can push.

usage: make_layout.py LAYOUT_DIR
"""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

LAYOUT = sys.argv[1]
BLOBS = os.path.join(LAYOUT, "blobs", "sha256")
os.makedirs(BLOBS, exist_ok=True)
index = []
MTIME = 1700000000


def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(BLOBS, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def tar_bytes(entries):
    """entries: list of dicts with name, type, and data/linkname/mode/uid/gid/devmajor/devminor/pax."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type = e.get("type", tarfile.REGTYPE)
            info.mode = e.get("mode", 0o755 if info.type == tarfile.DIRTYPE else 0o644)
            info.uid, info.gid = e.get("uid", 0), e.get("gid", 0)
            info.mtime = e.get("mtime", MTIME)
            info.linkname = e.get("linkname", "")
            info.devmajor, info.devminor = e.get("devmajor", 0), e.get("devminor", 0)
            if "pax" in e:
                info.pax_headers = e["pax"]
            data = e.get("data", b"")
            if info.type == tarfile.REGTYPE:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def layer(entries=None, raw=None, compress="gzip"):
    tar = raw if raw is not None else tar_bytes(entries)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    if compress == "gzip":
        blob = gzip.compress(tar, mtime=0)
        media = "application/vnd.oci.image.layer.v1.tar+gzip"
    elif compress == "zstd":
        blob = subprocess.run(["zstd", "-q", "-c", "-3"], input=tar, stdout=subprocess.PIPE, check=True).stdout
        media = "application/vnd.oci.image.layer.v1.tar+zstd"
    else:
        blob = tar
        media = "application/vnd.oci.image.layer.v1.tar"
    digest, size = put(blob)
    return {"mediaType": media, "digest": digest, "size": size}, diff_id


def image(tag, layers, arch="amd64", variant=None, cmd=None, diff_ids=None, register=True):
    descriptors = [d for d, _ in layers]
    config = {
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": cmd or ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids or [i for _, i in layers]},
    }
    if variant:
        config["variant"] = variant
    config_digest, config_size = put(json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descriptors,
    }
    digest, size = put(json.dumps(manifest).encode())
    descriptor = {"mediaType": manifest["mediaType"], "digest": digest, "size": size}
    if register:
        index.append(dict(descriptor, annotations={"org.opencontainers.image.ref.name": tag}))
    return descriptor


def image_index(tag, entries):
    body = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
    digest, size = put(json.dumps(body).encode())
    index.append({"mediaType": body["mediaType"], "digest": digest, "size": size,
                  "annotations": {"org.opencontainers.image.ref.name": tag}})


def busybox_entries():
    """/bin/busybox from the host's busybox-static with its applets as symlinks."""
    entries = [{"name": d, "type": tarfile.DIRTYPE} for d in ("bin", "etc", "tmp", "usr", "usr/bin", "sbin", "usr/sbin")]
    entries[2]["mode"] = 0o1777
    with open("/bin/busybox", "rb") as f:
        entries.append({"name": "bin/busybox", "data": f.read(), "mode": 0o755})
    for applet in ("sh", "ls", "cat", "echo", "true", "sleep", "wget", "httpd", "id"):
        entries.append({"name": "bin/" + applet, "type": tarfile.SYMTYPE, "linkname": "busybox"})
    entries.append({"name": "etc/passwd", "data": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"})
    entries.append({"name": "etc/group", "data": b"root:x:0:\nnogroup:x:65534:\n"})
    return entries


base = layer(busybox_entries())
image("busybox", [base], cmd=["httpd", "-f", "-p", "8080"])

# Whiteouts and opaque directories over three layers; a hard link, a fifo, xattrs, odd modes.
l1 = layer([
    {"name": "data", "type": tarfile.DIRTYPE},
    {"name": "data/keep", "data": b"keep\n"},
    {"name": "data/gone", "data": b"gone\n"},
    {"name": "data/gonedir", "type": tarfile.DIRTYPE},
    {"name": "data/gonedir/inner", "data": b"inner\n"},
    {"name": "opaque", "type": tarfile.DIRTYPE, "mode": 0o750},
    {"name": "opaque/old1", "data": b"old1\n"},
    {"name": "opaque/old2", "data": b"old2\n"},
    {"name": "owned", "data": b"owned by 1000\n", "uid": 1000, "gid": 1000, "mode": 0o640},
    {"name": "readonly", "type": tarfile.DIRTYPE, "mode": 0o555},
    {"name": "readonly/file", "data": b"ro\n", "mode": 0o444},
    {"name": "pipe", "type": tarfile.FIFOTYPE, "mode": 0o600},
    {"name": "attrs", "data": b"with xattr\n", "pax": {"SCHILY.xattr.user.iotkube": "yes"}},
    {"name": "data/hard", "type": tarfile.LNKTYPE, "linkname": "data/keep"},
])
l2 = layer([
    {"name": "data/.wh.gone", "data": b""},
    {"name": "data/.wh.gonedir", "data": b""},
    {"name": "opaque/.wh..wh..opq", "data": b""},
    {"name": "opaque/new", "data": b"new\n"},
    {"name": "a/very/" + "long/" * 30 + "path.txt", "data": b"long path\n"},
])
l3 = layer([
    {"name": "data/gone", "data": b"back again\n", "mode": 0o600},
    {"name": "replaced", "type": tarfile.SYMTYPE, "linkname": "/data/keep"},
])
image("layered", [base, l1, l2, l3])

# Many small layers.
image("many", [base] + [layer([{"name": "layers/%02d" % i, "data": b"layer %d\n" % i}]) for i in range(40)])

# zstd layers (two frames' worth of files).
image("zstd", [layer(busybox_entries(), compress="zstd"), layer([{"name": "z.txt", "data": b"zstd\n" * 1000}], compress="zstd")])

# Uncompressed layer.
image("plain", [base, layer([{"name": "plain.txt", "data": b"uncompressed\n"}], compress="none")])

# Multi-arch: amd64, arm64/v8, arm/v7 and arm/v6, each marking which one it is.
def arch_image(arch, variant):
    marker = layer([{"name": "etc/arch", "data": ("%s/%s\n" % (arch, variant or "")).encode()}])
    return image(None, [base, marker], arch=arch, variant=variant, register=False)

entries = []
for arch, variant in (("amd64", None), ("arm64", "v8"), ("arm", "v7"), ("arm", "v6")):
    d = arch_image(arch, variant)
    d["platform"] = {"architecture": arch, "os": "linux"}
    if variant:
        d["platform"]["variant"] = variant
    entries.append(d)
image_index("multi", entries)
image_index("armonly", entries[1:])
image("arm64", [base, layer([{"name": "etc/arch", "data": b"arm64\n"}])], arch="arm64", variant="v8")

# Hostile layers.
image("traversal", [base, layer([{"name": "../escaped", "data": b"x\n"}])])
image("absolute", [base, layer([{"name": "/abs-escaped", "data": b"x\n"}])])
image("symlink-escape", [base, layer([
    {"name": "up", "type": tarfile.SYMTYPE, "linkname": "../../../../../../../.."},
    {"name": "up/tmp/iotkube-escaped", "data": b"x\n"},
])])
image("symlink-absolute", [base, layer([
    {"name": "etclink", "type": tarfile.SYMTYPE, "linkname": "/etc"},
    {"name": "etclink/iotkube-contained", "data": b"stays inside\n"},
])])
image("hardlink-escape", [base, layer([{"name": "stolen", "type": tarfile.LNKTYPE, "linkname": "../../../../etc/passwd"}])])
image("hardlink-via-symlink", [base, layer([
    {"name": "root", "type": tarfile.SYMTYPE, "linkname": "../../../../../../.."},
    {"name": "stolen", "type": tarfile.LNKTYPE, "linkname": "root/etc/passwd"},
])])
image("devices", [base, layer([
    {"name": "dev", "type": tarfile.DIRTYPE},
    {"name": "dev/evil-mem", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 1, "mode": 0o666},
    {"name": "dev/evil-sda", "type": tarfile.BLKTYPE, "devmajor": 8, "devminor": 0, "mode": 0o666},
    {"name": "bin/setuid-tool", "data": b"#!/bin/sh\n", "mode": 0o4755},
    {"name": "bin/setgid-tool", "data": b"#!/bin/sh\n", "mode": 0o2755},
])])
# Layers that try to change files outside the image through the directory metadata applied
# after the layer (a directory replaced by a symlink, itself or a parent) or to copy the
# metadata of a host directory through a symlink in a lower layer. The targets sit next to
# the layout; the tests create them.
HOST = os.path.dirname(os.path.abspath(LAYOUT))
image("chmod-via-symlink", [base, layer([
    {"name": "late", "type": tarfile.DIRTYPE, "mode": 0o6777, "uid": 4242, "gid": 4242, "mtime": 1000},
    {"name": "late", "type": tarfile.SYMTYPE, "linkname": HOST + "/host-victim"},
])])
image("chmod-via-parent", [base, layer([
    {"name": "deep", "type": tarfile.DIRTYPE},
    {"name": "deep/sub", "type": tarfile.DIRTYPE, "mode": 0o6777, "uid": 4242, "gid": 4242, "mtime": 1000},
    {"name": "deep", "type": tarfile.SYMTYPE, "linkname": HOST + "/host-victim-dir"},
])])
image("lower-symlink", [base, layer([
    {"name": "peek", "type": tarfile.SYMTYPE, "linkname": HOST + "/host-peek-dir"},
]), layer([
    {"name": "peek/sub/file", "data": b"x\n"},
])])
image("wrong-diffid", [base, layer([{"name": "x", "data": b"x\n"}])],
      diff_ids=[base[1], "sha256:" + "0" * 64])
# 300 MiB of zeros: about 300 KiB compressed, far past 100x its size and the 256 MiB floor.
zeros = io.BytesIO()
with gzip.GzipFile(fileobj=zeros, mode="wb", mtime=0, compresslevel=9) as gz:
    header = tarfile.TarInfo("zeros")
    header.size = 300 << 20
    header.mtime = MTIME
    gz.write(header.tobuf(format=tarfile.PAX_FORMAT))
    chunk = bytes(1 << 20)
    for _ in range(300):
        gz.write(chunk)
    gz.write(bytes(1024))
bomb_blob = zeros.getvalue()
bomb_digest, bomb_size = put(bomb_blob)
image("bomb", [base, ({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": bomb_digest, "size": bomb_size},
                      "sha256:" + "1" * 64)])

with open(os.path.join(LAYOUT, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(LAYOUT, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index}, f)
print("tags:", " ".join(m["annotations"]["org.opencontainers.image.ref.name"] for m in index))
