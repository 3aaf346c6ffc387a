import Foundation
import IotkubeTestSupport
import Agent
import KubeModel
import PodNetwork
import Testing

/// The networking part of agent.yaml: checked on load, and turned into the node's pod network.
@Suite(.ownThread) struct AgentNetworkConfigurationTests {
    static func file(_ extra: String) throws -> String {
        let path = NSTemporaryDirectory() + "iotkube-agent-\(UUID().uuidString).yaml"
        try ("nodeName: pi\nserver: https://192.0.2.1:6443\nkubeconfig: /etc/iotkube/kubeconfig\n" + extra).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(arguments: [
        ("podCIDR: 10.42.7.1/24", "podCIDR: pod CIDR \"10.42.7.1/24\" has host bits set"),
        ("podCIDR: banana", "podCIDR: pod CIDR \"banana\" is not an IPv4 network"),
        ("clusterDNS: [10.43.0.300]", "clusterDNS: \"10.43.0.300\" is not an IPv4 address"),
        ("clusterDomain: .local", "clusterDomain: \".local\" is not a DNS domain"),
    ])
    func badNetworkSettingsNameTheFileAndField(_ line: String, _ message: String) throws {
        let path = try Self.file(line + "\n")
        #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains("\(path): \(message)") }
    }

    /// Numbers in agent.yaml are bounded when it is read, so none reaches arithmetic unchecked
    /// (before, the durations below stopped the agent with an overflow trap at every start).
    @Test(arguments: [
        ("port: 99999", "port (99999) must be 1 to 65535"),
        ("containerLogMaxFiles: 0", "containerLogMaxFiles (0) must be 1 to 1000"),
        ("containerLogMaxSize: 2Ti", "containerLogMaxSize (2Ti) must be more than 0 and at most 1Ti"),
        ("maxPods: 9223372036854775807", "maxPods (9223372036854775807) must be 1 to 100000"),
        ("evictionPressureTransitionPeriod: 9999999999999999999999h", "evictionPressureTransitionPeriod"),
        ("streamingConnectionIdleTimeout: 99999999999h", "streamingConnectionIdleTimeout: \"99999999999h\" is not a duration from 0 (never) to 8784h"),
        ("streamingConnectionIdleTimeout: soon", "streamingConnectionIdleTimeout: \"soon\" is not a duration"),
        ("labels: {node-role.kubernetes.io/control-plane: \"\"}", "a node may not set node-role.kubernetes.io/control-plane on itself"),
        ("evictionSoft: {memory.available: 1Gi}\nevictionSoftGracePeriod: {memory.available: 1e300h}", "evictionSoftGracePeriod"),
    ])
    func absurdNumbersAreRefusedByName(_ line: String, _ message: String) throws {
        let path = try Self.file(line + "\n")
        #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains("\(path): ") && "\($0)".contains(message) }
    }

    @Test func theNodeRangeOrACNIConfigurationMakesThePodNetwork() throws {
        let state = NSTemporaryDirectory() + "iotkube-state-\(UUID().uuidString)"
        let netd = state + "/net.d"
        try FileManager.default.createDirectory(atPath: netd, withIntermediateDirectories: true)
        var configuration = try AgentConfiguration.load(try Self.file("stateDir: \(state)\ncniConfigDirectory: \(netd)\nclusterDNS: [10.43.0.10]\n"))
        #expect { _ = try configuration.podNetwork(nodePodCIDR: nil) } throws: {
            "\($0)" == "no pod network: no CNI configuration in \(netd), the Node has no spec.podCIDR (yet) and agent.yaml sets no podCIDR"
        }
        // Setting up the default network installs its egress chain on the host: removed after.
        defer { for range in ["10.199.0.0/24", "10.198.3.0/24"] { PodEgressMasquerade.remove(podCIDR: range) } }
        // The Node's range wins over the configured one.
        configuration.podCIDR = "10.199.0.0/24"
        let fromNode = try configuration.podNetwork(nodePodCIDR: "10.198.3.0/24")
        #expect(fromNode.network.source == "the default network (10.198.3.0/24)")
        #expect(fromNode.cacheDirectory == state + "/network/cache")
        #expect(try configuration.podNetwork(nodePodCIDR: nil).network.source == "the default network (10.199.0.0/24)")
        // A range over the board's own network is refused.
        if let (interface, network) = PodCIDR.hostNetworks().first(where: { $0.interface != "iotkube0" && (8...30).contains($0.network.prefixLength) }) {
            #expect { _ = try configuration.podNetwork(nodePodCIDR: network.description) } throws: { "\($0)".contains("on \(interface)") }
        }
        // An administrator's CNI configuration is used as it is.
        try #"{"cniVersion":"1.0.0","name":"flannel-like","plugins":[{"type":"bridge"}]}"#.write(toFile: netd + "/10-site.conflist", atomically: true, encoding: .utf8)
        #expect(try configuration.podNetwork(nodePodCIDR: "10.198.3.0/24").network.name == "flannel-like")
        #expect(configuration.podDNS(hostResolvConf: "nameserver 192.0.2.53\n").clusterDNS == ["10.43.0.10"])
        // Written back by join, the settings survive.
        let rewritten = try Self.file("")
        try configuration.yaml.write(toFile: rewritten, atomically: true, encoding: .utf8)
        let reread = try AgentConfiguration.load(rewritten)
        #expect(reread.podCIDR == "10.199.0.0/24" && reread.cniConfigDirectory == netd && reread.clusterDNS == ["10.43.0.10"])
    }
}
