import Foundation
import IotkubeTestSupport
import PodNetwork

/// Real network namespaces and Debian's CNI plugins: every test gets its own bridge and pod
/// range, so tests run side by side and leave the host as they found it.
enum NetworkFixture {
    static let helper = ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path
    static var ready: Bool {
        getuid() == 0 && (ProcessInfo.processInfo.environment["CI"] != nil
            || (FileManager.default.isExecutableFile(atPath: "/usr/lib/cni/bridge") && toolAvailable("nsenter") && toolAvailable("busybox")))
    }

    /// A bridge name and a /24 no host interface uses.
    static func uniqueNetwork() throws -> (bridge: String, cidr: String) {
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        for _ in 0..<50 {
            let candidate = "10.\(Int.random(in: 150...249)).\(Int.random(in: 0...255)).0/24"
            let cidr = try PodCIDR.parse(candidate)
            if !PodCIDR.hostNetworks().contains(where: { $0.network.overlaps(cidr) }) { return ("iotk" + suffix, candidate) }
        }
        throw TestFailure("no free pod range")
    }

    struct Network {
        let attachments: PodNetworkAttachments
        let bridge: String
        let cidr: String
        let base: String
    }

    static func network(cidr: String? = nil, plugins: CNIPlugins = CNIPlugins(timeoutSeconds: 30)) throws -> Network {
        let (bridge, unique) = try uniqueNetwork()
        let base = NSTemporaryDirectory() + "iotkube-net-\(UUID().uuidString)"
        let list = CNINetworkList.standard(podCIDR: cidr ?? unique, bridge: bridge, ipamDataDirectory: base + "/ipam")
        return Network(attachments: PodNetworkAttachments(network: list, plugins: plugins, cacheDirectory: base + "/cache"), bridge: bridge, cidr: cidr ?? unique, base: base)
    }

    /// A sandbox ID no earlier run used (plugins name iptables chains after it).
    static func sandboxID(_ name: String) -> String { name + "-" + String(UUID().uuidString.prefix(8)).lowercased() }

    static func sandbox(_ network: Network, _ name: String) throws -> PodSandbox {
        try PodSandbox.create(directory: network.base + "/sandboxes/" + name, hostname: name)
    }

    /// Runs a shell command inside the sandbox's network and UTS namespaces (busybox tools).
    @discardableResult
    static func inPod(_ sandbox: PodSandbox, _ command: String, timeout: TimeInterval = 30) throws -> (status: Int32, output: String) {
        try ServerProcess.run("/usr/bin/nsenter", ["--net=\(sandbox.networkNamespace)", "--uts=\(sandbox.utsNamespace)", "/bin/busybox", "sh", "-c", command], timeout: timeout)
    }

    /// The node's own address (the first IPv4 of a non-loopback interface that is not a pod bridge).
    static func nodeIP() throws -> String {
        let result = try ServerProcess.run("/bin/sh", ["-c", "ip -4 -o addr show scope global | grep -v ' iotk' | awk '{print $4}' | head -1"])
        guard let address = result.output.split(separator: "/").first, !address.isEmpty else { throw TestFailure("no node address: \(result.output)") }
        return String(address)
    }

    static func shell(_ command: String) throws -> String {
        try ServerProcess.run("/bin/sh", ["-c", command]).output
    }

    /// Releases whatever a (possibly failed) test left: attachments, sandboxes, the bridge.
    static func tearDown(_ network: Network) {
        network.attachments.releaseStale(keeping: [])
        for name in (try? FileManager.default.contentsOfDirectory(atPath: network.base + "/sandboxes")) ?? [] {
            try? PodSandbox(directory: network.base + "/sandboxes/" + name).remove()
        }
        _ = try? shell("ip link del \(network.bridge) 2>/dev/null")
        try? FileManager.default.removeItem(atPath: network.base)
    }
}
