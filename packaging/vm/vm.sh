#!/usr/bin/env bash
# Drives a VM built by make-image.sh under qemu (software emulation; KVM is used when VM_ACCEL=kvm).
#   vm.sh start IMAGE_DIR CONTROL_DIR SHARE_DIR [HOSTFWD...]  boot; returns when the job runner is ready
#   vm.sh exec CONTROL_DIR SCRIPT                             run a bash script in the guest (cwd: the share)
#   vm.sh stop CONTROL_DIR                                    clean poweroff (qemu killed after 90 s)
# The guest disk is a qcow2 overlay in CONTROL_DIR over the read-only image; it survives stop/start
# (a reboot keeps the guest's state) and is recreated when VM_FRESH=1. SHARE_DIR appears in the
# guest as /mnt/share; HOSTFWD rules are qemu's (tcp:127.0.0.1:8080-:80). The guest reaches the
# host's loopback services at 10.0.2.2. VM_KERNEL_ARGS adds to the kernel command line. exec prints the job's stdout and stderr and exits with its
# status (124 after VM_EXEC_TIMEOUT seconds, default 900).
set -euo pipefail

die() { echo "vm.sh: $*" >&2; exit 2; }
running() { [ -f "$1/qemu.pid" ] && kill -0 "$(cat "$1/qemu.pid")" 2>/dev/null; }

start() {
    local image=$1 control=$2 share=$3
    shift 3
    for file in rootfs.img vmlinuz initrd.img; do [ -f "$image/$file" ] || die "no $image/$file (run make-image.sh)"; done
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing (apt-get install qemu-system-x86 qemu-utils)"
    mkdir -p "$control"
    control=$(cd "$control" && pwd); share=$(cd "$share" && pwd); image=$(cd "$image" && pwd)
    running "$control" && die "a VM already runs with $control"
    rm -rf "$control/jobs" "$control/ready" "$control/poweroff"
    if [ "${VM_FRESH:-0}" = 1 ] || [ ! -f "$control/disk.qcow2" ]; then
        rm -f "$control/disk.qcow2"
        qemu-img create -q -f qcow2 -F raw -b "$image/rootfs.img" "$control/disk.qcow2"
    fi
    local network=user,id=net0 rule
    for rule in "$@"; do network+=",hostfwd=$rule"; done
    local accel=(-accel tcg,thread=multi -cpu max)
    [ "${VM_ACCEL:-tcg}" = kvm ] && accel=(-accel kvm -cpu host)
    local began=$SECONDS
    # qemu outlives this script: it must not hold the caller's pipes (descriptors above 2 included).
    (
        for descriptor in /proc/$BASHPID/fd/*; do
            descriptor=${descriptor##*/}
            [ "$descriptor" -gt 2 ] && eval "exec $descriptor>&-"
        done
        exec setsid qemu-system-x86_64 -nodefaults "${accel[@]}" -smp "${VM_CPUS:-2}" -m "${VM_MEMORY:-1536}" \
        -display none -monitor none -serial "file:$control/console.log" -no-reboot \
        -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet loglevel=3 systemd.show_status=0 mitigations=off ${VM_KERNEL_ARGS:-}" \
        -drive "file=$control/disk.qcow2,if=virtio,format=qcow2,cache=unsafe" \
        -virtfs "local,path=$control,mount_tag=control,security_model=none,id=control" \
        -virtfs "local,path=$share,mount_tag=share,security_model=passthrough,id=share" \
        -netdev "$network" -device virtio-net-pci,netdev=net0 \
        </dev/null >"$control/qemu.log" 2>&1
    ) &
    echo $! > "$control/qemu.pid"
    while [ ! -f "$control/ready" ]; do
        if ! running "$control"; then
            tail -n 20 "$control/console.log" >&2; tail -n 20 "$control/qemu.log" >&2; die "qemu exited during boot"
        fi
        if [ $((SECONDS - began)) -gt "${VM_BOOT_TIMEOUT:-600}" ]; then
            kill "$(cat "$control/qemu.pid")"; tail -n 20 "$control/console.log" >&2; die "the guest was not ready after ${VM_BOOT_TIMEOUT:-600} s"
        fi
        sleep 0.2
    done
    echo "vm: ready after $((SECONDS - began)) s (guest uptime $(cat "$control/ready") s)"
}

run_job() {
    local control=$1 script=$2
    control=$(cd "$control" && pwd)
    running "$control" || die "no VM runs with $control"
    local job
    job="$control/jobs/$(date +%s%N)-$$"
    printf '#!/bin/bash\n%s\n' "$script" > "$job.tmp"
    mv "$job.tmp" "$job.sh"
    local began=$SECONDS
    while [ ! -f "$job.status" ]; do
        running "$control" || { cat "$job.out" "$job.err" 2>/dev/null; die "the VM stopped during the job"; }
        if [ $((SECONDS - began)) -gt "${VM_EXEC_TIMEOUT:-900}" ]; then
            cat "$job.out"; cat "$job.err" >&2; echo "vm.sh: job timed out after ${VM_EXEC_TIMEOUT:-900} s" >&2; exit 124
        fi
        sleep 0.05
    done
    cat "$job.out"; cat "$job.err" >&2
    exit "$(cat "$job.status")"
}

stop() {
    local control=$1
    running "$control" || return 0
    local pid
    pid=$(cat "$control/qemu.pid")
    touch "$control/poweroff"
    for _ in $(seq 1 900); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; echo "vm: killed qemu (no poweroff within 90 s)" >&2; fi
    rm -f "$control/qemu.pid"
}

case "${1:-}" in
    start) [ $# -ge 4 ] || die "usage: vm.sh start IMAGE_DIR CONTROL_DIR SHARE_DIR [HOSTFWD...]"; shift; start "$@" ;;
    exec) [ $# -eq 3 ] || die "usage: vm.sh exec CONTROL_DIR SCRIPT"; run_job "$2" "$3" ;;
    stop) [ $# -eq 2 ] || die "usage: vm.sh stop CONTROL_DIR"; stop "$2" ;;
    *) die "usage: vm.sh start|exec|stop ..." ;;
esac
