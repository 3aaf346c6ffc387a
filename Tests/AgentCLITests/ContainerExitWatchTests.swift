import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// A pod whose containers all run is looked at rarely (here every 5 minutes), yet a container's
/// exit reaches its worker at once: the exit record's appearance wakes it.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct ContainerExitWatchTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    @Test func exitsOfSteadyPodsAreSeenAtOnce() async throws {
        let node = try await PodNode.make(name: "steady-board", agentArguments: ["--steady-sync-interval", "300"])
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: finishes}
            spec:
              restartPolicy: Never
              containers: [{name: app, image: \(image), command: ["sh", "-c", "sleep 8; exit 3"]}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: restarts}
            spec:
              restartPolicy: Always
              containers: [{name: app, image: \(image), command: ["sh", "-c", "sleep 8; exit 1"]}]
            """)
        // Both run (steady) for 8 s; their exits must not wait for the 300 s look.
        let finished = try await node.waitForPod("finishes", seconds: 90) { $0.status?.phase == .failed }
        #expect(PodNode.status(finished, "app")?.state?.terminated?.exitCode == 3)
        let restarted = try await node.waitForPod("restarts", seconds: 90) { (PodNode.status($0, "app")?.restartCount ?? 0) >= 1 }
        #expect(PodNode.status(restarted, "app")?.lastState?.terminated?.exitCode == 1)
        // A deletion still wakes the worker.
        _ = try await node.kubectl(["delete", "pod", "restarts", "--wait=true", "--timeout=60s"])
        await node.shutdown()
    }
}
