# Sourced by the scripts that build release binaries (build-deb.sh, quickstart.sh,
# symbol-order.py through bash), so that they all share one build:
#   source packaging/release-build.sh; "${release_build[@]}" --product iotkube-agent
#
# - The Swift runtime is linked statically (--static-swift-stdlib).
# - -Osize for all Swift code, the dependencies' too (a package cannot set that for its
#   dependencies): 1.8 MB less agent than -O; pod starts and idle CPU stay within run-to-run
#   noise (docs/benchmarks.md).
# - Every function in a section of its own, Swift and C alike. The linker then drops unused
#   functions one by one rather than whole files (2.8 MB less agent) and can lay out the
#   agent's code in the order of packaging/agent-symbol-order.txt (Package.swift): the code
#   the agent runs together, so that fewer pages of it stay resident.
release_flags=(-c release --static-swift-stdlib
    -Xswiftc -Osize -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections)
release_build=(swift build "${release_flags[@]}" ${SWIFT_SDK:+--swift-sdk "$SWIFT_SDK"})

# Packed relative relocations (Package.swift) need glibc 2.36 where the binaries run: built
# natively on a machine with an older glibc, the binaries go without them.
if [ -z "${SWIFT_SDK:-}" ]; then
    host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}' || true)
    if [ -n "$host_glibc" ] && [ "$(printf '%s\n2.36\n' "$host_glibc" | sort -V | head -1)" != 2.36 ]; then
        export IOTKUBE_GLIBC_BEFORE_2_36=1
    fi
fi

# SwiftPM does not rebuild a Swift module whose flags alone changed, so a release tree left from
# other flags would link modules without function sections (and a coarser code order) unseen:
# such a tree is removed first. The stamp holds the flags the tree was built with.
if [ "$(cat .build/release-flags 2>/dev/null || true)" != "${release_flags[*]}" ]; then
    rm -rf .build/*/release .build/release .build/release.yaml
    mkdir -p .build
    printf '%s' "${release_flags[*]}" > .build/release-flags
fi
