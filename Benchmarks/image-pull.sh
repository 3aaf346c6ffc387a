#!/usr/bin/env bash
# Image pull benchmark (issue: images): builds the release agent and compares its pull with
# skopeo (and skopeo + umoci unpack) from one local registry. usage: Benchmarks/image-pull.sh [RUNS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
packaging/install-deps.sh --test >/dev/null
swift build -c release --product iotkube-agent >/dev/null
python3 Benchmarks/image_pull.py "$top/.build/release/iotkube-agent" "${1:-5}"
