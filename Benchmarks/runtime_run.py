#!/usr/bin/env python3
"""Runtime benchmark: create+start+wait+delete of /bin/true, `iotkube-agent runtime run` against
`crun run` on the same bundle in the same run (interleaved), and the resident memory of the
per-container monitor with 10 containers sleeping.

usage: runtime_run.py AGENT_BINARY [RUNS]
Needs root, busybox-static and crun. crun 1.8 refuses this host's hybrid cgroups, so both
runtimes run in a private mount namespace where /sys/fs/cgroup/unified is hidden, and crun with
its cgroup manager disabled; the built-in runtime still creates its v1 cgroups (more work).
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time, uuid

AGENT = os.path.abspath(sys.argv[1])
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
work = tempfile.mkdtemp(prefix="iotkube-runtime-bench-")


def make_bundle():
    rootfs = os.path.join(work, "bundle", "rootfs")
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for applet in ("true", "sh", "sleep"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    bundle = os.path.join(work, "bundle")
    subprocess.run([AGENT, "runtime", "spec", "--bundle", bundle], check=True)
    config = json.load(open(os.path.join(bundle, "config.json")))
    config["process"]["args"] = ["/bin/true"]
    config["linux"]["cgroupsPath"] = "/iotkube-bench/c"
    config["ociVersion"] = "1.0.2"   # crun 1.8 knows versions up to 1.0.x/1.1.x
    json.dump(config, open(os.path.join(bundle, "config.json"), "w"))
    return bundle


def main():
    bundle = make_bundle()
    ours_root = os.path.join(work, "ours")
    crun_root = os.path.join(work, "crun")
    script = os.path.join(work, "loop.sh")
    # One namespace for the whole measurement; each tool runs N times inside it.
    # State on tmpfs, as /run is on a real system.
    open(script, "w").write("""#!/bin/sh
mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified 2>/dev/null
mkdir -p $4 && mount -t tmpfs none $4
tool=$1; n=$2; bundle=$3; root=$4; agent=$5
i=0
while [ $i -lt $n ]; do
  if [ $tool = crun ]; then crun --root $root --cgroup-manager=disabled run -b $bundle c$i >/dev/null || exit 1
  else $agent runtime --root $root run -b $bundle c$i >/dev/null || exit 1; fi
  i=$((i+1))
done
""")
    samples = {"iotkube-agent runtime run": [], "crun run": []}
    batch = 10
    for start in range(0, RUNS, batch):
        for name, tool, root in (("iotkube-agent runtime run", "ours", ours_root), ("crun run", "crun", crun_root)):
            began = time.monotonic()
            subprocess.run(["unshare", "-m", "--propagation", "private", "sh", script, tool, str(batch), bundle, root, AGENT],
                           check=True, stdout=subprocess.DEVNULL)
            samples[name].append((time.monotonic() - began) / batch)
    ours = statistics.median(samples["iotkube-agent runtime run"])
    crun = statistics.median(samples["crun run"])
    print("%d containers each (/bin/true; new pid, net, ipc, uts, mount, cgroup namespaces; seccomp)" % RUNS)
    print("%-28s %12s %8s" % ("runtime", "ms each", "ratio"))
    print("%-28s %12.1f %8.2f" % ("crun run", crun * 1000, 1.0))
    print("%-28s %12.1f %8.2f" % ("iotkube-agent runtime run", ours * 1000, ours / crun))

    # Monitor memory: 10 containers sleeping, RSS of each monitor process.
    config_path = os.path.join(bundle, "config.json")
    config = json.load(open(config_path))
    config["process"]["args"] = ["sleep", "60"]
    json.dump(config, open(config_path, "w"))
    sleep_root = os.path.join(work, "sleepers")
    ids = ["s%d" % i for i in range(10)]
    for cid in ids:
        subprocess.run([AGENT, "runtime", "--root", sleep_root, "create", "--bundle", bundle, "--container-log", "/dev/null", cid], check=True)
        subprocess.run([AGENT, "runtime", "--root", sleep_root, "start", cid], check=True)
    rss, pss = [], []
    for line in subprocess.run(["ps", "-eo", "pid,rss,args"], capture_output=True, text=True).stdout.splitlines():
        if "__iotkube-monitor" in line and sleep_root in line:
            pid, resident = line.split()[:2]
            rss.append(int(resident))
            for row in open("/proc/%s/smaps_rollup" % pid):
                if row.startswith("Pss:"):
                    pss.append(int(row.split()[1]))
    for cid in ids:
        subprocess.run([AGENT, "runtime", "--root", sleep_root, "delete", "--force", cid], check=True)
    print("monitor per container, %d monitors: median RSS %d KiB, median PSS %d KiB (file pages shared; target <= 2048 KiB)"
          % (len(rss), statistics.median(rss), statistics.median(pss)))
    shutil.rmtree(work, ignore_errors=True)


main()
