import Foundation
import IotkubeTestSupport
import Testing

/// The shipped unit files, checked by systemd's own parser (`systemd-analyze verify`).
@Suite(.ownThread)
struct SystemdUnitTests {
    static let unitDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("systemd")

    /// Verifies units with the binaries pointed at this build; returns exit status and findings.
    static func verify(_ units: [(name: String, text: String)]) throws -> (status: Int32, output: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("units-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for unit in units {
            let text = unit.text
                .replacingOccurrences(of: "/usr/bin/iotkube-agent", with: ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path)
                .replacingOccurrences(of: "/usr/bin/iotkube-server", with: ServerProcess.serverBinary.path)
            let path = directory.appendingPathComponent(unit.name)
            try text.write(to: path, atomically: true, encoding: .utf8)
            paths.append(path.path)
        }
        return try ServerProcess.run(try #require(ServerProcess.findExecutable("systemd-analyze")), ["verify"] + paths)
    }

    @Test(.enabled(if: toolAvailable("systemd-analyze"), "systemd-analyze is not installed"))
    func shippedUnitsVerifyCleanly() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.unitDirectory.path).filter { $0.hasSuffix(".service") }.sorted()
        #expect(names == ["iotkube-agent.service", "iotkube-provision.service", "iotkube-server.service"])
        let units = try names.map { ($0, try String(contentsOf: Self.unitDirectory.appendingPathComponent($0), encoding: .utf8)) }
        let result = try Self.verify(units)
        #expect(result.status == 0 && result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(result.output)")
        let agent = units.first { $0.0 == "iotkube-agent.service" }!.1
        for setting in ["Type=notify", "Delegate=yes", "KillMode=process", "Restart=always", "WatchdogSec="] {
            #expect(agent.contains(setting), "\(setting)")
        }
        // the documented example configuration is one the agent accepts
        let example = Self.unitDirectory.deletingLastPathComponent().appendingPathComponent("configs/agent.yaml.example").path
        let status = try ServerProcess.run(ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path, ["status", "--config", example])
        #expect(status.output.contains("Node:           pi-kitchen") && status.output.contains("Credentials:"), "\(status.output)")

        // the join token is read from its file by the agent, never put on a command line
        // (every local user reads /proc/*/cmdline); JoinTokenFileTests runs the command
        let provision = units.first { $0.0 == "iotkube-provision.service" }!.1
        let commands = provision.split(separator: "\n").filter { $0.hasPrefix("Exec") }
        #expect(commands.contains { $0.hasPrefix("ExecStart=/usr/bin/iotkube-agent join ") && $0.contains(" --token-file ${IOTKUBE_JOIN_FILE}") }, "\(commands)")
        #expect(!commands.contains { $0.contains("$(") || $0.contains("`") || $0.contains("$token") || $0.contains("sh -c") }, "\(commands)")

        // the check itself notices a broken unit
        let broken = try Self.verify([("broken.service", agent.replacingOccurrences(of: "Type=notify", with: "Type=notifyy"))])
        #expect(!broken.output.isEmpty)
    }
}
