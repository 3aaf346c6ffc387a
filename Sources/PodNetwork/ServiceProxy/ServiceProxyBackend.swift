/// How the proxy programs the kernel: nftables transactions (kube-proxy's nftables mode), or
/// iptables-restore where nftables is missing (its iptables mode).
public enum ServiceProxyBackend: Sendable {
    case nftables(NFTablesProxy)
    case iptables(IPTablesProxy)

    /// The `mode` asked for (`nftables`, `iptables`), or nftables when `nft` is installed, else
    /// iptables; nil when the tools are missing.
    public static func detect(mode: String? = nil) -> ServiceProxyBackend? {
        if mode != "iptables", let nft = NFTablesProxy.find() { return .nftables(NFTablesProxy(nft: nft)) }
        if mode != "nftables", let tools = IPTablesProxy.find() { return .iptables(IPTablesProxy(restore: tools.restore, iptables: tools.iptables)) }
        return nil
    }

    /// Removes what the other backend left (a node switched modes), as kube-proxy cleans up
    /// other modes' leftovers at start.
    public func removeOtherLeftovers() {
        switch self {
        case .nftables:
            if let tools = IPTablesProxy.find() { IPTablesProxy.remove(restore: tools.restore, iptables: tools.iptables) }
        case .iptables:
            if let nft = NFTablesProxy.find() { NFTablesProxy.remove(nft: nft) }
        }
    }

    public var name: String {
        switch self {
        case .nftables: return "nftables"
        case .iptables: return "iptables"
        }
    }

    /// Programs `ports`; returns the bytes sent to the kernel's tool (0: nothing changed).
    @discardableResult
    public mutating func apply(_ ports: [ProxiedServicePort]) throws(NetworkError) -> Int {
        switch self {
        case .nftables(var tables):
            defer { self = .nftables(tables) }
            return try tables.apply(ProxyRuleset.build(ports))
        case .iptables(var tables):
            defer { self = .iptables(tables) }
            return try tables.apply(ports)
        }
    }

    /// Removes whatever either backend left (what `reset` does).
    public static func removeAll() {
        if let nft = NFTablesProxy.find() { NFTablesProxy.remove(nft: nft) }
        if let tools = IPTablesProxy.find() { IPTablesProxy.remove(restore: tools.restore, iptables: tools.iptables) }
    }
}
