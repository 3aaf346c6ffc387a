import Foundation
import IotkubeTestSupport
import OCI

/// What the agent tests that launch real containers share: the agent binary (the runtime's
/// helper), a busybox root and a bundle directory.
enum ContainerFixture {
    static let agent = ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path

    /// A fresh directory for one test.
    static func base(_ name: String) -> String { NSTemporaryDirectory() + "iotkube-\(name)-\(UUID().uuidString)" }

    /// The host's busybox-static at `root`/bin with `applets` linked, and the empty mount points.
    static func busyboxRoot(at root: String, applets: [String]) throws {
        for directory in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
            try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: root + "/bin/busybox")
        for applet in applets { try FileManager.default.createSymbolicLink(atPath: root + "/bin/" + applet, withDestinationPath: "busybox") }
    }

    /// `spec` as `<base>/bundle/config.json`; the bundle's path.
    static func bundle(_ spec: RuntimeSpec, in base: String) throws -> String {
        let bundle = base + "/bundle"
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        try JSONEncoder().encode(spec).write(to: URL(fileURLWithPath: bundle + "/config.json"))
        return bundle
    }
}
