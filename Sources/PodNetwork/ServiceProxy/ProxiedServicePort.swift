import KubeModel

/// One port of one service as the node's proxy programs it: where clients connect (the
/// cluster address, external addresses, the node port) and the endpoints each kind of client
/// is sent to after the traffic policies. Built only from checked values (IPv4 addresses,
/// ports 1-65535), so rendering it into rules cannot inject anything.
public struct ProxiedServicePort: Sendable, Hashable {
    public var namespace: String
    public var name: String
    public var portName: String
    /// `tcp`, `udp` or `sctp`.
    public var transport: String
    public var clusterIP: String
    public var port: Int32
    public var nodePort: Int32?
    public var externalIPs: [String]
    /// Seconds a client stays with its endpoint (`sessionAffinity: ClientIP`); nil: none.
    public var affinitySeconds: Int32?
    /// Endpoints for traffic to the cluster address (after `internalTrafficPolicy`).
    public var clusterEndpoints: [ProxyEndpoint]
    /// Endpoints for traffic to node ports and external addresses (after `externalTrafficPolicy`).
    public var externalEndpoints: [ProxyEndpoint]
    /// `externalTrafficPolicy: Local`: node port traffic keeps its client address (no masquerade).
    public var externalLocal: Bool

    public init(namespace: String, name: String, portName: String, transport: String, clusterIP: String, port: Int32, nodePort: Int32?,
                externalIPs: [String], affinitySeconds: Int32?, clusterEndpoints: [ProxyEndpoint], externalEndpoints: [ProxyEndpoint], externalLocal: Bool) {
        self.namespace = namespace
        self.name = name
        self.portName = portName
        self.transport = transport
        self.clusterIP = clusterIP
        self.port = port
        self.nodePort = nodePort
        self.externalIPs = externalIPs
        self.affinitySeconds = affinitySeconds
        self.clusterEndpoints = clusterEndpoints
        self.externalEndpoints = externalEndpoints
        self.externalLocal = externalLocal
    }

    /// Unique per service port: what rule names are derived from.
    public var key: String { "\(namespace)/\(name):\(portName)/\(transport)" }
}

/// An endpoint's address and port.
public struct ProxyEndpoint: Sendable, Hashable, Comparable {
    public var address: String
    public var port: Int32

    public init(address: String, port: Int32) {
        self.address = address
        self.port = port
    }

    public static func < (lhs: ProxyEndpoint, rhs: ProxyEndpoint) -> Bool {
        (IPv4Network.parseAddress(lhs.address) ?? 0, lhs.port) < (IPv4Network.parseAddress(rhs.address) ?? 0, rhs.port)
    }
}

extension ProxiedServicePort {
    /// The most endpoints one service port is balanced over (kube's slices hold 100 each;
    /// more than this many would only grow the rules of one board).
    public static let maxEndpoints = 1000
    /// The most service ports programmed in all (a flood from the API cannot exhaust the board).
    public static let maxServicePorts = 20_000
    /// Node ports never programmed whatever the API says: DNS (the cluster DNS answers on the
    /// node), and those of `reserved` (the agent's own and the API server's ports).
    static let alwaysReservedNodePorts: Set<Int32> = [53]

