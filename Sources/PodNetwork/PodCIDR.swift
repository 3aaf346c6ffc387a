#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel

/// The node's pod range (`spec.podCIDR` or configured): an IPv4 network of prefix 8 to 30,
/// checked against the host's own networks.
public enum PodCIDR {
    public static func parse(_ text: String) throws(NetworkError) -> IPv4Network {
        do { return try IPv4Network(text, prefixes: 8...30) } catch { throw NetworkError("pod CIDR \(error)") }
    }

    /// The IPv4 networks configured on this host's interfaces (not loopback).
    public static func hostNetworks() -> [(interface: String, network: IPv4Network)] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var networks: [(String, IPv4Network)] = []
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET), let netmask = entry.pointee.ifa_netmask else { continue }
            let host = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let mask = netmask.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let name = String(cString: entry.pointee.ifa_name)
            if name == "lo" { continue }
            networks.append((name, IPv4Network(containing: host, prefixLength: mask.nonzeroBitCount)))
        }
        return networks
    }

    /// Refuses a pod range that overlaps a network of the host (pods would hide it), except on
    /// `ownInterfaces` (the pod bridge itself, already set up from this range).
    public static func checkNoOverlapWithHost(_ range: IPv4Network, ownInterfaces: Set<String>) throws(NetworkError) {
        for (interface, network) in hostNetworks() where !ownInterfaces.contains(interface) && range.overlaps(network) {
            throw NetworkError("pod CIDR \(range) overlaps the host network \(network) on \(interface); choose a range the node does not use")
        }
    }
}
