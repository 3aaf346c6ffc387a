#!/usr/bin/env bash
# Runtime benchmark (issue: runtime): the built-in runtime against crun on the same bundle, and the
# monitor's memory per container. usage: Benchmarks/runtime.sh [RUNS]   (root)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
packaging/install-deps.sh --test >/dev/null
command -v crun >/dev/null || { echo "crun is needed as the peer: apt-get install crun" >&2; exit 1; }
# The shipped form: a static release build (a dynamically linked one starts much slower).
swift build -c release --static-swift-stdlib --product iotkube-agent --scratch-path .build-static >/dev/null
python3 Benchmarks/runtime_run.py "$top/.build-static/release/iotkube-agent" "${1:-100}"