    /// The service ports to program from what the API holds: services with a cluster address
    /// (not headless, not ExternalName) and their IPv4 endpoint slices. Endpoints that are ready
    /// take the traffic; when none is, serving ones that are terminating do (kube-proxy's
    /// rule). `Local` policies keep only endpoints on `nodeName`. Values that are malformed
    /// (from any API server) are left out, never programmed.
    ///
    /// `externalIPs` are not programmed: any tenant allowed to create a Service could otherwise
    /// capture traffic for addresses it does not own (CVE-2020-8554), the API server's included.
    /// A cluster address or endpoint must be written canonically and be an address traffic may
    /// go to; node ports in `reservedNodePorts` are left out.
    public static func build(services: [KubeService], slices: [EndpointSlice], nodeName: String, reservedNodePorts: Set<Int32> = []) -> [ProxiedServicePort] {
        let reserved = reservedNodePorts.union(alwaysReservedNodePorts)
        var slicesByService: [String: [EndpointSlice]] = [:]
        for slice in slices where slice.addressType == "IPv4" {
            guard let service = slice.metadata.labels?[EndpointSlice.serviceNameLabel] else { continue }
            slicesByService["\(slice.metadata.namespace ?? "")/\(service)", default: []].append(slice)
        }
        var result: [ProxiedServicePort] = []
        for service in services {
            guard let spec = service.spec, service.serviceType != "ExternalName", let clusterIP = spec.clusterIP,
                  IPv4Network.endpointAddressProblem(clusterIP) == nil else { continue }
            let namespace = service.metadata.namespace ?? ""
            let name = service.metadata.name ?? ""
            let serviceSlices = slicesByService["\(namespace)/\(name)"] ?? []
            let affinity = spec.sessionAffinity == "ClientIP"
                ? min(max(spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800, 1), ServiceValidation.maxAffinityTimeout) : nil
            let nodePortsAllowed = service.serviceType == "NodePort" || service.serviceType == "LoadBalancer"
            var seen = Set<String>()
            for port in (spec.ports ?? []).prefix(ServiceValidation.maxPorts) {
                guard result.count < maxServicePorts else { break }
                let transport = (port.protocol ?? "TCP").lowercased()
                guard ["tcp", "udp", "sctp"].contains(transport), (1...65535).contains(port.port), seen.insert("\(port.port)/\(transport)").inserted else { continue }
                let candidates = endpoints(for: port, in: serviceSlices)
                let usable = candidates.filter(\.ready).isEmpty ? candidates.filter { $0.serving && $0.terminating } : candidates.filter(\.ready)
                let local = usable.filter { $0.node == nodeName }
                let clusterSide = spec.internalTrafficPolicy == "Local" ? local : usable
                let externalLocal = nodePortsAllowed && spec.externalTrafficPolicy == "Local"
                let externalSide = externalLocal ? local : usable
                let nodePort = nodePortsAllowed ? port.nodePort.flatMap { (1...65535).contains($0) && !reserved.contains($0) ? $0 : nil } : nil
                result.append(ProxiedServicePort(
                    namespace: namespace, name: name, portName: port.name ?? "", transport: transport, clusterIP: clusterIP, port: port.port,
                    nodePort: nodePort, externalIPs: [],
                    affinitySeconds: affinity, clusterEndpoints: unique(clusterSide), externalEndpoints: unique(externalSide), externalLocal: externalLocal))
            }
        }
        return result.sorted { $0.key < $1.key }
    }

    private struct Candidate {
        var endpoint: ProxyEndpoint
        var ready: Bool
        var serving: Bool
        var terminating: Bool
        var node: String?
    }

    /// The slice endpoints serving `port` (matched by port name and protocol), at most twice
    /// `maxEndpoints` of them.
    private static func endpoints(for port: ServicePort, in slices: [EndpointSlice]) -> [Candidate] {
        var result: [Candidate] = []
        for slice in slices where result.count < 2 * maxEndpoints {
            guard let match = (slice.ports ?? []).prefix(EndpointSliceValidation.maxPorts).first(where: { ($0.name ?? "") == (port.name ?? "") && ($0.protocol ?? "TCP") == (port.protocol ?? "TCP") }),
                  let number = match.port, (1...65535).contains(number) else { continue }
            for endpoint in slice.endpointList.prefix(EndpointSliceValidation.maxEndpoints) {
                guard let address = endpoint.addresses.first, IPv4Network.endpointAddressProblem(address) == nil else { continue }
                let conditions = endpoint.conditions
                let ready = conditions?.ready ?? true
                result.append(Candidate(endpoint: ProxyEndpoint(address: address, port: number), ready: ready,
                                        serving: conditions?.serving ?? ready, terminating: conditions?.terminating ?? false, node: endpoint.nodeName))
            }
        }
        return result
    }

    private static func unique(_ candidates: [Candidate]) -> [ProxyEndpoint] {
        Array(Set(candidates.map(\.endpoint))).sorted().prefix(maxEndpoints).map { $0 }
    }
}
