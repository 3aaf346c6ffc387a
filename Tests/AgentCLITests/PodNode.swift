import Foundation
import IotkubeTestSupport
import KubeModel
import PodNetwork

/// A board for the pod tests: a real iotkube-server, an agent joined to it and running as its
/// own process (`iotkube-agent run`) with its own state, runtime root, log directory and a pod
/// network on a bridge of its own, and the busybox image in a real registry.
final class PodNode: @unchecked Sendable {
    let server: ServerProcess
    let registry: PodImageRegistry
    let name: String
    let base: String
    let bridge: String
    let podCIDR: String
    private(set) var agent: SpawnedProcess?
    var configDirectory: String { base + "/etc" }
    var stateDirectory: String { base + "/state" }
    var runtimeRoot: String { base + "/run" }
    /// This node's own cgroup root (agents of concurrent tests must not sweep each other's pods).
    var cgroupRoot: String { "iotkube-test-" + (base.split(separator: "-").last.map(String.init) ?? "node") }
    var logDirectory: String { base + "/logs" }
    var agentLog: String { base + "/agent.log" }
    var manifestDirectory: String { base + "/manifests" }
    let port: Int

    static var available: Bool {
        getuid() == 0 && PodImageRegistry.toolsPresent && toolAvailable("kubectl")
            && FileManager.default.isExecutableFile(atPath: "/usr/lib/cni/bridge") && toolAvailable("curl")
    }

    /// A node, built off the concurrency threads.
    /// `stateFilesystemBytes`: the state directory is a tmpfs of that size (a small SD card);
    /// `configuration`: more agent.yaml lines; `agentArguments`: more `run` options;
    /// `insecureRegistries`: more registries reached over plain HTTP.
    /// `hidingTheUnifiedCgroup`: the agent runs in a mount namespace of its own where the hybrid
    /// host's near-empty cgroup2 mount is covered (crun refuses hybrid hosts).
    /// With `IOTKUBE_TEST_POD_RUNTIME=crun` every node's agent has `runtime: crun` (the pod
    /// suites' second pass: the same pods through the external runtime).
    /// `agentEnvironment`: added to the agent's environment.
    static func make(name: String, stateFilesystemBytes: Int64? = nil, configuration: String = "", agentArguments: [String] = [],
                     insecureRegistries: [String] = [], hidingTheUnifiedCgroup: Bool = false, agentEnvironment: [String: String] = [:]) async throws -> PodNode {
        let external = externalRuntime.map { "runtime: \($0)\n" } ?? ""
        let configured = configuration.contains("runtime:") ? configuration : external + configuration
        let hiding = hidingTheUnifiedCgroup || (externalRuntime != nil && !configuration.contains("runtime:"))
        return try await onOwnThread {
            try PodNode(name: name, stateFilesystemBytes: stateFilesystemBytes, configuration: configured, agentArguments: agentArguments,
                        insecureRegistries: insecureRegistries, hidingTheUnifiedCgroup: hiding, agentEnvironment: agentEnvironment)
        }
    }

    /// The OCI runtime the pod suites run on this pass (nil: the built-in one).
    static var externalRuntime: String? {
        ProcessInfo.processInfo.environment["IOTKUBE_TEST_POD_RUNTIME"].flatMap { $0.isEmpty || $0 == "builtin" ? nil : $0 }
    }

    let agentArguments: [String]
    let agentEnvironment: [String: String]
    let stateIsTmpfs: Bool
    let hidingTheUnifiedCgroup: Bool

