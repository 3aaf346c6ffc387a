#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel

/// A hostPort of a pod (the portmap plugin's `portMappings` capability).
public struct PortMapping: Sendable, Hashable, Codable {
    public var hostPort: Int
    public var containerPort: Int
    /// "tcp", "udp" or "sctp".
    public var `protocol`: String
    /// Empty: every address of the node.
    public var hostIP: String

    public init(hostPort: Int, containerPort: Int, protocol: String = "tcp", hostIP: String = "") {
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.protocol = `protocol`.lowercased()
        self.hostIP = hostIP
    }

    var json: JSONValue {
        var object: JSONObject = ["hostPort": .integer(hostPort), "containerPort": .integer(containerPort), "protocol": .string(`protocol`)]
        if !hostIP.isEmpty { object["hostIP"] = .string(hostIP) }
        return .object(object)
    }

    init?(json: JSONValue) {
        guard case .number(let host)? = json["hostPort"], case .number(let container)? = json["containerPort"],
              let hostPort = Int(host), let containerPort = Int(container) else { return nil }
        self.init(hostPort: hostPort, containerPort: containerPort, protocol: json["protocol"]?.stringValue ?? "tcp", hostIP: json["hostIP"]?.stringValue ?? "")
    }

    /// "8080/TCP" (on 127.0.0.1), for messages.
    public var label: String { "\(hostPort)/\(`protocol`.uppercased())" + (hostIP.isEmpty ? "" : " on \(hostIP)") }

    /// Whether a host process already listens there (portmap's DNAT would silently shadow it).
    func isTakenOnHost() -> Bool {
        guard `protocol` == "tcp" || `protocol` == "udp" else { return false }
        let descriptor = socket(AF_INET, Int32(`protocol` == "tcp" ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: hostPort)).bigEndian
        address.sin_addr.s_addr = hostIP.isEmpty ? INADDR_ANY : inet_addr(hostIP)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound != 0 && errno == EADDRINUSE
    }

    /// Two mappings claim the same host port (an empty hostIP overlaps every address).
    func conflicts(with other: PortMapping) -> Bool {
        hostPort == other.hostPort && `protocol` == other.protocol && (hostIP.isEmpty || other.hostIP.isEmpty || hostIP == other.hostIP)
    }
}
