"""`podman kube play` of the bench's busybox pod: the peer that is a whole local pod manager
(podman 4.3 from Debian: crun, conmon, its default bridge network through CNI, as the agent's
pods get one), timed from the command's start to its return (the pod's containers started;
no API, watch or status report in between, which the agent's figure includes), sequentially and
`parallel` at a time. The image is
pulled once from the same registry the agent pulls from. podman runs in a mount namespace of its
own where a hybrid host's near-empty cgroup2 mount is covered (crun 1.8 refuses hybrid hosts),
with storage in the bench's work directory and the nofile limit this host's hard limit allows."""
import os
import shutil


def podman_kube_play_times(cluster, count, parallel, run, log):
    """Milliseconds per `podman kube play`: (sequential, in parallel), or None without podman."""
    if shutil.which("podman") is None:
        return None
    base = os.path.join(cluster.work, "podman")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "containers.conf"), "w") as conf:
        conf.write('[containers]\ndefault_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]\n'
                   '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    for name in [f"kp-{i}" for i in range(count)] + [f"kpp-{b}-{i}" for b in range(count // parallel) for i in range(parallel)]:
        with open(os.path.join(base, name + ".yaml"), "w") as pod:
            pod.write(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
                      f"  containers:\n  - name: app\n    image: {cluster.busybox}\n    command: [sleep, '100000']\n")
    podman = f"podman --root '{base}/storage' --runroot '{base}/run' --tmpdir '{base}/tmp'"
    play = "kube play --tls-verify=false"
    script = f"""
        if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified; fi
        export CONTAINERS_CONF='{base}/containers.conf'
        cd '{base}'
        {podman} pull --tls-verify=false '{cluster.busybox}' >/dev/null 2>&1 || echo failed
        for i in $(seq 0 {count - 1}); do
            start=$(date +%s%N)
            {podman} {play} kp-$i.yaml >/dev/null 2>&1 || echo failed
            end=$(date +%s%N)
            echo $(( end - start ))
            {podman} kube down kp-$i.yaml >/dev/null 2>&1
        done
        for batch in $(seq 0 {count // parallel - 1}); do
            for i in $(seq 0 {parallel - 1}); do
                ( start=$(date +%s%N)
                  {podman} {play} kpp-$batch-$i.yaml >/dev/null 2>&1 || echo failed
                  end=$(date +%s%N); echo p$(( end - start )) ) &
            done
            wait
            for i in $(seq 0 {parallel - 1}); do {podman} kube down kpp-$batch-$i.yaml >/dev/null 2>&1; done
        done
        {podman} pod rm -af -t 0 >/dev/null 2>&1
        {podman} system reset -f >/dev/null 2>&1
    """
    output = run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script], timeout=1800).stdout.split()
    shutil.rmtree(base, ignore_errors=True)
    if "failed" in output:
        log("podman kube play failed; no podman figure")
        return None
    sequential = [int(value) / 1e6 for value in output if value.isdigit()]
    together = [int(value[1:]) / 1e6 for value in output if value.startswith("p") and value[1:].isdigit()]
    return sequential, together
