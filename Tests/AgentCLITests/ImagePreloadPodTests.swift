import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// A board without a registry: an image archive in the pre-load directory (as put on an SD
/// card) is imported when the agent starts, and a pod runs from it.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct ImagePreloadPodTests {
    @Test func aPodRunsFromAPreloadedImageWithoutAnyRegistry() async throws {
        let registry = try PodImageRegistry.shared.get()
        let preload = NSTemporaryDirectory() + "iotkube-preload-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: preload, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: preload) }
        // The name is on no registry this machine can reach: only the archive has it.
        let copied = try ServerProcess.run("/usr/bin/skopeo", ["copy", "-q", "--src-tls-verify=false", "docker://\(registry.busybox)",
                                                               "oci-archive:\(preload)/sensor.tar:registry.invalid/edge/sensor:1"], timeout: 120)
        #expect(copied.status == 0, "\(copied.output)")
        let compressed = try ServerProcess.run("/usr/bin/zstd", ["-q", "--rm", "\(preload)/sensor.tar"])
        #expect(compressed.status == 0, "\(compressed.output)")
        // Copied a while ago (a file written in the last seconds waits for the next look).
        #expect(try ServerProcess.run("/usr/bin/touch", ["-d", "1 minute ago", "\(preload)/sensor.tar.zst"]).status == 0)

        let node = try await PodNode.make(name: "preload-board", configuration: "imagePreloadDirectory: \"\(preload)\"")
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: sensor}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: app
                image: registry.invalid/edge/sensor:1
                imagePullPolicy: IfNotPresent
                command: ["sh", "-c", "echo reading from the preloaded image; sleep 3600"]
            """)
        let running = try await node.waitForPod("sensor", seconds: 90) { PodNode.status($0, "app")?.state?.running != nil }
        #expect(PodNode.status(running, "app")?.image == "registry.invalid/edge/sensor:1")
        #expect(try await node.kubectl(["logs", "sensor"]).contains("reading from the preloaded image"))
        let log = (try? String(contentsOfFile: node.agentLog, encoding: .utf8)) ?? ""
        #expect(log.contains("pre-loaded images"), "\(log.suffix(2000))")
        // The node reports the image, and the store keeps it pinned.
        let images = try await node.kubectl(["get", "node", "preload-board", "-o", "jsonpath={.status.images[*].names}"])
        #expect(images.contains("registry.invalid/edge/sensor:1"), "\(images)")
        let list = try ServerProcess.run(JoinTests.agent, ["images", "ls", "--root", node.stateDirectory, "--config", node.configDirectory + "/agent.yaml"])
        #expect(list.output.contains("registry.invalid/edge/sensor:1"), "\(list.output)")
        try await node.kubectl(["delete", "pod", "sensor", "--wait=true"])
        await node.shutdown()
    }
}
