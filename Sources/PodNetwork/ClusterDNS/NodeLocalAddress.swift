import SystemSupport

/// An address of the node's own on the loopback interface (the cluster DNS's link-local
/// address): reachable from pods through their gateway, never routed off the node.
public enum NodeLocalAddress {
    static func ip() -> String? { ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileTree.exists($0) } }

    /// Adds `address`/32 to `lo` (nothing when it is there already).
    public static func add(_ address: String) throws(NetworkError) {
        guard let ip = ip() else { throw NetworkError("the ip tool (iproute2) is not installed: cannot add \(address) for the cluster DNS") }
        let outcome = try captured(ip, ["address", "replace", "\(address)/32", "dev", "lo", "scope", "host"], timeoutSeconds: 30)
        guard outcome.status == 0 else {
            throw NetworkError("ip address replace \(address)/32 dev lo: \(String(decoding: outcome.errorOutput.prefix(500), as: UTF8.self))")
        }
    }

    /// Removes it (what `reset` does); an absent address is fine.
    public static func remove(_ address: String) {
        guard let ip = ip() else { return }
        _ = try? captured(ip, ["address", "delete", "\(address)/32", "dev", "lo"], timeoutSeconds: 30)
    }
}
