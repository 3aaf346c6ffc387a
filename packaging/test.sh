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
swift test --skip-build
# The pod suites again with an external OCI runtime (runtime: crun) making the containers.
IOTKUBE_TEST_POD_RUNTIME=crun swift test --skip-build --filter 'PodLifecycleTests|PodExecTests'
