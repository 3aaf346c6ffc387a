#!/usr/bin/env bash
# Runs the benchmarks on this machine and prints the table (see docs/benchmarks.md):
#   Benchmarks/run.sh [--quick] [--only size,start,memory,pull,scale] [--json FILE]
# Installs the tools it needs, builds the static release binaries and packages as the
# release does (packaging/build-deb.sh), then measures them. Needs root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
packaging/install-deps.sh --test >/dev/null
# The peer pod manager of the pod-start rows (podman kube play), from Debian.
command -v podman >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman catatonit >/dev/null
packaging/build-deb.sh >/dev/null
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
exec python3 Benchmarks/bench.py --bin "$bin" "$@"
