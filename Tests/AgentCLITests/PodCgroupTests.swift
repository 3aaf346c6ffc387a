import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// Pod cgroups end to end on this host's v1 hierarchies (the v2 files are checked in the VM):
/// `kubepods` with node allocatable, the QoS tiers, each pod's cgroup with the sums of its
/// containers' limits and its containers inside, kept through an agent restart, removed with
/// the pod, and a leftover pod cgroup swept at start.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct PodCgroupTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func container(_ name: String, requests: String = "{}", limits: String = "{}", script: String = "sleep 100000") -> String {
        """
          - name: \(name)
            image: IMAGE
            command: ["sh", "-c", "\(script)"]
            resources: {requests: \(requests), limits: \(limits)}
        """
    }

    static func pod(_ name: String, _ containers: String...) -> String {
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: \(name)}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
        \(containers.joined(separator: "\n"))
        """
    }

    @Test func podsSitInTheirTierWithTheirSumsSurviveARestartAndLeaveNothingBehind() async throws {
        let node = try await PodNode.make(name: "cgroup-board", configuration: """
            systemReserved: {memory: 256Mi}
            kubeReserved: {memory: 128Mi}
            podPidsLimit: 64
            """)
        let memory = "/sys/fs/cgroup/memory/\(node.cgroupRoot)/kubepods", cpu = "/sys/fs/cgroup/cpu/\(node.cgroupRoot)/kubepods"
        let pids = "/sys/fs/cgroup/pids/\(node.cgroupRoot)/kubepods"
        let view = "cat /proc/self/cgroup; echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); sleep 100000"
        let pods = [
            Self.pod("burst", Self.container("one", requests: "{cpu: 100m}", limits: "{memory: 40Mi}", script: view),
                     Self.container("two", requests: "{cpu: 50m}", limits: "{memory: 24Mi}")),
            Self.pod("steady", Self.container("app", requests: "{cpu: 200m, memory: 32Mi}", limits: "{cpu: 200m, memory: 32Mi}")),
            Self.pod("idle", Self.container("app")),
        ]
        try await node.apply(pods.joined(separator: "\n---\n").replacingOccurrences(of: "IMAGE", with: image))
        var uids: [String: String] = [:]
        for name in ["burst", "steady", "idle"] {
            let pod = try await node.waitForPod(name, seconds: 90) { $0.status?.containerStatuses?.allSatisfy { $0.state?.running != nil } == true }
            uids[name] = pod.metadata.uid
        }
        let burst = "\(memory)/burstable/pod\(uids["burst"]!)", steady = "\(memory)/pod\(uids["steady"]!)"
        // The tiers and kubepods.
        let total = Int64(Self.read("/proc/meminfo")!.split(separator: "\n").first!.split(separator: " ")[1])! * 1024
        #expect(Self.read("\(memory)/memory.limit_in_bytes") == String(total - (384 << 20)), "kubepods carries capacity − reserved")
        #expect(Self.read("\(cpu)/besteffort/cpu.shares") == "2")
        #expect(Self.read("\(cpu)/burstable/cpu.shares") == "153", "the burstable tier's share is its pods' requests (150m)")
        // Each pod: the sums of its containers' limits; the process limit for every pod.
        #expect(Self.read("\(burst)/memory.limit_in_bytes") == String(64 << 20))
        #expect(Self.read("\(cpu)/burstable/pod\(uids["burst"]!)/cpu.shares") == "153")
        #expect(Self.read("\(cpu)/burstable/pod\(uids["burst"]!)/cpu.cfs_quota_us") == "-1", "no quota: not every container has a CPU limit")
        #expect(Self.read("\(steady)/memory.limit_in_bytes") == String(32 << 20))
        #expect(Self.read("\(cpu)/pod\(uids["steady"]!)/cpu.cfs_quota_us") == "20000")
        #expect(Self.read("\(cpu)/besteffort/pod\(uids["idle"]!)/cpu.shares") == "2")
        #expect(Self.read("\(pids)/besteffort/pod\(uids["idle"]!)/pids.max") == "64")
        // The containers are in their pod's cgroup, and see their own as the root.
        #expect(Self.read("\(burst)/\(uids["burst"]!)-one-0/memory.limit_in_bytes") == String(40 << 20))
        #expect(Self.read("\(burst)/\(uids["burst"]!)-two-0/memory.limit_in_bytes") == String(24 << 20))
        let logs = try await node.kubectl(["logs", "burst", "-c", "one"])
        #expect(logs.contains(":memory:/\n") && logs.contains("limit=\(40 << 20)"), "\(logs)")

        // A restart (kill -9) keeps the pods in their cgroups; a leftover pod cgroup is swept.
        let orphan = "\(memory)/besteffort/podleftover-\(UUID().uuidString.prefix(8))"
        #expect(mkdir(orphan, 0o755) == 0)
        node.killAgent()
        try node.startAgent()
        for _ in 0..<100 where FileManager.default.fileExists(atPath: orphan) { try await Task.sleep(for: .milliseconds(200)) }
        #expect(!FileManager.default.fileExists(atPath: orphan), "the leftover pod cgroup is still there")
        #expect(Self.read("\(burst)/memory.limit_in_bytes") == String(64 << 20))
        #expect(FileManager.default.fileExists(atPath: "\(burst)/\(uids["burst"]!)-one-0"), "the adopted container left its pod's cgroup")

        // Deleted pods take their cgroups with them; the tiers stay.
        try await node.kubectl(["delete", "pod", "burst", "steady", "idle", "--wait=false"])
        let gone = { ["\(burst)", "\(steady)", "\(memory)/besteffort/pod\(uids["idle"]!)"].allSatisfy { !FileManager.default.fileExists(atPath: $0) } }
        for _ in 0..<150 where !gone() { try await Task.sleep(for: .milliseconds(200)) }
        #expect(gone(), "a pod cgroup outlived its pod\n\(node.agentLogTail)")
        #expect(FileManager.default.fileExists(atPath: "\(memory)/burstable"))
        await node.shutdown()
    }

    /// Two pods that both want every CPU: the BestEffort one (its tier's minimal share) is
    /// squeezed, the Burstable one (its tier sized by its requests) gets nearly all.
    @Test func aBestEffortPodIsSqueezedFirst() async throws {
        let node = try await PodNode.make(name: "squeeze-board")
        let spin = "for i in 1 2 3 4; do (while :; do :; done) & done; wait"
        func pod(_ name: String, _ resources: String) -> String {
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: \(name)}
            spec:
              hostNetwork: true
              terminationGracePeriodSeconds: 0
              containers: [{name: app, image: \(image), command: ["sh", "-c", "\(spin)"], resources: \(resources)}]
            """
        }
        try await node.apply(pod("idle-be", "{}") + "\n---\n" + pod("paying", "{requests: {cpu: 500m}}"))
        var uids: [String: String] = [:]
        for name in ["idle-be", "paying"] {
            uids[name] = try await node.waitForPod(name, seconds: 90) { PodNode.status($0, "app")?.state?.running != nil }.metadata.uid
        }
        let usage = { (tier: String, name: String) -> Int64 in
            Int64(Self.read("/sys/fs/cgroup/cpuacct/\(node.cgroupRoot)/kubepods/\(tier)/pod\(uids[name]!)/cpuacct.usage") ?? "") ?? 0
        }
        try await Task.sleep(for: .seconds(1))
        let before = (usage("besteffort", "idle-be"), usage("burstable", "paying"))
        try await Task.sleep(for: .seconds(4))
        let squeezed = usage("besteffort", "idle-be") - before.0, paying = usage("burstable", "paying") - before.1
        #expect(paying > 0 && squeezed * 5 < paying, "CPU ns: BestEffort \(squeezed), Burstable \(paying)")
        try await node.kubectl(["delete", "pod", "idle-be", "paying", "--grace-period=0", "--wait=false"])
        await node.shutdown()
    }

    /// A hundred pods made and deleted, twenty at a time: no pod cgroup is left in any hierarchy.
    @Test func aHundredPodsComeAndGoWithoutLeavingACgroup() async throws {
        let node = try await PodNode.make(name: "churn-board", configuration: "podPidsLimit: 32")
        for round in 0..<5 {
            var manifest = ""
            for index in 0..<20 {
                let limits = index % 2 == 0 ? "{memory: 16Mi}" : "{}"
                manifest += """
                    apiVersion: v1
                    kind: Pod
                    metadata: {name: churn-\(round)-\(index)}
                    spec:
                      hostNetwork: true
                      terminationGracePeriodSeconds: 0
                      containers: [{name: app, image: \(image), command: ["sleep", "100000"], resources: {limits: \(limits)}}]
                    ---

                    """
            }
            try await node.kubectl(["create", "-f", "-"], input: manifest)
            let phases = { try await node.kubectl(["get", "pods", "-o", "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}"]) }
            for _ in 0..<300 where try await phases().split(separator: "\n").filter({ $0 == "Running" }).count < 20 { try await Task.sleep(for: .milliseconds(300)) }
            try await node.kubectl(["delete", "pods", "--all", "--grace-period=0", "--wait=false"])
            for _ in 0..<300 where !(try await phases().isEmpty) { try await Task.sleep(for: .milliseconds(300)) }
        }
        let left = try await ServerProcess.runAsync("/bin/sh", ["-c", "find /sys/fs/cgroup/*/\(node.cgroupRoot) -mindepth 3 -type d -name 'pod*' 2>/dev/null; true"])
        #expect(left.output.isEmpty, "pod cgroups left: \(left.output)\n\(node.agentLogTail)")
        #expect(try await node.runtimeContainers().isEmpty)
        await node.shutdown()
    }
}
