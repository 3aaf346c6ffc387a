import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// Secret values given to containers as environment reach the runtime's configuration only on
/// tmpfs (the runtime root under /run), never the state directory on the SD card, where they
/// would outlive the Secret and the board's owner: a real agent runs a pod whose env comes from
/// a Secret (one key by secretKeyRef, all by envFrom), and the whole state directory is searched.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct SecretPersistenceTests {
    /// Files under `directory` holding `value` (grep, not following symlinks, devices skipped;
    /// the sandbox's namespace files cannot be read and are no files).
    static func filesHolding(_ value: String, under directory: String) throws -> [String] {
        let result = try ServerProcess.run("/bin/grep", ["-rlF", "--devices=skip", "--", value, directory], timeout: 120)
        let lines = result.output.split(separator: "\n").map(String.init)
        let errors = lines.filter { $0.hasPrefix("/bin/grep: ") }
        let unexpected = errors.filter { !($0.contains("/sandbox/") && $0.hasSuffix(": Invalid argument")) }
        guard result.status <= 1 || (result.status == 2 && unexpected.isEmpty) else { throw TestFailure("grep \(directory): \(result.output)") }
        return lines.filter { !$0.hasPrefix("/bin/grep: ") }
    }

    @Test func secretEnvironmentNeverReachesTheStateDirectory() async throws {
        let node = try await PodNode.make(name: "secret-board")
        let marker = "flashleak" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        try await node.kubectl(["create", "secret", "generic", "creds", "--from-literal=password=pw-\(marker)", "--from-literal=token=tk-\(marker)"])
        let image = try PodImageRegistry.shared.get().busybox
        // The container shows the values cut before the marker (the pod spec, kept in the
        // checkpoint, names no value); its exec probe runs through the bundle after the agent
        // restarts (the runtime reads it again for every exec).
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: holder}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: app
                image: \(image)
                command: ["sh", "-c", "echo got ${PASSWORD%%flashleak*} ${S_token%%flashleak*}; sleep 100000"]
                env: [{name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}]
                envFrom: [{prefix: S_, secretRef: {name: creds}}]
                readinessProbe:
                  exec: {command: ["sh", "-c", "test -n \\"$PASSWORD\\""]}
                  periodSeconds: 1
            """)
        let running = try await node.waitForPod("holder", seconds: 90) { PodNode.isReady($0) }
        let containerID = try #require(PodNode.status(running, "app")?.containerID)
        let log = try String(contentsOfFile: "\(node.logDirectory)/default_holder_\(running.metadata.uid ?? "")/app/0.log", encoding: .utf8)
        #expect(log.contains("stdout F got pw- tk-"), "the values reached the container: \(log)")

        // Nothing on the SD card holds a value.
        #expect(try Self.filesHolding(marker, under: node.stateDirectory) == [])
        // The configuration with the values (and the runtime's launch plan) is on the runtime's
        // tmpfs, readable by root only.
        let onTmpfs = try Self.filesHolding(marker, under: node.runtimeRoot)
        let bundle = try #require(onTmpfs.first { $0.hasSuffix("/config.json") }, "\(onTmpfs)")
        #expect((try FileManager.default.attributesOfItem(atPath: bundle)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        for path in onTmpfs {
            #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(path)")
        }

        // An agent crash and restart adopts the container: exec still finds its bundle, and
        // nothing written on the way (checkpoint, runs) holds a value.
        node.killAgent()
        let logBefore = try String(contentsOfFile: node.agentLog, encoding: .utf8).utf8.count
        try node.startAgent()
        var probed = false
        for _ in 0..<100 where !probed {
            try await Task.sleep(for: .milliseconds(300))
            let log = try String(contentsOfFile: node.agentLog, encoding: .utf8)
            probed = String(decoding: log.utf8.dropFirst(logBefore), as: UTF8.self).contains("container app readiness: ready")
        }
        #expect(probed, "no exec probe passed after the restart: \(node.agentLogTail)")
        let adopted = try await node.waitForPod("holder", seconds: 60) { PodNode.isReady($0) }
        #expect(PodNode.status(adopted, "app")?.containerID == containerID && PodNode.status(adopted, "app")?.restartCount == 0)
        #expect(try Self.filesHolding(marker, under: node.stateDirectory) == [])

        // Deleting the pod removes the bundle too.
        _ = try await node.kubectl(["delete", "pod", "holder", "--timeout=60s"])
        #expect(try Self.filesHolding(marker, under: node.runtimeRoot) == [])
        await node.shutdown()
    }
}
