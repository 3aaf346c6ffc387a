import Foundation
import IotkubeTestSupport
import Testing

/// Restarting the agent right after stopping it: the new one waits for the old one to be gone
/// (one agent per state directory) and for its port, instead of failing with
/// "Address already in use"; `reset` does not take the state apart under a running agent.
@Suite(.ownThread, .serialized, .enabled(if: toolAvailable("kubectl") && toolAvailable("curl"), "needs kubectl and curl"))
struct AgentRestartTests {
    static func output(_ agent: HeartbeatTests.RunningAgent) -> String { (try? String(contentsOfFile: agent.outputPath, encoding: .utf8)) ?? "" }

    /// Whether the agent's endpoint answers HTTPS on its port (any HTTP status).
    static func serving(_ port: Int) throws -> Bool {
        let curl = ServerProcess.findExecutable("curl") ?? "/usr/bin/curl"
        let answer = try ServerProcess.run(curl, ["-sk", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(port)/healthz"])
        return answer.status == 0 && answer.output != "000"
    }

    @Test func aSecondAgentWaitsForTheFirstToStop() throws {
        let server = try ServerProcess()
        let first = try HeartbeatTests.RunningAgent(server: server, name: "pi-restart")
        #expect(try HeartbeatTests.waitFor(30) { try Self.serving(first.port) }, "\(Self.output(first))")
        let firstPID = try #require(first.process?.processIdentifier)

        // The same configuration started again while the first still runs.
        let secondOutput = first.directory.appendingPathComponent("second-output.log").path
        let second = try SpawnedProcess(JoinTests.agent, first.arguments, output: .file(secondOutput))
        defer { if second.isRunning { second.terminate(); second.waitUntilExit() } }
        let read = { (try? String(contentsOfFile: secondOutput, encoding: .utf8)) ?? "" }
        #expect(HeartbeatTests.waitFor(15) { read().contains("another agent (pid \(firstPID)) runs with") }, "\(read())")
        Thread.sleep(forTimeInterval: 2)
        #expect(second.isRunning, "the second agent waits, it does not fail: \(read())")

        // The first stops: the second takes over its state and its port.
        _ = first.stopAndReadOutput()
        #expect(try HeartbeatTests.waitFor(30) { try Self.serving(first.port) }, "\(read())")
        #expect(try HeartbeatTests.waitFor(20) {
            try server.kubectl(["get", "nodes"]).output.range(of: #"pi-restart\s+Ready"#, options: .regularExpression) != nil
        })
        #expect(second.isRunning && !read().contains("Address already in use"), "\(read())")
        let lock = try String(contentsOfFile: first.directory.appendingPathComponent("state/agent.lock").path, encoding: .utf8)
        #expect(lock == "\(second.processIdentifier)\n", "the lock names its holder: \(lock)")

        // reset waits for a running agent and, while it runs, removes nothing.
        let reset = try ServerProcess.run(JoinTests.agent, ["reset", "--force", "--config-dir", first.directory.path,
                                                           "--state-dir", first.directory.appendingPathComponent("state").path,
                                                           "--runtime-root", first.directory.appendingPathComponent("no-runtime").path, "--wait-for-agent", "2"])
        #expect(reset.status != 0 && reset.output.contains("another iotkube-agent (pid \(second.processIdentifier)) still runs with"), "\(reset.output)")
        #expect(reset.output.contains("nothing was removed"), "\(reset.output)")
        #expect(FileManager.default.fileExists(atPath: first.directory.appendingPathComponent("agent.yaml").path))
        #expect(FileManager.default.fileExists(atPath: first.directory.appendingPathComponent("state/agent.lock").path))
    }

    @Test func anAgentWaitsForItsPortToBeFree() throws {
        let server = try ServerProcess()
        let agent = try HeartbeatTests.RunningAgent(server: server, name: "pi-port", start: false)
        // Something else holds the port (an agent of another state directory still stopping).
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(agent.port).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 && listen(holder, 1) == 0 }
        }
        try #require(bound, "binding the agent's port: \(String(cString: strerror(errno)))")
        try agent.start()
        #expect(HeartbeatTests.waitFor(20) { Self.output(agent).contains("0.0.0.0:\(agent.port) is in use") }, "\(Self.output(agent))")
        Thread.sleep(forTimeInterval: 2)
        #expect(agent.process?.isRunning == true, "the agent waits for its port: \(Self.output(agent))")
        close(holder)
        #expect(try HeartbeatTests.waitFor(30) { try Self.serving(agent.port) }, "\(Self.output(agent))")
        #expect(agent.process?.isRunning == true)
    }
}
