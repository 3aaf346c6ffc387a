// swift-tools-version:6.1
// iotkube: an edge node agent (kubelet role) and its embedded Kubernetes API control plane.
//
// Module boundaries (see docs/architecture.md): each issue adds the modules it fills; this
// file only lists modules that hold real code.
import PackageDescription

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
    ],
    targets: [
        // libyaml (Debian libyaml-dev), linked statically so the agent needs no extra package.
        .target(
            name: "CYAML",
            linkerSettings: [.linkedLibrary(":libyaml.a", .when(platforms: [.linux]))]
        ),
        // Kubernetes API types and their JSON/YAML coding; no Foundation beyond Essentials.
        .target(
            name: "KubeModel",
            dependencies: ["CYAML"]
        ),
        .executableTarget(
            name: "iotkube-agent",
            dependencies: [
                "KubeModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "iotkube-server",
            dependencies: [
                "KubeModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "KubeModelTests",
            dependencies: ["KubeModel"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "AgentCLITests",
            dependencies: ["iotkube-agent"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
