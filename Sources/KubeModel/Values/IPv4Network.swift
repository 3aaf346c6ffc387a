/// An IPv4 network in CIDR notation ("10.42.3.0/24"): pod ranges of nodes and of the cluster.
public struct IPv4Network: Sendable, Hashable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let address: UInt32
    public let prefixLength: Int

    /// Parses "a.b.c.d/n"; host bits must be zero. `prefixes` limits the accepted lengths.
    public init(_ text: String, prefixes: ClosedRange<Int> = 0...32) throws(IPv4NetworkError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let length = Int(parts[1]), prefixes.contains(length), let address = Self.parseAddress(String(parts[0])) else {
            throw IPv4NetworkError("\"\(text)\" is not an IPv4 network like 10.244.1.0/24 (prefix \(prefixes.lowerBound) to \(prefixes.upperBound))")
        }
        guard address & ~Self.mask(length) == 0 else {
            throw IPv4NetworkError("\"\(text)\" has host bits set (the network is \(Self.format(address & Self.mask(length)))/\(length))")
        }
        self.address = address
        self.prefixLength = length
    }

    /// The network of `address` with this prefix (host bits cleared).
    public init(containing address: UInt32, prefixLength: Int) {
        self.address = address & Self.mask(prefixLength)
        self.prefixLength = prefixLength
    }

    public var description: String { "\(Self.format(address))/\(prefixLength)" }

    public static func mask(_ length: Int) -> UInt32 { length <= 0 ? 0 : UInt32.max << UInt32(32 - min(length, 32)) }

    /// "192.168.1.5" as a number; nil when malformed.
    public static func parseAddress(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard octet.count <= 3, let number = UInt32(octet), number <= 255 else { return nil }
            value = value << 8 | number
        }
        return value
    }

    public static func format(_ address: UInt32) -> String {
        "\(address >> 24).\(address >> 16 & 255).\(address >> 8 & 255).\(address & 255)"
    }

    public func overlaps(_ other: IPv4Network) -> Bool {
        let length = min(prefixLength, other.prefixLength)
        return address & Self.mask(length) == other.address & Self.mask(length)
    }

    public func contains(_ other: IPv4Network) -> Bool { other.prefixLength >= prefixLength && overlaps(other) }

    /// The subnets of length `length` in address order (empty when `length` is shorter).
    public func subnets(prefixLength length: Int) -> some Sequence<IPv4Network> {
        let count = length >= prefixLength ? UInt64(1) << UInt64(length - prefixLength) : 0
        let step = UInt64(1) << UInt64(32 - length)
        return (0..<count).lazy.map { IPv4Network(containing: UInt32(UInt64(address) + $0 * step), prefixLength: length) }
    }
}

public struct IPv4NetworkError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension IPv4Network {
    /// Why `text` cannot be an address traffic is sent to (an endpoint, an external IP):
    /// kube-apiserver's `ValidateEndpointIP` ranges, and only the canonical spelling (no leading
    /// zeros or signs, so one address is never two strings). Nil when it can.
    public static func endpointAddressProblem(_ text: String) -> String? {
        guard let address = parseAddress(text), format(address) == text else {
            return "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        }
        switch address >> 24 {
        case 0: return "may not be unspecified (0.0.0.0, ::)"
        case 127: return "may not be in the loopback range (127.0.0.0/8, ::1/128)"
        case 224...239: return "may not be in the multicast range (224.0.0.0/4, ff00::/8)"
        case 240...255: return "may not be a reserved or broadcast address (240.0.0.0/4)"
        default: break
        }
        if address >> 16 == 0xA9FE { return "may not be in the link-local range (169.254.0.0/16, fe80::/10)" }
        return nil
    }

    /// Whether `text` is an IPv4 address written canonically (`10.43.0.1`, not `10.43.0.01`).
    public static func isCanonicalAddress(_ text: String) -> Bool {
        parseAddress(text).map { format($0) == text } ?? false
    }

    /// Whether the network holds `address`.
    public func contains(address: UInt32) -> Bool { address & Self.mask(prefixLength) == self.address }
}
