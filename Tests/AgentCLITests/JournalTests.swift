import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// The agent's logs in a real systemd-journald (started in a private mount namespace, so the
/// host's journal is untouched), read back with journalctl.
@Suite(.ownThread)
struct JournalTests {
    static let journald = "/lib/systemd/systemd-journald"
    static var canRun: Bool {
        ProcessInfo.processInfo.environment["CI"] != nil
            || (getuid() == 0 && FileManager.default.isExecutableFile(atPath: journald) && ServerProcess.findExecutable("unshare") != nil)
    }

    @Test(.enabled(if: canRun && toolAvailable("kubectl"), "needs root, unshare, systemd-journald and kubectl"))
    func structuredRecordsReachJournald() throws {
        try #require(getuid() == 0, "mount namespaces need root")
        let server = try ServerProcess()
        let directory = JoinTests.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let joined = try ServerProcess.run(JoinTests.agent, ["join", try JoinTests.token(server), "--node-name", "pi-journal", "--config-dir", directory.path,
                                                             "--state-dir", directory.appendingPathComponent("state").path, "--port", String(try ServerProcess.freePort()), "--no-start"])
        #expect(joined.status == 0, "\(joined.output)")
        server.process.terminate()  // the agent will log failed heartbeats (warnings)
        server.process.waitUntilExit()

        let script = """
            set -e
            for d in /run/systemd/journal /run/log/journal /var/log/journal; do mount -t tmpfs -o mode=0755,size=16m none "$d"; done
            \(Self.journald) > /dev/null 2>&1 &
            journal=$!
            for i in $(seq 1 300); do [ -S /run/systemd/journal/socket ] && break; sleep 0.01; done
            [ -S /run/systemd/journal/socket ] || { echo "journald did not start"; exit 1; }
            set +e
            timeout -s TERM 4 \(JoinTests.agent) run --config \(directory.appendingPathComponent("agent.yaml").path) --heartbeat-interval 1 > /dev/null 2>&1
            journalctl --sync 2>/dev/null
            journalctl --no-pager -o json SYSLOG_IDENTIFIER=iotkube-agent
            kill $journal
            """
        try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/log/journal", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/var/log/journal", withIntermediateDirectories: true)
        let result = try ServerProcess.run(try #require(ServerProcess.findExecutable("unshare")), ["--mount", "--propagation", "private", "--", "bash", "-c", script])
        let records = result.output.split(separator: "\n").compactMap { try? KubeJSON.parse(Array($0.utf8)) }
        #expect(!records.isEmpty, "\(result.output)")
        let warning = records.first { $0["MESSAGE"]?.stringValue?.contains("heartbeat failed") == true }
        #expect(warning?["PRIORITY"] == "4", "\(result.output)")
        #expect(warning?["IOTKUBE_NODE"] == "pi-journal")
        #expect(warning?["_TRANSPORT"] == "journal")
        #expect(warning?["CODE_FILE"]?.stringValue?.hasSuffix("HeartbeatService.swift") == true)
    }
}
