// swift-tools-version:6.1
// iotkube: an edge node agent (kubelet role) and its embedded Kubernetes API control plane.
//
// Module boundaries (see docs/architecture.md): each issue adds the modules it fills; this
// file only lists modules that hold real code.
import PackageDescription

/// Release links of both programs, with the toolchain's own linker (lld):
/// - The static Swift runtime links executables with --export-dynamic, which puts every symbol
///   (3.5 MB of the stripped agent) in the dynamic symbol table. Nothing loads plugins into these
///   programs, so the table keeps only what the C libraries need.
/// - Identical functions are folded into one (`--icf=all`, as Apple's linker deduplicates Swift
///   code by default): generic specializations and thunks repeat byte for byte.
/// - Relative relocations are packed (DT_RELR, glibc 2.36 or later: Debian 12, Ubuntu 24.04,
///   Raspberry Pi OS bookworm): 2 MB of the PIE's relocation table becomes a few kilobytes.
///   Building with IOTKUBE_GLIBC_BEFORE_2_36=1 in the environment leaves them unpacked for older
///   systems (Ubuntu 22.04's glibc 2.35); the quickstart and the package build set it on a build
///   machine whose own glibc is older.
let packedRelocations = Context.environment["IOTKUBE_GLIBC_BEFORE_2_36"] != "1"
let releaseExecutableLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(
        ["-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker", "--icf=all"]
            + (packedRelocations ? ["-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"] : []),
        .when(platforms: [.linux], configuration: .release)),
]

/// The agent's code in the order its run uses it (packaging/agent-symbol-order.txt, written by
/// packaging/symbol-order.py from a profiled run): the functions a running agent executes come
/// first and share pages, the rest (start-up only, error paths, other commands) follows: idle
/// with 10 pods, the agent's file pages went from 20.5 to 14.0 MB (docs/benchmarks.md). The
/// order applies to functions built in sections of their own (packaging/release-build.sh); a
/// name the code no longer has is skipped.
let agentSymbolOrder = Context.packageDirectory + "/packaging/agent-symbol-order.txt"
let agentLinkerSettings: [LinkerSetting] = releaseExecutableLinkerSettings + [
    .unsafeFlags(
        ["-Xlinker", "--symbol-ordering-file=\(agentSymbolOrder)", "-Xlinker", "--no-warn-symbol-ordering"],
        .when(platforms: [.linux], configuration: .release)),
]

