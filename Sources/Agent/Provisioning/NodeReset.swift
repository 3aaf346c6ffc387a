#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import PodNetwork
import Runtime
import SystemSupport

/// `iotkube-agent reset`: undoes `join` and everything the agent made on the board, leaving the
/// package installed. The agent's unit is stopped and disabled, its containers are killed and
/// deleted, network attachments are released (CNI DEL from their cache), mounts under the state
/// directory (sandboxes, container roots, tmpfs volumes) are undone, the pod bridge is removed,
/// and the credentials, configuration and state directory are deleted.
public struct NodeReset: Sendable {
    public var configDirectory: String
    public var stateDirectory: String
    public var runtimeRoot: String
    public var helper: String
    /// How long a running agent is waited for.
    public var lockWaitSeconds: Int

    public init(configDirectory: String, stateDirectory: String, runtimeRoot: String, helper: String = ProcessSpawner.currentExecutable(), lockWaitSeconds: Int = 30) {
        self.configDirectory = configDirectory
        self.lockWaitSeconds = lockWaitSeconds
        self.stateDirectory = stateDirectory
        self.runtimeRoot = runtimeRoot
        self.helper = helper
    }

    /// Runs every step (a failed step does not stop the others); the lines say what was done
    /// and what failed, and `clean` is false when something could not be undone.
    public func run() -> (lines: [String], clean: Bool) {
        var lines: [String] = [], clean = true
        if SystemdUnit.systemdIsRunning {
            let status = SystemdUnit.run(["systemctl", "disable", "--now", "iotkube-agent.service"])
            lines.append(status == 0 ? "stopped and disabled iotkube-agent.service" : "systemctl disable --now iotkube-agent.service: exit \(status) (not installed?)")
        }
        // An agent started by hand (or still stopping) would restart what is removed here:
        // wait for it to be gone, and hold its lock while the state is taken apart.
        var instanceLock: AgentInstanceLock?
        if FileTree.isDirectory(stateDirectory) {
            do {
                instanceLock = try AgentInstanceLock.acquire(stateDirectory: stateDirectory, waitSeconds: lockWaitSeconds) { holder in
                    lines.append("waiting up to \(lockWaitSeconds) s for the agent\(holder.map { " (pid \($0))" } ?? "") running with \(stateDirectory) to stop")
                }
            } catch {
                lines.append("\(error); nothing was removed")
                return (lines, false)
            }
        }
        defer { withExtendedLifetime(instanceLock) {} }
        let runtime = BuiltinRuntime(root: runtimeRoot, helper: helper)
        for container in runtime.list() {
            do {
                try runtime.delete(id: container.id, force: true)
                lines.append("deleted container \(container.id)")
            } catch {
                lines.append("container \(container.id): \(error)")
                clean = false
            }
        }
        let cache = stateDirectory + "/network/cache"
        if FileTree.isDirectory(cache) {
            // The cached configuration of each attachment is what DEL uses; the list is a placeholder.
            let attachments = PodNetworkAttachments(
                network: CNINetworkList.standard(podCIDR: "10.42.0.0/24", ipamDataDirectory: stateDirectory + "/network/ipam"),
                plugins: CNIPlugins(), cacheDirectory: cache)
            let released = attachments.releaseStale(keeping: [])
            for id in released.released { lines.append("released the network of sandbox \(id)") }
            for (id, error) in released.failures.sorted(by: { $0.key < $1.key }) {
                lines.append("sandbox \(id): \(error)")
                clean = false
            }
        }
        // The default network's egress rules (made for the range the node had).
        if let range = FileTree.readText(stateDirectory + "/network/node-pod-cidr").map({ Array($0.utf8).trimmedText }), !range.isEmpty {
            PodEgressMasquerade.remove(podCIDR: range)
            lines.append("removed the egress masquerade of \(range)")
        }
        // The service proxy's rules, unless the agent was configured not to be the proxy.
        let configuration = try? AgentConfiguration.load(configDirectory + "/agent.yaml")
        if configuration?.serviceProxy != false {
            ServiceProxyBackend.removeAll()
            lines.append("removed the service proxy's rules")
        }
        if configuration?.runsClusterDNS ?? true {
            NodeLocalAddress.remove(ClusterDNSServer.defaultAddress)
            lines.append("removed the cluster DNS address \(ClusterDNSServer.defaultAddress)")
        }
        for mountPoint in Self.mountPoints(under: stateDirectory) {
            if umount2(mountPoint, Int32(MNT_DETACH)) == 0 {
                lines.append("unmounted \(mountPoint)")
            } else {
                lines.append("unmounting \(mountPoint): \(String(cString: strerror(errno)))")
                clean = false
            }
        }
        if access("/sys/class/net/iotkube0", F_OK) == 0 {
            let status = SystemdUnit.run(["ip", "link", "delete", "iotkube0"])
            lines.append(status == 0 ? "removed the pod bridge iotkube0" : "ip link delete iotkube0: exit \(status)")
        }
        for file in [configDirectory + "/agent.yaml", configDirectory + "/kubeconfig", configDirectory + "/bootstrap-kubeconfig"] where FileTree.exists(file) {
            if unlink(file) == 0 { lines.append("removed \(file)") } else {
                lines.append("removing \(file): \(String(cString: strerror(errno)))")
                clean = false
            }
        }
        for directory in [stateDirectory, runtimeRoot] where FileTree.exists(directory) {
            do {
                try FileTree.remove(directory)
                lines.append("removed \(directory)")
            } catch {
                lines.append("removing \(directory): \(error)")
                clean = false
            }
        }
        return (lines, clean)
    }

    /// Mount points at or below `directory`, deepest first (from /proc/self/mountinfo; octal
    /// escapes such as \040 for spaces decoded).
    static func mountPoints(under directory: String) -> [String] {
        guard let text = FileTree.readText("/proc/self/mountinfo", limit: 16 << 20) else { return [] }
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        var points: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { continue }
            let point = decode(String(fields[4]))
            if point == directory || point.hasPrefix(prefix) { points.append(point) }
        }
        return points.sorted { $0.count > $1.count }
    }

    static func decode(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.first {
            if byte == 0x5C, utf8.count >= 4, let value = UInt8(String(decoding: utf8.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(byte)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
