import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// The kubelet loop under stress, end to end: graceful deletion with preStop hooks, a crash
/// loop that goes on while the server is down for two minutes, and 200 pods bound to one board
/// at once.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct PodResilienceTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    static func temporaryDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "iotkube-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func deletionRunsPreStopThenTheStopSignalAndKillsWhatIgnoresIt() async throws {
        let node = try await PodNode.make(name: "stop-board")
        let shared = try Self.temporaryDirectory("prestop")
        defer { try? FileManager.default.removeItem(atPath: shared) }
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: stopping}
            spec:
              terminationGracePeriodSeconds: 4
              containers:
              - name: graceful
                image: \(image)
                command: ["sh", "-c", "trap 'echo term >> /shared/order; exit 0' TERM; echo started >> /shared/order; while true; do sleep 0.2; done"]
                lifecycle:
                  preStop:
                    exec: {command: ["sh", "-c", "echo prestop >> /shared/order"]}
                volumeMounts: [{name: shared, mountPath: /shared}]
              - name: stubborn
                image: \(image)
                command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]
              volumes: [{name: shared, hostPath: {path: "\(shared)", type: Directory}}]
            """)
        try await node.waitForPod("stopping") { PodNode.isReady($0) }
        #expect(try await node.runtimeContainers().count == 2)
        let deleted = try await node.serverKubectl(["delete", "pod", "stopping", "--timeout=60s"])
        #expect(deleted.status == 0, "\(deleted.output)\n\(node.agentLogTail)")
        // The hook ran before the signal, and the signal was the container's last word.
        let order = try String(contentsOfFile: shared + "/order", encoding: .utf8)
        #expect(order == "started\nprestop\nterm\n", "\(order)")
        // The container that ignored SIGTERM did not outlive the grace period.
        #expect(try await node.runtimeContainers().isEmpty)
        let log = try String(contentsOfFile: node.agentLog, encoding: .utf8)
        #expect(log.contains("stubborn"), "\(node.agentLogTail)")
        let events = try KubeJSON.decode(KubeList<Event>.self, from: Array(try await node.kubectl(["get", "events", "-o", "json"]).utf8)).items
        for container in ["graceful", "stubborn"] {
            #expect(events.contains { $0.reason == "Killing" && $0.involvedObject.fieldPath == "spec.containers{\(container)}" }, "\(container)")
        }
        await node.shutdown()
    }

    @Test func aCrashLoopGoesOnWhileTheServerIsDownAndTheStatusCatchesUp() async throws {
        let node = try await PodNode.make(name: "offline-board")
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: flaky}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - {name: flaky, image: \(image), command: ["sh", "-c", "echo up; sleep 1; exit 2"]}
              - {name: steady, image: \(image), command: ["sleep", "100000"]}
            """)
        let before = try await node.waitForPod("flaky", seconds: 90) { (PodNode.status($0, "flaky")?.restartCount ?? 0) >= 1 }
        let countBefore = PodNode.status(before, "flaky")?.restartCount ?? 0
        let steadyID = PodNode.status(before, "steady")?.containerID

        // Two minutes without a server: the back-off (10 s, 20 s, 40 s, …) keeps restarting it.
        let server = node.server
        try await onOwnThread { server.stop() }
        try await Task.sleep(for: .seconds(120))
        let runs = try await node.runtimeContainers().filter { $0.contains("-flaky-") }
        let newest = runs.compactMap { $0.split(separator: "-").last.flatMap { Int32($0) } }.max() ?? 0
        #expect(newest >= countBefore + 2, "runs while offline: \(runs)")
        #expect(try await node.runtimeContainers().contains { steadyID?.hasSuffix($0) == true }, "the steady container kept running")
        try await onOwnThread { try server.resume() }

        // Back online: the status shows the restarts made offline, the node is Ready again.
        let after = try await node.waitForPod("flaky", seconds: 60) { (PodNode.status($0, "flaky")?.restartCount ?? 0) >= newest }
        #expect(PodNode.status(after, "steady")?.containerID == steadyID)
        #expect(PodNode.status(after, "steady")?.restartCount == 0)
        #expect(PodNode.status(after, "flaky")?.lastState?.terminated?.exitCode == 2)
        var ready = false
        for _ in 0..<60 {
            if try await node.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]) == "True" { ready = true; break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(ready, "\(node.agentLogTail)")
        let podJSON = Array(try await node.kubectl(["get", "pod", "flaky", "-o", "json"]).utf8)
        let failures = try await onOwnThread { try SchemaCheck.failures([("pod", podJSON)]) }
        #expect(failures.isEmpty, "\(failures)")
        await node.shutdown()
    }

    @Test func twoHundredPodsAtOnceAreAdmittedUpToMaxPodsAndForbiddenHostPathsAreRefused() async throws {
        let allowed = try Self.temporaryDirectory("allowed")
        defer { try? FileManager.default.removeItem(atPath: allowed) }
        let node = try await PodNode.make(name: "busy-board", configuration: "maxPods: 20\nallowedHostPaths: [\"\(allowed)\"]")
        var manifest = ""
        for index in 0..<200 {
            manifest += """
                apiVersion: v1
                kind: Pod
                metadata: {name: crowd-\(index)}
                spec:
                  nodeName: \(node.name)
                  hostNetwork: true
                  terminationGracePeriodSeconds: 0
                  containers: [{name: app, image: \(image), command: ["sleep", "100000"]}]
                ---

                """
        }
        try await node.kubectl(["create", "-f", "-"], input: manifest)
        // One line per pod: name, phase, Ready, reason, message (200 full objects are slow to decode).
        let columns = #"{range .items[*]}{.metadata.name}|{.status.phase}|{.status.conditions[?(@.type=="Ready")].status}|{.status.reason}|{.status.message}{"\n"}{end}"#
        var rows: [[Substring]] = []
        let deadline = Date().addingTimeInterval(240)
        while Date() < deadline {
            rows = try await node.kubectl(["get", "pods", "-o", "jsonpath=" + columns]).split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false) }
            let settled = rows.filter { $0.count == 5 && ($0[1] == "Failed" || ($0[1] == "Running" && $0[2] == "True")) }
            if settled.count == 200 { break }
            try await Task.sleep(for: .seconds(1))
        }
        let running = rows.filter { $0.count == 5 && $0[1] == "Running" }
        let refused = rows.filter { $0.count == 5 && $0[1] == "Failed" }
        #expect(running.count == 20, "running \(running.count), refused \(refused.count)\n\(node.agentLogTail)")
        #expect(refused.count == 180)
        #expect(refused.allSatisfy { $0[3] == "OutOfpods" && $0[4] == "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 20, capacity: 20" },
                "\(refused.first ?? [])")
        #expect(try await node.runtimeContainers().count == 20)
        // kubectl shows the reason of a refused pod.
        if let name = refused.first?[0] {
            #expect(try await node.kubectl(["get", "pod", String(name)]).contains("OutOfpods"))
        }

        // A hostPath outside allowedHostPaths is refused for what it is.
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: snooper}
            spec:
              nodeName: \(node.name)
              containers: [{name: app, image: \(image), command: ["cat", "/host/shadow"], volumeMounts: [{name: etc, mountPath: /host}]}]
              volumes: [{name: etc, hostPath: {path: /etc}}]
            """)
        let snooper = try await node.waitForPod("snooper", seconds: 60) { $0.status?.phase == .failed }
        #expect(snooper.status?.reason == "HostPathNotAllowed")
        #expect(snooper.status?.message?.contains("uses /etc") == true, "\(String(describing: snooper.status?.message))")

        // The board is healthy and its objects are valid.
        #expect(try await node.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]) == "True")
        var documents: [(String, [UInt8])] = []
        for name in [running.first?[0], refused.first?[0], "snooper"].compactMap({ $0 }).map(String.init) {
            documents.append((name, Array(try await node.kubectl(["get", "pod", name, "-o", "json"]).utf8)))
        }
        let checked = documents
        let failures = try await onOwnThread { try SchemaCheck.failures(checked) }
        #expect(failures.isEmpty, "\(failures)")
        await node.shutdown()
    }
}