let package = Package(
    name: "iotkube",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "iotkube-agent", targets: ["iotkube-agent"]),
        .executable(name: "iotkube-server", targets: ["iotkube-server"]),
        .library(name: "KubeModel", targets: ["KubeModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // libyaml (Debian libyaml-dev), linked statically so the agent needs no extra package.
        .target(
            name: "CYAML",
            linkerSettings: [.linkedLibrary(":libyaml.a", .when(platforms: [.linux]))]
        ),
        // Kubernetes API types and their JSON/YAML coding; no Foundation beyond Essentials.
        // JSON coding with unknown-field preservation and field-path errors (the model's coder,
        // also used by the runtime and the image store, which need no API types).
        .target(name: "KubeCoding"),
        .target(
            name: "KubeModel",
            dependencies: ["CYAML", "KubeCoding"]
        ),
        // zlib and zstd (Debian zlib1g-dev, libzstd-dev), linked statically, for image layers.
        .target(
            name: "CCompression",
            linkerSettings: [
                .linkedLibrary(":libz.a", .when(platforms: [.linux])),
                .linkedLibrary(":libzstd.a", .when(platforms: [.linux])),
            ]
        ),
        // libc calls Swift cannot see (macros, xattrs, syncfs).
        .target(name: "CFileSystem"),
        // The container setup and per-container monitor, entered from an ELF constructor before
        // the Swift runtime starts; libcap linked statically.
        .target(
            name: "CRuntime",
            linkerSettings: [.linkedLibrary(":libcap.a", .when(platforms: [.linux]))]
        ),
        // libseccomp (Debian libseccomp-dev), linked statically: compiles filters to BPF.
        .target(
            name: "CSeccomp",
            linkerSettings: [.linkedLibrary(":libseccomp.a", .when(platforms: [.linux]))]
        ),
        // Hashes, HMAC, P-256 keys, certificate requests and certificate reading for the agent, in C
        // over the BoringSSL copy swift-nio-ssl links (NIOSSL is a dependency for its headers and
        // library), so the agent carries one BoringSSL, not swift-crypto's second copy.
        .target(
            name: "CNodeCrypto",
            dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .target(name: "NodeCrypto", dependencies: ["CNodeCrypto"]),
        // The built-in OCI runtime: bundles, launch plans, seccomp, cgroups v1/v2, state.
        .target(
            name: "Runtime",
            dependencies: ["OCI", "KubeCoding", "SystemSupport", "CRuntime", "CSeccomp", "NodeCrypto"]
        ),
        // Pod networking: sandboxes (held namespaces), CNI plugins, DNS and hosts files.
        .target(
            name: "PodNetwork",
            dependencies: ["KubeModel", "SystemSupport", "Runtime", "CRuntime", "NodeCrypto"]
        ),
        // OCI image-spec types (descriptors, manifests, indexes, configs, platforms).
        .target(name: "OCI"),
        // Registry client, verified blob store, safe layer unpack, image records and GC.
        .target(
            name: "ImageStore",
            dependencies: [
                "OCI",
                "HTTPClientCore",
                "KubeCoding",
                "SystemSupport",
                "CCompression",
                "CFileSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "NodeCrypto",
            ]
        ),
        .executableTarget(
            name: "iotkube-agent",
            dependencies: [
                "KubeModel",
                "Agent",
                "ImageStore",
                "OCI",
                "PodNetwork",
                "Runtime",
                "CRuntime",
                "KubeClient",
                "SystemSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: agentLinkerSettings
        ),
        // Host plumbing shared by both programs: atomic file writes, sd_notify, resource limits.
        .target(
            name: "SystemSupport",
            dependencies: ["CFileSystem", .product(name: "Logging", package: "swift-log")]
        ),
        // The agent's logic: provisioning (join), and later heartbeat, pods, probes.
        .target(
            name: "Agent",
            dependencies: [
                "KubeModel",
                "HTTPClientCore",
                "ImageStore",
                "PodNetwork",
                "Runtime",
                "KubeClient",
                "SystemSupport",
                "CFileSystem",
                "CRuntime",
                "HTTPServing",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "NodeCrypto",
            ]
        ),
        // The HTTPS listener both programs serve with (the API server; the agent's endpoint).
        .target(
            name: "HTTPServing",
            dependencies: [
                "KubeModel",
                "HTTPClientCore",
                "CCompression",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "NodeCrypto",
            ]
        ),
        // The HTTP/1.1 connection core of the API, registry and probe clients.
        .target(
            name: "HTTPClientCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // A Kubernetes API client for any conformant server: kubeconfig, HTTPS with client
        // certificates, typed CRUD, watch. FoundationEssentials only (the agent links it).
        .target(
            name: "KubeClient",
            dependencies: [
                "KubeModel",
                "HTTPClientCore",
                "SystemSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // SQLite (Debian libsqlite3-dev), linked statically.
        .target(
            name: "CSQLite",
            linkerSettings: [.linkedLibrary(":libsqlite3.a", .when(platforms: [.linux]))]
        ),
        // The embedded control plane: storage, REST handlers, watch, authentication, certificates.
        .target(
            name: "ControlPlane",
            dependencies: [
                "KubeModel",
                "KubeClient",
                "CSQLite",
                "SystemSupport",
                "HTTPServing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "iotkube-server",
            dependencies: [
                "KubeModel",
                "ControlPlane",
                "SystemSupport",
                "HTTPServing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: releaseExecutableLinkerSettings
        ),
        .testTarget(
            name: "KubeModelTests",
            dependencies: ["KubeModel", "KubeCoding", "IotkubeTestSupport"],
            exclude: ["Fixtures"]
        ),
        // Test helpers: real server processes and tools (used by tests only).
        .target(
            name: "IotkubeTestSupport",
            dependencies: ["CRuntime", "HTTPServing", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/IotkubeTestSupport"
        ),
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: ["ControlPlane", "KubeClient", "HTTPClientCore", "HTTPServing", "KubeModel", "SystemSupport", "IotkubeTestSupport", "iotkube-server"]
        ),
        .testTarget(
            name: "ImageStoreTests",
            dependencies: ["ImageStore", "Agent", "OCI", "KubeModel", "IotkubeTestSupport", "iotkube-agent"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "RuntimeTests",
            dependencies: ["Runtime", "OCI", "IotkubeTestSupport", "iotkube-agent"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "PodNetworkTests",
            dependencies: ["PodNetwork", "KubeModel", "IotkubeTestSupport", "iotkube-agent"]
        ),
        // The agent's crypto checked against swift-crypto and swift-certificates (the server's).
        .testTarget(
            name: "NodeCryptoTests",
            dependencies: [
                "NodeCrypto", .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "AgentCLITests",
            dependencies: [
                "iotkube-agent", "Agent", "ImageStore", "OCI", "PodNetwork", "Runtime", "KubeClient", "KubeModel", "IotkubeTestSupport", "iotkube-server",
                "ControlPlane", "NodeCrypto", .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
