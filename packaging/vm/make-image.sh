#!/usr/bin/env bash
# Builds a Debian bookworm VM image for the end-to-end tests: systemd as PID 1, pure cgroup v2,
# DHCP on qemu's user network, and a job runner that executes scripts the host drops into a 9p
# control folder (see vm.sh).
#   packaging/vm/make-image.sh OUT_DIR
# Writes OUT_DIR/{rootfs.img,vmlinuz,initrd.img}. A finished image is reused as long as this script
# and VM_EXTRA_PACKAGES are unchanged (OUT_DIR/stamp); downloaded packages stay in OUT_DIR/debs.
# Needs root, debootstrap, e2fsprogs (mkfs.ext4 -d: no loop devices or mounts), cpio, busybox-static
# and a Debian mirror (VM_MIRROR, default: the host's first apt source, else deb.debian.org).
set -euo pipefail

out=${1:?usage: make-image.sh OUT_DIR}
extra=${VM_EXTRA_PACKAGES:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# One build at a time per OUT_DIR: test suites running side by side wait for the first one's image.
exec 9>"$out/.lock"
flock 9
stamp="$(sha256sum "$0" | cut -d' ' -f1) $extra"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] \
    && [ -f "$out/rootfs.img" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
    echo "vm image: up to date in $out"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "make-image.sh: needs root (debootstrap)" >&2; exit 1; }
for tool in debootstrap mkfs.ext4 cpio gzip busybox; do
    command -v "$tool" >/dev/null || { echo "make-image.sh: $tool is missing (apt-get install debootstrap e2fsprogs cpio busybox-static)" >&2; exit 1; }
done

mirror=${VM_MIRROR:-$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)}
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
root="$out/rootfs"
started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started )) s"; }
unmount_all() {
    for mountpoint in "$root/dev" "$root/proc"; do mountpoint -q "$mountpoint" 2>/dev/null && umount -l "$mountpoint"; done
    return 0
}
trap unmount_all EXIT
rm -f "$out/stamp"
unmount_all
rm -rf "$root"
mkdir -p "$out/debs"

# The agent package's dependencies are preinstalled: the tests install the .deb with dpkg, offline.
packages=systemd,systemd-sysv,dbus,udev,kmod,iproute2,procps,linux-image-amd64,initramfs-tools,busybox-static,ca-certificates,containernetworking-plugins,iptables,libstdc++6
echo "vm image: debootstrap bookworm from $mirror"
if ! debootstrap --variant=minbase --cache-dir="$out/debs" --include="$packages" bookworm "$root" "$mirror" >"$out/debootstrap.log" 2>&1; then
    tail -30 "$out/debootstrap.log" >&2
    exit 1
fi
echo "vm image: debootstrap done after $(elapsed)"

if [ -n "$extra" ]; then
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
    if ! { chroot "$root" apt-get update && DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y --no-install-recommends $extra; } >"$out/extra.log" 2>&1; then
        tail -30 "$out/extra.log" >&2
        exit 1
    fi
    chroot "$root" apt-get clean
    unmount_all
    echo "vm image: extra packages ($extra) after $(elapsed)"
fi

echo vm > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vm\n' > "$root/etc/hosts"
echo "/dev/vda / ext4 defaults,noatime 0 1" > "$root/etc/fstab"
echo "nameserver 10.0.2.3" > "$root/etc/resolv.conf"
chroot "$root" passwd -d root >/dev/null
mkdir -p "$root/etc/systemd/network" "$root/etc/systemd/journald.conf.d"
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=ipv4\n' > "$root/etc/systemd/network/20-wired.network"
printf '[Journal]\nStorage=volatile\n' > "$root/etc/systemd/journald.conf.d/volatile.conf"
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
for unit in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    e2scrub_reap.service fstrim.timer dpkg-db-backup.timer systemd-timesyncd.service getty@tty1.service; do
    chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done

# The job runner: mounts the 9p folders "control" (jobs) and "share" (the host's test files), then
# runs control/jobs/<id>.sh one at a time, writing <id>.out, <id>.err and finally <id>.status.
# A file control/poweroff ends the loop with a clean shutdown.
cat > "$root/usr/local/sbin/iotkube-vm-runner" <<'RUNNER'
#!/bin/bash
set -u
options=trans=virtio,version=9p2000.L,msize=1048576,cache=none
modprobe 9pnet_virtio 2>/dev/null; modprobe 9p 2>/dev/null
mkdir -p /mnt/control /mnt/share
mount -t 9p -o "$options" control /mnt/control || exit 0
mount -t 9p -o "$options" share /mnt/share || true
for _ in $(seq 1 200); do ip -4 addr show scope global | grep -q inet && break; sleep 0.1; done
timeout 120 systemctl is-system-running --wait >/dev/null 2>&1
mkdir -p /mnt/control/jobs
cut -d' ' -f1 /proc/uptime > /mnt/control/ready.tmp && mv /mnt/control/ready.tmp /mnt/control/ready
while [ ! -e /mnt/control/poweroff ]; do
    ran=false
    for job in /mnt/control/jobs/*.sh; do
        [ -e "$job" ] || continue
        base=${job%.sh}
        [ -e "$base.status" ] && continue
        (cd /mnt/share && exec bash "$job" </dev/null >"$base.out" 2>"$base.err")
        echo $? > "$base.status.tmp" && mv "$base.status.tmp" "$base.status"
        ran=true
    done
    $ran || sleep 0.05
done
sync
systemctl --no-block poweroff
RUNNER
chmod 0755 "$root/usr/local/sbin/iotkube-vm-runner"
cat > "$root/etc/systemd/system/iotkube-vm-runner.service" <<'UNIT'
[Unit]
Description=Run the host's test jobs from the 9p control folder
After=systemd-networkd.service systemd-journald.socket dbus.service local-fs.target
Wants=systemd-networkd.service

[Service]
Type=simple
ExecStart=/usr/local/sbin/iotkube-vm-runner
KillMode=process
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable iotkube-vm-runner.service >/dev/null 2>&1

# A small initrd (busybox + the modules that reach the root disk) boots faster under emulation
# than Debian's initramfs.
kernel=$(ls "$root/lib/modules" | sort -V | tail -1)
cp "$root/boot/vmlinuz-$kernel" "$out/vmlinuz"
initrd=$(mktemp -d)
mkdir -p "$initrd"/{bin,dev,proc,sys,newroot,modules}
cp "$(command -v busybox)" "$initrd/bin/busybox"
for module in virtio_pci virtio_blk virtio_net ext4 9pnet_virtio 9p; do
    chroot "$root" modprobe -S "$kernel" --show-depends "$module" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r path; do
    cp "$root$path" "$initrd/modules/"
    basename "$path" >> "$initrd/modules/order"
done
cat > "$initrd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules/order); do insmod "/modules/$module" 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
mount -t ext4 -o rw,noatime /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; exec sh; }
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
INIT
chmod 0755 "$initrd/init"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.img"
rm -rf "$initrd"

rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/boot/initrd.img-"*
rm -f "$out/rootfs.img"
mkfs.ext4 -q -F -L iotkube-vm -d "$root" "$out/rootfs.img" 3G
rm -rf "$root"
echo "$stamp" > "$out/stamp"
echo "vm image: built in $(elapsed) ($out)"
