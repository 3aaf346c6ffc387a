#!/usr/bin/env bash
# Builds the packages from a release build with the Swift runtime linked statically, one for the
# agent (all a board installs) and one for the server:
#   <out>/iotkube-agent_<version>_<arch>.deb, iotkube-server_<version>_<arch>.deb
#                          for Debian / Raspberry Pi OS (dpkg, apt)
#   <out>/iotkube-agent-<version>-linux-<arch>.tar.gz, iotkube-server-<version>-linux-<arch>.tar.gz
#                          for boards without apt (unpack, run install.sh)
# Usage: packaging/build-deb.sh [OUT_DIR]   (default .build/package)
# Other architectures are built the same way with a Swift SDK for the target
# (SWIFT_SDK=<aarch64 or armv7 Linux SDK> DEB_ARCH=arm64|armhf packaging/build-deb.sh); see README.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${1:-$top/.build/package}
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/SystemSupport/IotkubeVersion.swift)
[ -n "$version" ] || { echo "build-deb.sh: no release version in Sources/SystemSupport/IotkubeVersion.swift" >&2; exit 1; }
arch=${DEB_ARCH:-$(dpkg --print-architecture)}
# The release flags (and the glibc check) are shared with the quickstart: one build serves both.
source packaging/release-build.sh
build=("${release_build[@]}")
started=$(date +%s)
"${build[@]}" --product iotkube-agent
"${build[@]}" --product iotkube-server
bin=$("${build[@]}" --show-bin-path)
echo "release build: $(( $(date +%s) - started )) s"

# Only what every Debian-based board has may remain dynamically linked (read from the ELF
# headers, so this works for a cross-compiled binary too).
for program in iotkube-agent iotkube-server; do
    unexpected=$(readelf -d "$bin/$program" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' \
        | grep -Ev '^(libc\.so|libm\.so|libstdc\+\+\.so|libgcc_s\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|ld-linux)' || true)
    if [ -n "$unexpected" ]; then
        echo "error: $program links libraries a stock board may lack: $unexpected" >&2
        exit 1
    fi
done

# The agent's code is laid out in the order of packaging/agent-symbol-order.txt (Package.swift).
# Names the code no longer has are skipped: far fewer found means the code changed much since
# packaging/symbol-order.py wrote the file, and a board keeps more of the code resident.
ordered=$(grep -c . packaging/agent-symbol-order.txt || true)
found=$(LC_ALL=C comm -12 <(readelf -sW "$bin/iotkube-agent" | awk '$4 == "FUNC" { print $8 }' | LC_ALL=C sort -u) \
    <(LC_ALL=C sort -u packaging/agent-symbol-order.txt) | wc -l)
echo "agent code order: $found of $ordered ordered functions are in the agent"
if (( ordered == 0 || found * 10 < ordered * 8 )); then
    echo "warning: the agent's code order is stale; run packaging/symbol-order.py (as root) to write it again" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

copyright() {
    cat <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: iotkube
Files: *
Copyright: the iotkube authors
License: Apache-2.0
 The statically linked Swift runtime and packages (swift-nio, swift-crypto, swift-certificates,
 swift-log, swift-argument-parser, swift-service-lifecycle) are Apache-2.0; libseccomp is
 LGPL-2.1, libcap BSD-3-Clause, libyaml MIT, zlib Zlib, zstd BSD-3-Clause, SQLite public domain.
EOF
}

# stage PACKAGE UNIT...: the tree of package PACKAGE (program PACKAGE) in $work/PACKAGE, whose
# "./" is the target's /.
stage() {
    local package=$1
    shift
    local root="$work/$package"
    install -d -m 0755 "$root" "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/share/doc/$package" "$root/DEBIAN"
    install -m 0755 "$bin/$package" "$root/usr/bin/$package"
    strip --strip-unneeded "$root/usr/bin/$package"
    for unit in "$@"; do install -m 0644 "systemd/$unit" "$root/lib/systemd/system/"; done
    install -m 0644 README.md "$root/usr/share/doc/$package/README.md"
    copyright > "$root/usr/share/doc/$package/copyright"
}

stage iotkube-agent iotkube-agent.service iotkube-provision.service
stage iotkube-server iotkube-server.service
install -m 0644 configs/agent.yaml.example "$work/iotkube-agent/usr/share/doc/iotkube-agent/agent.yaml.example"
# The RuntimeDefault seccomp profile pods get, as JSON (a starting point for Localhost profiles).
install -d "$work/iotkube-agent/usr/share/iotkube/seccomp"
spec=$(mktemp -d)
# (A cross-compiled binary cannot run here: a native build writes the same profile.)
"$bin/iotkube-agent" runtime spec --bundle "$spec" 2>/dev/null || swift run -q iotkube-agent runtime spec --bundle "$spec"
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["linux"]["seccomp"], indent=2))' "$spec/config.json" \
    > "$work/iotkube-agent/usr/share/iotkube/seccomp/runtime-default.json"
rm -rf "$spec"

