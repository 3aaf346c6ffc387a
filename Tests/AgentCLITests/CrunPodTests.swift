import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// `runtime: crun`: the same pods made, started and deleted by crun (its CLI, with the agent's
/// bundles) behind the built-in runtime's monitor: limits in the pod's cgroup, the container's
/// own cgroup view, probes, logs, exec, a crash loop with its exit codes, and nothing of crun's
/// left after the pod. On this hybrid host crun needs the unified mount hidden.
@Suite(.ownThread, .heavy, .serialized,
       .enabled(if: PodNode.available && toolAvailable("crun"), "needs crun and what the pod tests need"))
struct CrunPodTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    @Test func podsRunByCrunBehaveAsWithTheBuiltinRuntime() async throws {
        let node = try await PodNode.make(name: "crun-board", configuration: "runtime: crun", hidingTheUnifiedCgroup: true)
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: app}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: main
                image: \(image)
                command: ["sh", "-c", "grep memory /proc/self/cgroup; echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); touch /tmp/ready; sleep 100000"]
                resources: {requests: {cpu: 50m}, limits: {memory: 48Mi}}
                readinessProbe:
                  exec: {command: ["test", "-f", "/tmp/ready"]}
                  periodSeconds: 1
              - name: crasher
                image: \(image)
                command: ["sh", "-c", "echo crashing; exit 3"]
            """)
        let ready = try await node.waitForPod("app", seconds: 120) {
            PodNode.status($0, "main")?.ready == true && (PodNode.status($0, "crasher")?.restartCount ?? 0) >= 1
        }
        let uid = ready.metadata.uid ?? ""
        #expect(PodNode.status(ready, "crasher")?.lastState?.terminated?.exitCode == 3)
        let logs = try await node.kubectl(["logs", "app", "-c", "main"])
        #expect(logs.contains(":memory:/\n") && logs.contains("limit=\(48 << 20)"), "\(logs)")
        #expect(try await node.kubectl(["logs", "app", "-c", "crasher"]).contains("crashing"))
        let exec = try await node.serverKubectl(["exec", "app", "-c", "main", "--", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 4"])
        #expect(exec.output.contains("sleep 100000") && exec.status == 4, "\(exec)")
        // crun made the containers: its state lists them; the container sits in the pod's cgroup.
        let crunRoot = node.runtimeRoot + "/.external"
        let listed = try await ServerProcess.runAsync("/usr/bin/crun", ["--root", crunRoot, "list", "-q"])
        #expect(listed.output.contains("\(uid)-main-0"), "\(listed.output)")
        let container = "/sys/fs/cgroup/memory/\(node.cgroupRoot)/kubepods/burstable/pod\(uid)/\(uid)-main-0"
        #expect((try? String(contentsOfFile: container + "/memory.limit_in_bytes", encoding: .utf8)) == "\(48 << 20)\n")

        try await node.kubectl(["delete", "pod", "app", "--wait=false"])
        for _ in 0..<100 where FileManager.default.fileExists(atPath: container) { try await Task.sleep(for: .milliseconds(200)) }
        #expect(!FileManager.default.fileExists(atPath: container), "the container's cgroup outlived the pod")
        let after = try await ServerProcess.runAsync("/usr/bin/crun", ["--root", crunRoot, "list", "-q"])
        #expect(after.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "crun still knows: \(after.output)")
        await node.shutdown()
    }
}
