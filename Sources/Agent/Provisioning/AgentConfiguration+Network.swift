import KubeModel
import PodNetwork
import SystemSupport

extension AgentConfiguration {
    static let defaultCNIConfigDirectory = "/etc/cni/net.d"

    /// Checks the networking fields; errors name the file and the field.
    func validateNetwork(_ path: String) throws(ProvisioningError) {
        if let podCIDR {
            do { _ = try PodCIDR.parse(podCIDR) } catch { throw ProvisioningError("\(path): podCIDR: \(error)") }
        }
        for server in clusterDNS ?? [] where IPv4Network.parseAddress(server) == nil {
            throw ProvisioningError("\(path): clusterDNS: \"\(server)\" is not an IPv4 address")
        }
        if let clusterDomain, clusterDomain.isEmpty || clusterDomain.hasPrefix(".") || clusterDomain.hasSuffix(".")
            || clusterDomain.split(separator: ".").contains(where: { NameValidation.dnsLabelProblem(String($0)) != nil }) {
            throw ProvisioningError("\(path): clusterDomain: \"\(clusterDomain)\" is not a DNS domain like cluster.local")
        }
        if let serviceProxyMode, serviceProxyMode != "nftables", serviceProxyMode != "iptables" {
            throw ProvisioningError("\(path): serviceProxyMode: \"\(serviceProxyMode)\" is not nftables or iptables")
        }
    }

    /// The pod network this node attaches pods to: the first CNI configuration in
    /// `cniConfigDirectory` when there is one, else the default bridge network over the node's
    /// pod range (`nodePodCIDR` from the Node object, else `podCIDR` here), which must not
    /// overlap the host's networks.
    public func podNetwork(nodePodCIDR: String?) throws(NetworkError) -> PodNetworkAttachments {
        let plugins = CNIPlugins(directories: cniBinDirectories ?? ["/usr/lib/cni", "/opt/cni/bin"])
        let cache = stateDir + "/network/cache"
        let directory = cniConfigDirectory ?? Self.defaultCNIConfigDirectory
        let hasConfiguration = FileTree.list(directory).contains { $0.hasSuffix(".conflist") || $0.hasSuffix(".conf") || $0.hasSuffix(".json") }
        if hasConfiguration {
            return PodNetworkAttachments(network: try CNINetworkList.load(directory: directory), plugins: plugins, cacheDirectory: cache)
        }
        guard let text = nodePodCIDR ?? podCIDR else {
            throw NetworkError("no pod network: no CNI configuration in \(directory), the Node has no spec.podCIDR (yet) and agent.yaml sets no podCIDR")
        }
        let range = try PodCIDR.parse(text)
        let bridge = "iotkube0"
        try PodCIDR.checkNoOverlapWithHost(range, ownInterfaces: [bridge])
        let list = CNINetworkList.standard(podCIDR: range.description, bridge: bridge, ipamDataDirectory: stateDir + "/network/ipam")
        try PodEgressMasquerade.ensure(podCIDR: range.description)
        return PodNetworkAttachments(network: list, plugins: plugins, cacheDirectory: cache)
    }

    /// resolv.conf and hosts for pods, from the node's resolver configuration.
    public func podDNS(hostResolvConf: String) -> PodDNS {
        PodDNS(clusterDNS: effectiveClusterDNS, clusterDomain: clusterDomain ?? "cluster.local", hostResolvConf: hostResolvConf)
    }

    /// The DNS servers pods use: `clusterDNS` when set, else the agent's own cluster DNS
    /// (when it is the service proxy), else none (ClusterFirst falls back to the node's resolvers).
    public var effectiveClusterDNS: [String] {
        if let clusterDNS, !clusterDNS.isEmpty { return clusterDNS }
        return runsClusterDNS ? [ClusterDNSServer.defaultAddress] : []
    }

    /// Whether the agent answers cluster names itself: it is the service proxy and no other
    /// cluster DNS is configured.
    public var runsClusterDNS: Bool { serviceProxy != false && (clusterDNS ?? []).isEmpty }
}
