#!/bin/sh
# Installs the program of this unpacked tarball (iotkube-agent or iotkube-server) on a board
# without apt:
#   sudo ./install.sh            install (or upgrade) and enable the agent's units
#   sudo ./install.sh --remove   stop and remove the program (state and credentials stay;
#                                `iotkube-agent reset` before removing clears the agent's)
# The agent needs the CNI plugins (bridge, host-local, portmap, loopback) in /usr/lib/cni or
# /opt/cni/bin, and iptables.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
programs=$(cd "$here/usr/bin" && ls)
units=$(cd "$here/lib/systemd/system" && ls)
systemd=false
[ -d /run/systemd/system ] && systemd=true
agent=false
[ -x "$here/usr/bin/iotkube-agent" ] && agent=true

if [ "${1:-}" = --remove ]; then
    if $systemd; then
        systemctl disable --now $units >/dev/null 2>&1 || true
    fi
    for program in $programs; do
        rm -f "/usr/bin/$program"
        rm -rf "/usr/share/doc/$program"
    done
    for unit in $units; do rm -f "/etc/systemd/system/$unit"; done
    $agent && rm -rf /usr/share/iotkube
    $systemd && systemctl daemon-reload
    echo "$programs removed (state in /var/lib/iotkube and /etc/iotkube kept)"
    exit 0
fi

upgrade=false
[ -x /usr/bin/iotkube-agent ] && upgrade=true
# Replace the binaries by rename, so a running program keeps its file until it restarts.
for program in $programs; do
    install -m 0755 "$here/usr/bin/$program" "/usr/bin/.$program.new"
    mv -f "/usr/bin/.$program.new" "/usr/bin/$program"
done
# Units from a tarball go to /etc (the package's place, /lib, belongs to dpkg).
for unit in $units; do install -m 0644 "$here/lib/systemd/system/$unit" "/etc/systemd/system/$unit"; done
[ -d "$here/usr/share/iotkube" ] && mkdir -p /usr/share/iotkube && cp -a "$here/usr/share/iotkube/." /usr/share/iotkube/
for program in $programs; do
    mkdir -p "/usr/share/doc/$program"
    cp -a "$here/usr/share/doc/$program/." "/usr/share/doc/$program/"
done

if ! $agent; then
    $systemd && systemctl daemon-reload
    echo "iotkube-server installed. Create a cluster with: iotkube-server init --data-dir /var/lib/iotkube-server"
    exit 0
fi
found=false
for directory in /usr/lib/cni /opt/cni/bin; do [ -x "$directory/bridge" ] && found=true; done
$found || echo "warning: no CNI plugins in /usr/lib/cni or /opt/cni/bin: pods need bridge, host-local, portmap and loopback" >&2
command -v iptables >/dev/null 2>&1 || echo "warning: iptables is missing: pod networking needs it" >&2

if $systemd; then
    systemctl daemon-reload
    systemctl enable iotkube-agent.service iotkube-provision.service >/dev/null
    $upgrade && systemctl try-restart iotkube-agent.service || true
fi
echo "iotkube $("/usr/bin/iotkube-agent" version 2>/dev/null | head -1) installed. Join with: iotkube-agent join <token>"
