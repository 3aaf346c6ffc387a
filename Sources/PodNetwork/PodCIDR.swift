#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An IPv4 network in CIDR notation (the node's `spec.podCIDR` or a configured range).
public struct PodCIDR: Sendable, Hashable, CustomStringConvertible {
    public let address: UInt32
    public let prefixLength: Int

    public init(_ text: String) throws(NetworkError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let length = Int(parts[1]), (8...30).contains(length), let address = Self.parseIPv4(String(parts[0])) else {
            throw NetworkError("pod CIDR \"\(text)\" is not an IPv4 network like 10.244.1.0/24 (prefix 8 to 30)")
        }
        let mask = Self.mask(length)
        guard address & ~mask == 0 else { throw NetworkError("pod CIDR \"\(text)\" has host bits set (the network is \(Self.format(address & mask))/\(length))") }
        self.address = address
        self.prefixLength = length
    }

    init(address: UInt32, prefixLength: Int) {
        self.address = address & Self.mask(prefixLength)
        self.prefixLength = prefixLength
    }

    public var description: String { "\(Self.format(address))/\(prefixLength)" }

    static func mask(_ length: Int) -> UInt32 { length == 0 ? 0 : UInt32.max << UInt32(32 - length) }

    static func parseIPv4(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard let number = UInt32(octet), number <= 255, octet.count <= 3 else { return nil }
            value = value << 8 | number
        }
        return value
    }

    static func format(_ address: UInt32) -> String {
        "\(address >> 24).\(address >> 16 & 255).\(address >> 8 & 255).\(address & 255)"
    }

    public func overlaps(_ other: PodCIDR) -> Bool {
        let length = min(prefixLength, other.prefixLength)
        return address & Self.mask(length) == other.address & Self.mask(length)
    }

    /// The IPv4 networks configured on this host's interfaces (name, network).
    public static func hostNetworks() -> [(interface: String, network: PodCIDR)] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var networks: [(String, PodCIDR)] = []
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET), let netmask = entry.pointee.ifa_netmask else { continue }
            let host = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let mask = netmask.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let name = String(cString: entry.pointee.ifa_name)
            if name == "lo" { continue }
            networks.append((name, PodCIDR(address: host, prefixLength: mask.nonzeroBitCount)))
        }
        return networks
    }

    /// Refuses a pod network that overlaps a network of the host (pods would hide it), except
    /// on `ownInterfaces` (the pod bridge itself, already set up from this range).
    public func checkNoOverlapWithHost(ownInterfaces: Set<String>) throws(NetworkError) {
        for (interface, network) in Self.hostNetworks() where !ownInterfaces.contains(interface) && overlaps(network) {
            throw NetworkError("pod CIDR \(self) overlaps the host network \(network) on \(interface); choose a range the node does not use")
        }
    }
}