    private init(name: String, serverArguments: [String] = [], stateFilesystemBytes: Int64? = nil, configuration: String = "", agentArguments: [String] = [],
                 insecureRegistries: [String] = [], hidingTheUnifiedCgroup: Bool = false, agentEnvironment: [String: String] = [:]) throws {
        self.agentArguments = agentArguments
        self.agentEnvironment = agentEnvironment
        self.hidingTheUnifiedCgroup = hidingTheUnifiedCgroup
        stateIsTmpfs = stateFilesystemBytes != nil
        registry = try PodImageRegistry.shared.get()
        server = try ServerProcess(arguments: serverArguments)
        self.name = name
        base = NSTemporaryDirectory() + "iotkube-node-\(UUID().uuidString.prefix(8))"
        port = try ServerProcess.freePort()
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        bridge = "iotkn" + suffix
        var chosen: String?
        for _ in 0..<50 {
            let candidate = "10.\(Int.random(in: 150...249)).\(Int.random(in: 0...255)).0/24"
            let cidr = try PodCIDR.parse(candidate)
            if !PodCIDR.hostNetworks().contains(where: { $0.network.overlaps(cidr) }) { chosen = candidate; break }
        }
        guard let chosen else { throw TestFailure("no free pod range") }
        podCIDR = chosen
        if let stateFilesystemBytes {
            try FileManager.default.createDirectory(atPath: base + "/state", withIntermediateDirectories: true)
            let mounted = try ServerProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(stateFilesystemBytes)", "iotkube-test-state", base + "/state"])
            guard mounted.status == 0 else { throw TestFailure("mounting the state tmpfs: \(mounted.output)") }
        }
        try FileManager.default.createDirectory(atPath: base + "/cni", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/manifests", withIntermediateDirectories: true)
        let network = CNINetworkList.standard(podCIDR: podCIDR, bridge: bridge, ipamDataDirectory: stateDirectory + "/network/ipam")
        try Data(KubeJSON.serialize(network.json)).write(to: URL(fileURLWithPath: base + "/cni/10-pods.conflist"))

        let token = try JoinTests.token(server)
        let joined = try ServerProcess.run(JoinTests.agent, [
            "join", token, "--node-name", name, "--config-dir", configDirectory, "--state-dir", stateDirectory,
            "--port", String(port), "--no-start", "--insecure-registry", registry.address,
        ] + insecureRegistries.flatMap { ["--insecure-registry", $0] })
        guard joined.status == 0 else { throw TestFailure("join: \(joined.output)") }
        let extra = """
            podLogDirectory: "\(logDirectory)"
            runtimeRoot: "\(runtimeRoot)"
            cgroupRoot: "/\(cgroupRoot)"
            cniConfigDirectory: "\(base)/cni"
            staticPodPath: "\(manifestDirectory)"
            \(configuration.contains("serviceProxy:") ? "" : "serviceProxy: false  # agents of concurrent tests would program one table")
            \(configuration)

            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: configDirectory + "/agent.yaml"))
        handle.seekToEndOfFile()
        handle.write(Data(extra.utf8))
        try handle.close()
        FileManager.default.createFile(atPath: agentLog, contents: nil)
        try startAgent()
    }

    /// Starts `iotkube-agent run` (its output appended to `agentLog`).
    func startAgent() throws {
        let arguments = ["run", "--config", configDirectory + "/agent.yaml", "--heartbeat-interval", "2", "--static-pod-interval", "1"] + agentArguments
        if hidingTheUnifiedCgroup {
            let script = "mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\""
            agent = try SpawnedProcess("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, JoinTests.agent] + arguments,
                                       environment: agentEnvironment, output: .file(agentLog))
        } else {
            agent = try SpawnedProcess(JoinTests.agent, arguments, environment: agentEnvironment, output: .file(agentLog))
        }
    }

    /// Kills the agent with SIGKILL (no shutdown at all), as a crash or OOM kill would.
    func killAgent() {
        guard let agent, agent.isRunning else { return }
        agent.signal(SIGKILL)
        agent.waitUntilExit()
    }

    /// What a reboot does to the board: every container and mount gone, the runtime's tmpfs
    /// emptied, the pod bridge gone; the state directory (the SD card) stays.
    func simulateReboot() throws {
        killAgent()
        _ = try ServerProcess.run(JoinTests.agent, ["runtime", "--root", runtimeRoot, "list"])
        for id in (try? FileManager.default.contentsOfDirectory(atPath: runtimeRoot))?.filter({ !$0.hasPrefix(".") }) ?? [] {
            _ = try ServerProcess.run(JoinTests.agent, ["runtime", "--root", runtimeRoot, "delete", "--force", id])
        }
        try? FileManager.default.removeItem(atPath: runtimeRoot)
        unmountState()
        _ = try ServerProcess.run("/bin/sh", ["-c", "ip link del \(bridge) 2>/dev/null; true"])
    }

    private func unmountState() {
        let script = "grep -F ' \(stateDirectory)/' /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l"
        _ = try? ServerProcess.run("/bin/sh", ["-c", script])
    }

    private var shutDown = false

    /// Deletes the pods (gracefully, through the agent), stops everything and removes what is left.
    func shutdown() async {
        _ = try? await onOwnThread { [self] in self.cleanUp() }
    }

    deinit {
        if !shutDown { cleanUp() }
    }

    private func cleanUp() {
        guard !shutDown else { return }
        shutDown = true
        // Pods first (graceful, through the agent), then whatever a failed test left behind.
        if agent?.isRunning == true {
            _ = try? server.kubectl(["delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=false"])
            for _ in 0..<60 {
                if (try? server.kubectl(["get", "pods", "-A", "-o", "name"]).output.isEmpty) ?? true { break }
                Thread.sleep(forTimeInterval: 0.25)
            }
            agent?.terminate()
            // An agent that does not stop is a failure the test reports; it must not hang the run.
            for _ in 0..<300 where agent?.isRunning == true { Thread.sleep(forTimeInterval: 0.1) }
            agent?.signal(SIGKILL)
            agent?.waitUntilExit()
        }
        if let ids = try? FileManager.default.contentsOfDirectory(atPath: runtimeRoot) {
            for id in ids where !id.hasPrefix(".") {
                _ = try? ServerProcess.run(JoinTests.agent, ["runtime", "--root", runtimeRoot, "delete", "--force", id])
            }
        }
        let cgroups = "for d in /sys/fs/cgroup/\(cgroupRoot) /sys/fs/cgroup/*/\(cgroupRoot); do [ -d \"$d\" ] && find \"$d\" -depth -type d -exec rmdir {} + 2>/dev/null; done; true"
        _ = try? ServerProcess.run("/bin/sh", ["-c", cgroups])
        let cache = stateDirectory + "/network/cache"
        if FileManager.default.fileExists(atPath: cache) {
            let network = CNINetworkList.standard(podCIDR: podCIDR, bridge: bridge, ipamDataDirectory: stateDirectory + "/network/ipam")
            _ = PodNetworkAttachments(network: network, plugins: CNIPlugins(), cacheDirectory: cache).releaseStale(keeping: [])
        }
        unmountState()
        if stateIsTmpfs { _ = try? ServerProcess.run("/bin/umount", ["-l", stateDirectory]) }
        _ = try? ServerProcess.run("/bin/sh", ["-c", "ip link del \(bridge) 2>/dev/null; true"])
        PodEgressMasquerade.remove(podCIDR: podCIDR)
        // IOTKUBE_KEEP_TEST_NODES=1 keeps the node's files (agent log, state) for a look afterwards.
        if ProcessInfo.processInfo.environment["IOTKUBE_KEEP_TEST_NODES"] != "1" { try? FileManager.default.removeItem(atPath: base) }
    }

    // MARK: kubectl helpers (async: the waits run off the concurrency threads)

    @discardableResult
    func kubectl(_ arguments: [String], input: String? = nil) async throws -> String {
        let result = try await serverKubectl(arguments, input: input)
        guard result.status == 0 else { throw TestFailure("kubectl \(arguments.joined(separator: " ")): \(result.output)\nagent log:\n\(agentLogTail)") }
        return result.output
    }

    /// kubectl against this node's server: status and output. Calls the server passes on to
    /// the agent (logs, exec, attach, port-forward) first wait until the agent serves with its
    /// cluster-signed certificate: the server refuses the self-signed one of the first seconds,
    /// as a kube-apiserver with `--kubelet-certificate-authority` does.
    func serverKubectl(_ arguments: [String], input: String? = nil) async throws -> (status: Int32, output: String) {
        if let verb = arguments.first, ["logs", "exec", "attach", "port-forward"].contains(verb) {
            try await waitForClusterSignedServingCertificate()
        }
        return try await onOwnThread { [self] in try self.server.kubectl(arguments, input: input) }
    }

    /// Waits for the agent's log line that its serving certificate is signed by the cluster.
    func waitForClusterSignedServingCertificate(seconds: TimeInterval = 60) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let log = (try? String(contentsOfFile: agentLog, encoding: .utf8)) ?? ""
            if log.contains("serving certificate signed by the cluster") { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("the agent of \(name) did not get a cluster-signed serving certificate in \(Int(seconds)) s\nagent log:\n\(agentLogTail)")
    }

    func apply(_ yaml: String) async throws { try await kubectl(["apply", "-f", "-"], input: yaml) }

    func pod(_ name: String, namespace: String = "default") async throws -> Pod {
        try KubeJSON.decode(Pod.self, from: Array(try await kubectl(["get", "pod", name, "-n", namespace, "-o", "json"]).utf8))
    }

    /// Polls `condition` on the pod until it holds or `seconds` pass; the last pod.
    @discardableResult
    func waitForPod(_ name: String, seconds: TimeInterval = 60, _ condition: (Pod) -> Bool) async throws -> Pod {
        let deadline = Date().addingTimeInterval(seconds)
        var last = try await pod(name)
        while !condition(last) {
            guard Date() < deadline else {
                throw TestFailure("pod \(name) did not reach the expected state in \(Int(seconds)) s; last status: \(String(decoding: try KubeJSON.encode(last.status), as: UTF8.self))\nagent log:\n\(agentLogTail)")
            }
            try await Task.sleep(for: .milliseconds(300))
            last = try await pod(name)
        }
        return last
    }

    /// Like ``waitForPod`` for a pod that may not exist yet (a mirror pod).
    @discardableResult
    func waitForPodToExist(_ name: String, seconds: TimeInterval = 60, _ condition: (Pod) -> Bool) async throws -> Pod {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let result = try await serverKubectl(["get", "pod", name, "-o", "json"])
            if result.status == 0, let pod = try? KubeJSON.decode(Pod.self, from: Array(result.output.utf8)), condition(pod) { return pod }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw TestFailure("pod \(name) did not appear in the expected state in \(Int(seconds)) s\nagent log:\n\(agentLogTail)")
    }

    /// Seconds from each exit of `container` to its next start, from the agent's log lines
    /// ("container X exited with N", "started container X (…)"; one-second resolution).
    func restartDelays(container: String) throws -> [Double] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ssZ"
        var exits: [Date] = [], starts: [Date] = []
        for line in try String(contentsOfFile: agentLog, encoding: .utf8).split(separator: "\n") {
            guard let stamp = line.split(separator: " ").first, let time = formatter.date(from: String(stamp)) else { continue }
            if line.contains("] container \(container) exited with ") { exits.append(time) }
            if line.contains("] started container \(container) (") { starts.append(time) }
        }
        // The first start has no exit before it.
        return zip(exits, starts.dropFirst()).map { $1.timeIntervalSince($0) }
    }

    var agentLogTail: String {
        let text = (try? String(contentsOfFile: agentLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(30).joined(separator: "\n")
    }

    /// Containers in this node's runtime root.
    func runtimeContainers() async throws -> [String] {
        let result = try await ServerProcess.runAsync(JoinTests.agent, ["runtime", "--root", runtimeRoot, "list"])
        return result.output.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    static func status(_ pod: Pod, _ container: String) -> ContainerStatus? {
        ((pod.status?.containerStatuses ?? []) + (pod.status?.initContainerStatuses ?? [])).first { $0.name == container }
    }

    static func isReady(_ pod: Pod) -> Bool {
        pod.status?.conditions?.first { $0.type == "Ready" }?.status == .true
    }
}
