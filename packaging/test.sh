#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs every test.
# Tests that need a missing tool skip with a reason; under CI (CI=true) they fail instead.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
packaging/install-deps.sh --test
export PATH="$top/.build/test-tools/bin:$PATH"
swift build --build-tests
# The release packages (static Swift runtime) that the VM end-to-end test installs.
packaging/build-deb.sh "$top/.build/package"

# Runs a test command; when it fails, its failures are printed again at the end, each with the
# lines of its message (the run's output is long and interleaved).
run_tests() {
    local log status
    log=$(mktemp)
    set +e
    "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        echo "=== the failures of: $* ==="
        awk '
            /^✘ Test .* recorded an issue/ { shown = 0; printing = 1 }
            /^(◇|✔|✘|↳) / && !/recorded an issue/ { printing = 0 }
            /^✘ Test .* failed after/ || /^\[vm e2e\]/ { print; next }
            printing && shown++ < 40 { print }
        ' "$log" | head -n 600
    fi
    rm -f "$log"
    return "$status"
}
run_tests swift test --skip-build
# The pod suites again with an external OCI runtime (runtime: crun) making the containers.
run_tests env IOTKUBE_TEST_POD_RUNTIME=crun swift test --skip-build --filter 'PodLifecycleTests|PodExecTests'
