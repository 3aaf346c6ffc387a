import KubeModel

/// The cluster's DNS names, as the kubelet's search path expects them and CoreDNS's kubernetes
/// plugin answers them: `<service>.<namespace>.svc.<domain>` (the cluster address; the ready
/// endpoints of a headless service; a CNAME for ExternalName), `<hostname>.<service>…` for a
/// headless service's named endpoints, `_<port>._<protocol>.<service>…` SRV records, and
/// `a-b-c-d.<namespace>.pod.<domain>`. Built once per catalog change, answered from memory.
public struct ClusterDNSRecords: Sendable {
    public static let ttl: UInt32 = 5
    /// The most addresses or SRV targets one name holds (more never fit a UDP answer).
    public static let maxRecordsPerName = 100

    public let domain: [String]
    private var addresses: [String: [UInt32]] = [:]
    private var aliases: [String: [String]] = [:]
    private var services: [String: [SRVTarget]] = [:]
    /// Names that exist without records of their own (`default.svc.cluster.local`).
    private var branches: Set<String> = []

    struct SRVTarget: Sendable {
        var port: UInt16
        var target: [String]
    }

    public init(services list: [KubeService], slices: [EndpointSlice], domain: String) {
        self.domain = domain.lowercased().split(separator: ".").map(String.init)
        var slicesByService: [String: [EndpointSlice]] = [:]
        for slice in slices where slice.addressType == "IPv4" {
            guard let service = slice.metadata.labels?[EndpointSlice.serviceNameLabel] else { continue }
            slicesByService["\(slice.metadata.namespace ?? "")/\(service)", default: []].append(slice)
        }
        branches.insert(Self.key(self.domain))
        branches.insert(Self.key(["svc"] + self.domain))
        branches.insert(Self.key(["pod"] + self.domain))
        for service in list {
            guard let name = service.metadata.name, let namespace = service.metadata.namespace,
                  NameValidation.dnsLabelProblem(name) == nil, NameValidation.dnsLabelProblem(namespace) == nil else { continue }
            let base = [name, namespace, "svc"] + self.domain
            branches.insert(Self.key([namespace, "svc"] + self.domain))
            let spec = service.spec ?? ServiceSpec()
            if service.serviceType == "ExternalName" {
                let text = spec.externalName ?? ""
                let target = text.lowercased().split(separator: ".").map(String.init)
                if text.utf8.count <= 253, !target.isEmpty, target.allSatisfy({ NameValidation.dnsLabelProblem($0) == nil }) { aliases[Self.key(base)] = target }
                continue
            }
            let ports = (spec.ports ?? []).filter { (1...65535).contains($0.port) }
            if service.isHeadless {
                var all = Set<UInt32>()
                var targets: [String: [SRVTarget]] = [:]
                for slice in slicesByService["\(namespace)/\(name)"] ?? [] where all.count < Self.maxRecordsPerName {
                    for endpoint in slice.endpointList.prefix(EndpointSliceValidation.maxEndpoints) where endpoint.isReady || spec.publishNotReadyAddresses == true {
                        if all.count >= Self.maxRecordsPerName { break }
                        guard let text = endpoint.addresses.first,
                              IPv4Network.endpointAddressProblem(text) == nil, let address = IPv4Network.parseAddress(text), all.insert(address).inserted else { continue }
                        let label = endpoint.hostname.flatMap { NameValidation.dnsLabelProblem($0) == nil ? $0 : nil } ?? text.replacingDots()
                        let key = Self.key([label] + base)
                        if (addresses[key]?.count ?? 0) < Self.maxRecordsPerName { addresses[key, default: []].append(address) }
                        for port in (slice.ports ?? []).prefix(EndpointSliceValidation.maxPorts) {
                            guard let portName = port.name, !portName.isEmpty, let number = port.port, (1...65535).contains(number) else { continue }
                            let owner = Self.key(["_\(portName)", "_\((port.protocol ?? "TCP").lowercased())"] + base)
                            if (targets[owner]?.count ?? 0) < Self.maxRecordsPerName { targets[owner, default: []].append(SRVTarget(port: UInt16(number), target: [label] + base)) }
                        }
                    }
                }
                addresses[Self.key(base)] = all.sorted()
                for (owner, list) in targets { services[owner] = list }
            } else if let text = spec.clusterIP, IPv4Network.endpointAddressProblem(text) == nil, let clusterIP = IPv4Network.parseAddress(text) {
                addresses[Self.key(base)] = [clusterIP]
                for port in ports.prefix(Self.maxRecordsPerName) {
                    guard let portName = port.name, !portName.isEmpty else { continue }
                    services[Self.key(["_\(portName)", "_\((port.protocol ?? "TCP").lowercased())"] + base)] = [SRVTarget(port: UInt16(port.port), target: base)]
                }
            }
        }
    }

    /// Whether `name` is in the cluster domain (answered here, never forwarded).
    public func isCluster(_ name: [String]) -> Bool { name.count >= domain.count && Array(name.suffix(domain.count)) == domain }

    /// The answer to a question about a cluster name.
    public func answer(name: [String], type: UInt16) -> (code: DNSMessage.ResponseCode, answers: [DNSMessage.Answer]) {
        let key = Self.key(name)
        let wantsA = type == DNSMessage.RecordType.a.rawValue || type == DNSMessage.RecordType.any.rawValue
        if let target = aliases[key] {
            let wantsCNAME = wantsA || type == DNSMessage.RecordType.cname.rawValue
            return (.noError, wantsCNAME ? [.cname(name: name, target: target, ttl: Self.ttl)] : [])
        }
        var found = false
        var answers: [DNSMessage.Answer] = []
        if let list = addresses[key] {
            found = true
            if wantsA { answers += list.map { .a(name: name, address: $0, ttl: Self.ttl) } }
        }
        if let list = services[key] {
            found = true
            if type == DNSMessage.RecordType.srv.rawValue || type == DNSMessage.RecordType.any.rawValue {
                let weight = UInt16(100 / max(1, min(list.count, 100)))
                answers += list.map { target in .srv(name: name, priority: 0, weight: weight, port: target.port, target: target.target, ttl: Self.ttl) }
            }
        }
        if !found, let pod = podAddress(name) {
            found = true
            if wantsA { answers.append(.a(name: name, address: pod, ttl: Self.ttl)) }
        }
        if found || branches.contains(key) { return (.noError, answers) }
        return (.nameError, [])
    }

    /// `a-b-c-d.<namespace>.pod.<domain>`: the address in the name.
    private func podAddress(_ name: [String]) -> UInt32? {
        guard name.count == domain.count + 3, name[2] == "pod", isCluster(name) else { return nil }
        return IPv4Network.parseAddress(name[0].split(separator: "-").joined(separator: ".")).flatMap { IPv4Network.format($0) == name[0].split(separator: "-").joined(separator: ".") ? $0 : nil }
    }

    static func key(_ labels: [String]) -> String { labels.joined(separator: ".") }
}

private extension String {
    /// `10.42.0.7` → `10-42-0-7` (an endpoint's name when it has no hostname).
    func replacingDots() -> String { split(separator: ".").joined(separator: "-") }
}
