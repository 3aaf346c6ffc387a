import KubeModel

/// The service range and node port range this cluster allocates from (kube-apiserver's
/// `--service-cluster-ip-range` and `--service-node-port-range`; k3s's defaults).
public struct ServiceAddressing: Sendable {
    public var network: IPv4Network
    public var nodePorts: ClosedRange<Int32>

    public init(network: IPv4Network, nodePorts: ClosedRange<Int32> = 30000...32767) {
        self.network = network
        self.nodePorts = nodePorts
    }

    public static let standard = ServiceAddressing(network: IPv4Network(containing: 0x0A2B_0000, prefixLength: 16))

    /// The first usable address: the `kubernetes` service's.
    public var apiServiceAddress: String { IPv4Network.format(network.address + 1) }
    /// The usable addresses (without the network and broadcast addresses).
    var addresses: ClosedRange<UInt32> {
        let size = UInt64(1) << UInt64(32 - network.prefixLength)
        let last = UInt32(UInt64(network.address) + size - 1)
        return size >= 4 ? (network.address + 1)...(last - 1) : network.address...last
    }
}

/// Gives a service its cluster address and node ports, as kube-apiserver's allocators do:
/// a requested value must be in range and free, a missing one is picked at random among the
/// free ones, an update keeps what the service already holds. Works over the stored services,
/// so nothing is leaked by a crash; callers serialise allocations (`APIServer.allocationLock`).
/// Linear in the ports (validation bounds them per service).
struct ServiceAllocator {
    let addressing: ServiceAddressing
    /// The cluster addresses and node ports of every other service (the one being written excluded).
    let usedAddresses: Set<UInt32>
    let usedNodePorts: Set<Int32>

    /// What the stored services hold, but `namespace/name`'s (read from the trees, not decoded:
    /// this runs for every service write).
    init(addressing: ServiceAddressing, services: [JSONValue], excluding namespace: String, _ name: String) {
        self.addressing = addressing
        var addresses = Set<UInt32>()
        var nodePorts = Set<Int32>()
        for service in services where !(service.string(at: ["metadata", "namespace"]) == namespace && service.string(at: ["metadata", "name"]) == name) {
            if let address = service.string(at: ["spec", "clusterIP"]).flatMap(IPv4Network.parseAddress) { addresses.insert(address) }
            for port in service[path: ["spec", "ports"]]?.arrayValue ?? [] {
                if let nodePort = port.int64(at: ["nodePort"]), let value = Int32(exactly: nodePort) { nodePorts.insert(value) }
            }
        }
        usedAddresses = addresses
        usedNodePorts = nodePorts
    }

    func allocate(_ service: inout KubeService, old: KubeService?) throws {
        let name = service.metadata.name ?? ""
        var spec = service.spec ?? ServiceSpec()
        let type = service.serviceType
        if type == "ExternalName" {
            spec.clusterIP = nil
            spec.clusterIPs = nil
            spec.ipFamilies = nil
            spec.ipFamilyPolicy = nil
            spec.ports = spec.ports?.map { port in var port = port; port.nodePort = nil; return port }
            service.spec = spec
            return
        }
        if (spec.clusterIP ?? "").isEmpty, let oldAddress = old?.spec?.clusterIP, !oldAddress.isEmpty, old?.serviceType != "ExternalName" {
            spec.clusterIP = oldAddress
        }
        let address = spec.clusterIP ?? ""
        if address == "None" {
            spec.clusterIPs = ["None"]
        } else if address.isEmpty {
            spec.clusterIP = try freeAddress()
            spec.clusterIPs = spec.clusterIP.map { [$0] }
        } else {
            if address != old?.spec?.clusterIP { try claim(address, name: name) }
            spec.clusterIPs = [address]
        }
        spec.ports = try nodePorts(spec.ports ?? [], type: type, allocate: spec.allocateLoadBalancerNodePorts ?? true, old: old, name: name)
        if spec.ports?.isEmpty == true, service.spec?.ports == nil { spec.ports = nil }
        service.spec = spec
    }

    private func freeAddress() throws -> String {
        let range = addressing.addresses
        // The first address is the API's own service, given only by request.
        let dynamic = range.count > 2 ? (range.lowerBound + 1)...range.upperBound : range
        for _ in 0..<32 {
            let candidate = UInt32.random(in: dynamic)
            if !usedAddresses.contains(candidate) { return IPv4Network.format(candidate) }
        }
        let start = UInt32.random(in: dynamic)
        for candidate in start...dynamic.upperBound where !usedAddresses.contains(candidate) { return IPv4Network.format(candidate) }
        for candidate in dynamic.lowerBound..<start where !usedAddresses.contains(candidate) { return IPv4Network.format(candidate) }
        throw APIError.internalError("Internal error occurred: failed to allocate a serviceIP: range is full")
    }

