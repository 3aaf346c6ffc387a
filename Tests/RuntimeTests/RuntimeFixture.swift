import Foundation
import IotkubeTestSupport
import OCI
import Runtime

/// Bundles for the runtime tests: a rootfs of the host's busybox-static (with applet links and a
/// static probe program), a default config.json from `runtime spec`, and helpers to run the CLI.
enum RuntimeFixture {
    static let agent = ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path
    static var isRoot: Bool { getuid() == 0 }
    static var ready: Bool { isRoot && (toolAvailable("busybox") && toolAvailable("gcc")) }
    static let reason = "needs root (namespaces, mounts, cgroups), busybox-static and gcc"
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    /// A rootfs shared by every bundle (read-only in the default spec).
    static let rootfs: Result<String, any Error> = Result {
        let root = NSTemporaryDirectory() + "iotkube-rootfs-\(UUID().uuidString)"
        let manager = FileManager.default
        for directory in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root", "var"] {
            try manager.createDirectory(atPath: "\(root)/\(directory)", withIntermediateDirectories: true)
        }
        chmod("\(root)/tmp", 0o1777)
        try manager.copyItem(atPath: "/bin/busybox", toPath: "\(root)/bin/busybox")
        let applets = try ServerProcess.run("/bin/busybox", ["--list-full"]).output.split(separator: "\n")
        for applet in applets where applet != "bin/busybox" {
            try? manager.createSymbolicLink(atPath: "\(root)/\(applet)", withDestinationPath: "/bin/busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".write(toFile: "\(root)/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nnogroup:x:65534:\n".write(toFile: "\(root)/etc/group", atomically: true, encoding: .utf8)
        let compiled = try ServerProcess.run("/usr/bin/gcc", ["-static", "-O2", "-o", "\(root)/bin/probe", fixtures + "/probe.c"])
        guard compiled.status == 0 else { throw TestFailure("gcc probe.c: \(compiled.output)") }
        return root
    }

    /// A bundle directory whose config.json is the default spec changed by `change`.
    static func bundle(_ args: [String], change: (inout RuntimeSpec) -> Void = { _ in }) throws -> String {
        let bundle = NSTemporaryDirectory() + "iotkube-bundle-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        let made = try ServerProcess.run(agent, ["runtime", "spec", "--bundle", bundle])
        guard made.status == 0 else { throw TestFailure("runtime spec: \(made.output)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: bundle + "/config.json"))
        var spec = try JSONDecoder().decode(RuntimeSpec.self, from: data)
        spec.root = RuntimeSpec.Root(path: try rootfs.get(), readonly: true)
        spec.process?.args = args
        spec.linux?.cgroupsPath = "/iotkube-test/\(UUID().uuidString)"
        change(&spec)
        try JSONEncoder().encode(spec).write(to: URL(fileURLWithPath: bundle + "/config.json"))
        return bundle
    }

    /// A fresh state root.
    static func stateRoot() -> String { NSTemporaryDirectory() + "iotkube-runtime-\(UUID().uuidString)" }

    /// `iotkube-agent runtime --root ROOT <arguments>`.
    @discardableResult
    static func runtime(_ root: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
        try ServerProcess.run(agent, ["runtime", "--root", root] + arguments, timeout: timeout)
    }

    static func state(_ root: String, _ id: String) throws -> [String: Any] {
        let result = try runtime(root, ["state", id])
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] else {
            throw TestFailure("state \(id): \(result.output)")
        }
        return object
    }
}
