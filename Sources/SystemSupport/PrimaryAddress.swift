#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The machine's primary IPv4 address: the source address the kernel picks for the default
/// route, the address other machines on its network reach it at (not a bridge's or a VPN's).
public enum PrimaryAddress {
    /// The default route's source address, or nil without a default route (or with only a
    /// loopback one). `probe` is an address on the internet (reached by the default route); nothing is sent to it: connecting a
    /// UDP socket only chooses a route.
    public static func ipv4(probe: String = "1.1.1.1") -> String? {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(53).bigEndian
        guard inet_pton(AF_INET, probe, &target.sin_addr) == 1 else { return nil }
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { return nil }
        let address = UInt32(bigEndian: local.sin_addr.s_addr)
        // 0.0.0.0 and 127.0.0.0/8 are nobody else's way to this machine.
        guard address != 0, address >> 24 != 127 else { return nil }
        return "\(address >> 24).\((address >> 16) & 0xff).\((address >> 8) & 0xff).\(address & 0xff)"
    }
}
