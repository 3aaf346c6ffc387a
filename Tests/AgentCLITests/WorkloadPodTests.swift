import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// Workloads on a real board: the server's controllers make the pods, a real agent runs them
/// from a real registry. A deployment rolls out, stalls on an image the registry lacks and is
/// rolled back; a daemon set puts its pod on the board; a job fails twice, then succeeds.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct WorkloadPodTests {
    @Test func deploymentDaemonSetAndJobOnARealAgent() async throws {
        let shared = NSTemporaryDirectory() + "iotkube-job-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: shared) }
        let node = try await PodNode.make(name: "workload-board", configuration: "allowedHostPaths: [\"\(shared)\"]")
        let image = node.registry.busybox

        // A deployment of two replicas, rolled out on the board.
        try await node.apply("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 2
              progressDeadlineSeconds: 25
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers: [{name: busybox, image: "\(image)", command: [sh, -c, "sleep 3600"]}]
            """)
        #expect(try await node.kubectl(["rollout", "status", "deployment/web", "--timeout=180s"]).contains("successfully rolled out"))
        let running = try await node.kubectl(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}"])
        #expect(running == "Running Running", "\(running)")

        // A tag the registry does not have: the new pod cannot pull, the rollout stalls past its
        // deadline while both old pods keep running; undo brings the first template back.
        let missing = image.split(separator: ":").dropLast().joined(separator: ":") + ":missing"
        try await node.kubectl(["set", "image", "deployment/web", "busybox=\(missing)"])
        let stalled = try await node.serverKubectl(["rollout", "status", "deployment/web", "--timeout=120s"])
        #expect(stalled.status != 0 && stalled.output.contains("exceeded its progress deadline"), "\(stalled.output)")
        let waiting = try await node.kubectl(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.containerStatuses[0].state.waiting.reason}"])
        #expect(waiting.contains("ErrImagePull") || waiting.contains("ImagePullBackOff"), "\(waiting)")
        #expect(try await node.kubectl(["get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}"]) == "2")
        try await node.kubectl(["rollout", "undo", "deployment/web"])
        #expect(try await node.kubectl(["rollout", "status", "deployment/web", "--timeout=120s"]).contains("successfully rolled out"))
        var images = ""
        for _ in 0..<120 {
            images = try await node.kubectl(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].spec.containers[0].image}"])
            if images == "\(image) \(image)" { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(images == "\(image) \(image)")

        // A daemon set: its pod on the board.
        try await node.apply("""
            apiVersion: apps/v1
            kind: DaemonSet
            metadata: {name: sensor}
            spec:
              selector: {matchLabels: {app: sensor}}
              template:
                metadata: {labels: {app: sensor}}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers: [{name: sensor, image: "\(image)", command: [sh, -c, "sleep 3600"]}]
            """)
        #expect(try await node.kubectl(["rollout", "status", "daemonset/sensor", "--timeout=120s"]).contains("successfully rolled out"))
        #expect(try await node.kubectl(["get", "pods", "-l", "app=sensor", "-o", "jsonpath={.items[*].spec.nodeName}"]) == "workload-board")

        // A job whose first two pods fail (a counter on the board's disk), the third succeeds.
        try await node.apply("""
            apiVersion: batch/v1
            kind: Job
            metadata: {name: calibrate}
            spec:
              backoffLimit: 4
              template:
                spec:
                  restartPolicy: Never
                  terminationGracePeriodSeconds: 1
                  volumes: [{name: shared, hostPath: {path: "\(shared)"}}]
                  containers:
                  - name: calibrate
                    image: "\(image)"
                    volumeMounts: [{name: shared, mountPath: /shared}]
                    command: [sh, -c, "n=$(cat /shared/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /shared/runs; echo run $n; [ $n -ge 3 ]"]
            """)
        #expect(try await node.kubectl(["wait", "--for=condition=complete", "job/calibrate", "--timeout=240s"]).contains("condition met"))
        #expect(try await node.kubectl(["get", "job", "calibrate", "-o", "jsonpath={.status.succeeded} {.status.failed}"]) == "1 2")
        #expect(try String(contentsOfFile: shared + "/runs", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "3")
        let succeeded = try await node.kubectl(["get", "pods", "-l", "job-name=calibrate", "--field-selector", "status.phase=Succeeded", "-o", "name"])
        let logs = try await node.kubectl(["logs", succeeded.trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(logs.contains("run 3"), "\(logs)")

        // The workloads go first, so nothing makes new pods while the board is cleaned up.
        for workload in ["deployment/web", "daemonset/sensor", "job/calibrate"] {
            try await node.kubectl(["delete", workload, "--wait=false"])
        }
        await node.shutdown()
    }
}