    private func claim(_ address: String, name: String) throws {
        guard let value = IPv4Network.parseAddress(address) else { return }  // validation names it
        let problem: String
        if !addressing.addresses.contains(value) {
            problem = "the provided IP (\(address)) is not in the valid range. The range of valid IPs is \(addressing.network)"
        } else if usedAddresses.contains(value) {
            problem = "provided IP is already allocated"
        } else {
            return
        }
        throw APIError.invalid(.services, name, [StatusCause(reason: "FieldValueInvalid",
            message: "Invalid value: [\"\(address)\"]: failed to allocate IP \(address): \(problem)", field: "spec.clusterIPs")])
    }

    /// The ports with node ports kept, claimed or picked (NodePort and LoadBalancer), or none.
    /// One node port serves one port number's TCP and UDP (kube's reuse across protocols), never
    /// two ports of one protocol.
    private func nodePorts(_ ports: [ServicePort], type: String, allocate: Bool, old: KubeService?, name: String) throws -> [ServicePort] {
        guard type == "NodePort" || type == "LoadBalancer" else {
            return ports.map { port in var port = port; port.nodePort = nil; return port }
        }
        let oldPorts = old?.serviceType == "NodePort" || old?.serviceType == "LoadBalancer" ? old?.spec?.ports ?? [] : []
        var previous: [String: Int32] = [:]  // "port/protocol" → the node port it held
        for port in oldPorts {
            if let nodePort = port.nodePort, nodePort != 0 { previous["\(port.port)/\(port.protocol ?? "TCP")"] = previous["\(port.port)/\(port.protocol ?? "TCP")"] ?? nodePort }
        }
        let held = Set(previous.values)
        var taken = Set<String>()  // "nodePort/protocol" within this service
        var byNumber: [Int32: Int32] = [:]  // service port number → the node port one of its protocols has
        var result = ports
        // Requested (or kept) ones first, so a picked port never takes one asked for further down.
        for (index, port) in result.enumerated() {
            let portProtocol = port.protocol ?? "TCP"
            var nodePort = port.nodePort ?? 0
            if nodePort == 0, let kept = previous["\(port.port)/\(portProtocol)"] { nodePort = kept }
            guard nodePort != 0 else { continue }
            var problem: String?
            if !addressing.nodePorts.contains(nodePort) && !held.contains(nodePort) {
                problem = "provided port is not in the valid range. The range of valid ports is \(addressing.nodePorts.lowerBound)-\(addressing.nodePorts.upperBound)"
            } else if usedNodePorts.contains(nodePort) || taken.contains("\(nodePort)/\(portProtocol)") {
                problem = "provided port is already allocated"
            }
            if let problem {
                throw APIError.invalid(.services, name, [StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(nodePort): \(problem)", field: "spec.ports[\(index)].nodePort")])
            }
            taken.insert("\(nodePort)/\(portProtocol)")
            byNumber[port.port] = byNumber[port.port] ?? nodePort
            result[index].nodePort = nodePort
        }
        guard allocate else { return result }
        let takenNumbers = Set(taken.compactMap { Int32($0.split(separator: "/").first ?? "") })
        var picked = Set<Int32>()
        for index in result.indices where (result[index].nodePort ?? 0) == 0 {
            let portProtocol = result[index].protocol ?? "TCP"
            if let sibling = byNumber[result[index].port], !taken.contains("\(sibling)/\(portProtocol)") {
                result[index].nodePort = sibling
                taken.insert("\(sibling)/\(portProtocol)")
                continue
            }
            let isFree = { (candidate: Int32) in !usedNodePorts.contains(candidate) && !takenNumbers.contains(candidate) && !picked.contains(candidate) }
            var chosen: Int32?
            for _ in 0..<32 {
                let candidate = Int32.random(in: addressing.nodePorts)
                if isFree(candidate) { chosen = candidate; break }
            }
            if chosen == nil { chosen = addressing.nodePorts.first(where: isFree) }
            guard let chosen else { throw APIError.internalError("Internal error occurred: failed to allocate a nodePort: range is full") }
            picked.insert(chosen)
            taken.insert("\(chosen)/\(portProtocol)")
            byNumber[result[index].port] = byNumber[result[index].port] ?? chosen
            result[index].nodePort = chosen
        }
        return result
    }
}