# control PACKAGE DEPENDS RECOMMENDS DESCRIPTION-LINE...: its DEBIAN/control. Both take over from the single
# `iotkube` package of earlier builds, so an upgrade from it goes through.
control() {
    local package=$1 depends=$2 recommends=$3
    shift 3
    local root="$work/$package"
    cat > "$root/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: iotkube developers <iotkube@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Recommends: $recommends
Breaks: iotkube
Replaces: iotkube
Section: admin
Priority: optional
EOF
    printf '%s\n' "$@" >> "$root/DEBIAN/control"
}
# The oldest glibc the binaries load on: the newest symbol version they need, and 2.36 for packed
# relative relocations (DT_RELR, see Package.swift).
# Prints it; a binary it cannot read, or one that names no glibc version, stops the build.
glibc_needed() {
    local versions needs
    versions=$(readelf -W -V "$1") || { echo "build-deb.sh: readelf cannot read $1" >&2; return 1; }
    needs=$(grep -o 'Name: GLIBC_2\.[0-9.]*' <<<"$versions" | sed 's/Name: GLIBC_//' | sort -V | tail -1 || true)
    if [[ $versions == *GLIBC_ABI_DT_RELR* ]]; then needs=$(printf '%s\n2.36\n' "$needs" | sort -V | tail -1); fi
    [[ $needs =~ ^2\.[0-9]+ ]] || { echo "build-deb.sh: no glibc version needed by $1" >&2; return 1; }
    echo "$needs"
}
agent_glibc=$(glibc_needed "$work/iotkube-agent/usr/bin/iotkube-agent")
server_glibc=$(glibc_needed "$work/iotkube-server/usr/bin/iotkube-server")
control iotkube-agent "libc6 (>= $agent_glibc), libstdc++6, libgcc-s1, containernetworking-plugins, iptables, iproute2" "systemd, nftables" \
    "Description: lightweight Kubernetes node agent for IoT boards" \
    " iotkube-agent joins a board to a Kubernetes API (iotkube-server or k3s/kubeadm), pulls OCI" \
    " images and runs pods itself: namespaces, cgroups v2 (and v1), seccomp, capabilities, CNI" \
    " networking, probes, restarts, logs, static pods, and pods that restart after a reboot while" \
    " the server is unreachable."
control iotkube-server "libc6 (>= $server_glibc), libstdc++6, libgcc-s1" "systemd" \
    "Description: small Kubernetes API server with SQLite storage for IoT fleets" \
    " iotkube-server serves the part of the Kubernetes API that iotkube-agent and kubectl use," \
    " with its own CA, join tokens and node lifecycle, stored in SQLite."

cat > "$work/iotkube-agent/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# Enables the units; the agent starts only once the board has joined (its unit requires
# /etc/iotkube/agent.yaml). An upgrade restarts a running agent: its containers keep running.
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable iotkube-agent.service iotkube-provision.service >/dev/null
    if [ -n "$2" ]; then
        systemctl try-restart iotkube-agent.service || true
    fi
fi
exit 0
EOF
cat > "$work/iotkube-agent/DEBIAN/prerm" <<'EOF'
#!/bin/sh
# Removal stops the agent (its containers keep running until `iotkube-agent reset` or a
# reboot); an upgrade leaves it to postinst to restart.
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop iotkube-agent.service || true
    systemctl disable iotkube-agent.service iotkube-provision.service >/dev/null 2>&1 || true
fi
exit 0
EOF
cat > "$work/iotkube-agent/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# Only purge removes state: node credentials, configuration, pods, images and logs.
set -e
if [ "$1" = purge ]; then
    rm -rf /etc/iotkube /var/lib/iotkube /run/iotkube /var/log/pods
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
exit 0
EOF
cat > "$work/iotkube-server/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# The server's unit is enabled by whoever initialises the cluster (`iotkube-server init`); an
# upgrade restarts a running server.
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ -n "$2" ]; then
        systemctl try-restart iotkube-server.service || true
    fi
fi
exit 0
EOF
cat > "$work/iotkube-server/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop iotkube-server.service || true
    systemctl disable iotkube-server.service >/dev/null 2>&1 || true
fi
exit 0
EOF
cat > "$work/iotkube-server/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# The cluster's data directory is never removed by the package.
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
exit 0
EOF
chmod 0755 "$work"/*/DEBIAN/postinst "$work"/*/DEBIAN/prerm "$work"/*/DEBIAN/postrm

sizes=()
for package in iotkube-agent iotkube-server; do
    deb="$out/${package}_${version}_${arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$work/$package" "$deb" >/dev/null
    # The tarball: the same files and an installer.
    tar_root=$(mktemp -d)
    chmod 0755 "$tar_root"
    mkdir -p "$tar_root/$package-$version"
    cp -a "$work/$package/usr" "$work/$package/lib" "$tar_root/$package-$version/"
    install -m 0755 packaging/install.sh "$tar_root/$package-$version/install.sh"
    tarball="$out/$package-$version-linux-$arch.tar.gz"
    tar -C "$tar_root" --owner=0 --group=0 -czf "$tarball" "$package-$version"
    rm -rf "$tar_root"
    sizes+=("$package binary (stripped)" "$(stat -c %s "$work/$package/usr/bin/$package") bytes"
            "$(basename "$deb")" "$(stat -c %s "$deb") bytes" "$(basename "$tarball")" "$(stat -c %s "$tarball") bytes")
done
printf '%-44s %s\n' "${sizes[@]}"
