import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// Node-pressure eviction end to end: an agent whose state directory is a small filesystem (a
/// tmpfs standing in for an SD card), a pod that fills it through an emptyDir, and the real
/// eviction manager: DiskPressure on the Node, the largest BestEffort user evicted with the
/// kubelet's reason and message, its storage given back, other pods untouched, new pods refused
/// while the pressure lasts.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct PodEvictionTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    func nodeCondition(_ node: PodNode, _ type: String) async throws -> String {
        try await node.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.conditions[?(@.type==\"\(type)\")].status}"])
    }

    func waitForNodeCondition(_ node: PodNode, _ type: String, _ value: String, seconds: Double) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await nodeCondition(node, type) == value { return true }
            try await Task.sleep(for: .milliseconds(500))
        }
        return false
    }

    func freeFraction(_ path: String) -> Double {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0, stats.f_blocks > 0 else { return 0 }
        return Double(stats.f_bavail) / Double(stats.f_blocks)
    }

    @Test func diskPressureEvictsTheLargestBestEffortUserAndRefusesNewPods() async throws {
        let node = try await PodNode.make(
            name: "full-board", stateFilesystemBytes: 256 << 20,
            configuration: """
                evictionHard:
                  "nodefs.available": "40%"
                evictionPressureTransitionPeriod: "120s"
                """,
            agentArguments: ["--housekeeping-interval", "1"])
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: guaranteed}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: app
                image: \(image)
                command: ["sleep", "100000"]
                resources:
                  requests: {cpu: 50m, memory: 32Mi}
                  limits: {cpu: 50m, memory: 32Mi}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: quiet}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - {name: app, image: \(image), command: ["sh", "-c", "dd if=/dev/zero of=/scratch/small bs=1M count=2; sleep 100000"], volumeMounts: [{name: scratch, mountPath: /scratch}]}
              volumes: [{name: scratch, emptyDir: {}}]
            """)
        for name in ["guaranteed", "quiet"] { try await node.waitForPod(name) { $0.status?.phase == .running } }
        #expect(try await nodeCondition(node, "DiskPressure") == "False")
        #expect(freeFraction(node.stateDirectory) > 0.8)

        // 170 MiB of 256: below 40 % free.
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: writer}
            spec:
              terminationGracePeriodSeconds: 30
              containers:
              - name: fill
                image: \(image)
                command: ["sh", "-c", "dd if=/dev/zero of=/data/fill bs=1M count=170; sleep 100000"]
                volumeMounts: [{name: data, mountPath: /data}]
              volumes: [{name: data, emptyDir: {}}]
            """)
        let evicted = try await node.waitForPod("writer", seconds: 240) { $0.status?.phase == .failed }
        #expect(evicted.status?.reason == "Evicted")
        let message = evicted.status?.message ?? ""
        #expect(message.hasPrefix("The node was low on resource: ephemeral-storage. Threshold quantity: 40%, available: "), "\(message)")
        #expect(message.contains("Container fill was using ") && message.contains("request is 0, has larger consumption of ephemeral-storage"), "\(message)")
        let disruption = evicted.status?.conditions?.first { $0.type == "DisruptionTarget" }
        #expect(disruption?.status == .true && disruption?.reason == "TerminationByKubelet")
        let fill = PodNode.status(evicted, "fill")
        #expect(fill?.state?.terminated != nil, "\(String(describing: fill))")
        // The hard threshold gave it a second, not its 30 s grace period; its emptyDir went with it.
        #expect(fill?.state?.terminated?.exitCode == 137 || fill?.state?.terminated?.exitCode == 143)
        // The status comes first; the volumes are released right after it.
        var released = false
        for _ in 0..<60 {
            if freeFraction(node.stateDirectory) > 0.8 { released = true; break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(released, "storage not given back: \(freeFraction(node.stateDirectory))")

        // DiskPressure on the Node, and a pod bound while it lasts is refused by admission.
        #expect(try await waitForNodeCondition(node, "DiskPressure", "True", seconds: 60), "\(node.agentLogTail)")
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: late}
            spec:
              nodeName: \(node.name)
              containers: [{name: app, image: \(image), command: ["sleep", "100000"]}]
            """)
        let refused = try await node.waitForPod("late", seconds: 90) { $0.status?.phase == .failed }
        #expect(refused.status?.reason == "Evicted")
        #expect(refused.status?.message == "Pod was rejected: The node had condition: [DiskPressure]. ")

        // Pods that were not chosen run on, never restarted.
        for name in ["guaranteed", "quiet"] {
            let pod = try await node.pod(name)
            #expect(pod.status?.phase == .running && PodNode.status(pod, "app")?.restartCount == 0, "\(name): \(String(describing: pod.status))")
        }
        // Events are posted apart from statuses (batched, rate-limited): waited for, up to 30 s.
        var events: [Event] = []
        for _ in 0..<60 {
            events = try KubeJSON.decode(KubeList<Event>.self, from: Array(try await node.kubectl(["get", "events", "-o", "json"]).utf8)).items
            if events.contains(where: { $0.reason == "Evicted" && $0.involvedObject.name == "late" }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(events.contains { $0.reason == "Evicted" && $0.involvedObject.name == "writer" && $0.type == "Warning" })
        #expect(events.contains { $0.reason == "Evicted" && $0.involvedObject.name == "late" })

        // Every object passes the official schemas.
        var documents: [(String, [UInt8])] = []
        for name in ["writer", "late"] { documents.append((name, Array(try await node.kubectl(["get", "pod", name, "-o", "json"]).utf8))) }
        documents.append(("node", Array(try await node.kubectl(["get", "node", node.name, "-o", "json"]).utf8)))
        let checked = documents
        let failures = try await onOwnThread { try SchemaCheck.failures(checked) }
        #expect(failures.isEmpty, "\(failures)")

        // The pressure ends after the transition period (long enough for a loaded machine to
        // see the condition and the refusal within it).
        #expect(try await waitForNodeCondition(node, "DiskPressure", "False", seconds: 240), "\(node.agentLogTail)")
        await node.shutdown()
    }
}
